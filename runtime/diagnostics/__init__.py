"""Physics evidence for bearing faults: kinematics, the fast kurtogram and envelope analysis.

numpy and scipy only (never torch), so the daemon can attach this evidence to its alerts on the
device.
"""
