#!/bin/bash
# Issue 15's configurations of 2026-11-28: the previous round's script (every configuration once per
# round, the load average before each run, RSS once, then the medians and the PNG), writing here.
# Ran as ROUNDS="1 2 3", then ROUNDS="4 5 6" RSS_ROUND=none.
cd "$(dirname "$0")/../../.." || exit 1
OUT=${OUT:-docs/results/bench-daemon-2026-11-28} exec bash docs/results/bench-daemon-final/run_final.sh
