"""bench daemon with the novelty path's calls timed in place, printed per batch at exit
(under5/split_calls.py with the band plan timed too).

Each call's thread time is summed per call name. The code under test comes from PYTHONPATH
(before) or the installed checkout (after); calls a tree lacks are left out.
"""

import atexit
import collections
import sys
import time
import types
from collections.abc import Callable
from typing import Any

import scipy.fft

import runtime.novelty.envelope_cache as ec
import runtime.novelty.scores as scm
import runtime.results_router as rr
from drsn_edge.cli import main
from runtime.novelty.envelope_cache import EnvelopeCache
from runtime.novelty.smoothing import FlagArray
from runtime.novelty.stats import NoveltyScorer

acc: dict[str, float] = collections.defaultdict(float)
cnt: collections.Counter[str] = collections.Counter()


def wrap(owner: Any, name: str, key: str) -> None:
    """Replace ``owner.name`` by a wrapper that adds its thread time to ``acc[key]`` (if it exists)."""
    if not hasattr(owner, name):
        return
    f: Callable[..., Any] = getattr(owner, name)

    def timed(*a: Any, **k: Any) -> Any:
        t0 = time.thread_time()
        r = f(*a, **k)
        acc[key] += time.thread_time() - t0
        cnt[key] += 1
        return r

    setattr(owner, name, timed)


wrap(EnvelopeCache, "bands", "cache.bands")
wrap(EnvelopeCache, "_plan", "cache._plan")
if hasattr(ec, "_fresh_bands"):
    wrap(ec, "_fresh_bands", "fresh_bands")
else:
    wrap(ec, "window_bands", "fresh_bands")
wrap(NoveltyScorer, "score", "scorer.score")
wrap(rr, "score_batch", "score_batch")
wrap(rr, "quiet_rounds", "quiet_rounds")
wrap(rr, "round_novelty", "round_novelty")
wrap(rr.ResultRouter, "_step_rounds", "_step_rounds")
wrap(rr.ResultRouter, "on_batch", "on_batch")
wrap(scipy.fft, "rfft", "rfft")
if getattr(scm, "_rfft", None) is not None and getattr(scm._rfft(), "__name__", "") == "direct":
    # a tree whose bands call scipy's transform directly: time the function they call as "rfft"
    _direct = types.SimpleNamespace(f=scm._rfft())
    wrap(_direct, "f", "rfft")
    scm._rfft = lambda: _direct.f
wrap(scm.Mahalanobis, "nearest", "nearest")
wrap(ec, "rectified_bands", "rectified_bands")
wrap(FlagArray, "step_quiet", "step_quiet")


def report() -> None:
    n = cnt["score_batch"] or 1
    per_batch = {k: round(1e6 * v / n, 1) for k, v in acc.items()}
    print(f"SPLIT per batch (us, {n} batches):", per_batch, dict(cnt))


atexit.register(report)
sys.argv = ["drsn-edge", *sys.argv[1:]]
main()
