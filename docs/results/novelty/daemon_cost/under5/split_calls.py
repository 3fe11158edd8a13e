"""bench daemon with the novelty path's calls timed in place (thread time per call, summed), printed per batch at exit."""
import sys, time, atexit, collections
# the code under test comes from PYTHONPATH (before) or the installed checkout (after)
import runtime.results_router as rr
from runtime.novelty.envelope_cache import EnvelopeCache
from runtime.novelty.stats import NoveltyScorer
import runtime.novelty.envelope_cache as ec
acc = collections.defaultdict(float); cnt = collections.Counter()
def wrap(owner, name, key):
    f = getattr(owner, name)
    def g(*a, **k):
        t0 = time.thread_time(); r = f(*a, **k); acc[key] += time.thread_time() - t0; cnt[key] += 1; return r
    setattr(owner, name, g)
wrap(EnvelopeCache, "bands", "cache.bands")
wrap(ec, "_fresh_bands", "fresh_bands") if hasattr(ec, "_fresh_bands") else wrap(ec, "window_bands", "fresh_bands")
wrap(NoveltyScorer, "score", "scorer.score")
wrap(rr, "score_batch", "score_batch")
wrap(rr, "quiet_rounds", "quiet_rounds") if hasattr(rr, "quiet_rounds") else None
wrap(rr, "round_novelty", "round_novelty")
wrap(rr.ResultRouter, "_step_rounds", "_step_rounds")
wrap(rr.ResultRouter, "on_batch", "on_batch")
import scipy.fft
wrap(scipy.fft, "rfft", "rfft")
import runtime.novelty.scores as scm
wrap(scm.Mahalanobis, "nearest", "nearest") if hasattr(scm.Mahalanobis, "nearest") else None
wrap(ec, "rectified_bands", "rectified_bands") if hasattr(ec, "rectified_bands") else None
from runtime.novelty.smoothing import FlagArray
wrap(FlagArray, "step_quiet", "step_quiet") if hasattr(FlagArray, "step_quiet") else None
def report():
    n = cnt["score_batch"] or 1
    print("SPLIT per batch (us, %d batches):" % n, {k: round(1e6 * v / n, 1) for k, v in acc.items()}, dict(cnt))
atexit.register(report)
from drsn_edge.cli import main
sys.argv = ["drsn-edge"] + sys.argv[1:]
main()
