"""Prometheus series of the envelope diagnostics, on the daemon's own registry.

An operator wants to see that the evidence is being produced (analyses), what it says about the
classifier (corroborated true / false / not_applicable), what it raised by itself (alerts), what
went wrong (failures, speed unavailable, worker restarts) and what it costs (analysis CPU
seconds). Registered on the registry of :class:`runtime.metrics.Metrics` so that one scrape
serves everything; kept here so the diagnostics stay one package.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from runtime.metrics import NAMESPACE

#: CPU seconds of one analysis: about 10 ms for 1-2 s at 12 kHz on a small ARM/x86 core
ANALYSIS_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
CORROBORATION = ("true", "false", "not_applicable")


class DiagnosticsMetrics:
    """The counters and the histogram; each method is one observation."""

    def __init__(self, registry: CollectorRegistry) -> None:
        ns, r = NAMESPACE, registry
        self.analyses = Counter(
            "diagnostics_analyses", "Envelope analyses run (fault entries and periodic).", ["sensor"],
            namespace=ns, registry=r,
        )
        self.corroborated = Counter(
            "diagnostics_corroborated", "Fault entries by what the envelope said of the class: "
            "result=true (same fault type), false (not confirmed), not_applicable (no bearing fault "
            "class, no speed, failed analysis). Labelled by result only, so that the daemon's MQTT "
            "metrics message shows the three counts too.", ["result"], namespace=ns, registry=r,
        )
        for result in CORROBORATION:  # present from the start, at 0
            self.corroborated.labels(result)
        self.alerts = Counter(
            "diagnostics_alerts", "Own alerts: a strong envelope signature while the classifier said "
            "healthy.",
            ["sensor"], namespace=ns, registry=r,
        )
        self.failures = Counter(
            "diagnostics_failures", "Analyses that failed (their events were published with envelope.error).",
            ["sensor"], namespace=ns, registry=r,
        )
        self.speed_unavailable = Counter(
            "diagnostics_speed_unavailable", "Analyses skipped because the speed was missing, stale or zero.",
            ["sensor"], namespace=ns, registry=r,
        )
        self.worker_restarts = Counter(
            "diagnostics_worker_restarts", "Diagnostics workers that died and were restarted.",
            namespace=ns, registry=r,
        )
        self.analysis_seconds = Histogram(
            "diagnostics_analysis_seconds", "CPU seconds of one envelope analysis (worker thread time).",
            namespace=ns, registry=r, buckets=ANALYSIS_BUCKETS,
        )

    def corroboration(self, value: bool | str) -> None:
        result = value if isinstance(value, str) else ("true" if value else "false")
        self.corroborated.labels(result).inc()
