"""The drift alarms on /metrics: gauges made when Prometheus scrapes, from the database, kept a minute.

More: docs/operations.md, "Drift alarms"; docs/architecture.md, "modelops/drift.py".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from core import mongo
from estimations.selectors import versions_with_actuals
from ml.markets import split_segment
from ml.serving import model_registry
from modelops import segments
from modelops.drift import MAX_ERROR_FACTOR, MIN_ACTUALS, MIN_LIVE_COVERAGE, REASONS, version_drift

logger = logging.getLogger(__name__)

CACHE_SECONDS = 60.0  # a worker reads the actuals at most once a minute, however often it is scraped
VERSIONS = 3  # the newest versions with a model card and actuals (and the active one): bounded series
# Series per family: at most VERSIONS x the segments (marketplace x category) each version was trained for
# (x the reasons, for the alarm); actuals in a segment the version lacks add none.
ALARM_HELP = (
    f"1 when a version's marketplace x category drifted (reason: coverage under {MIN_LIVE_COVERAGE}, or "
    f"median_error over {MAX_ERROR_FACTOR}x the holdout's), with at least {MIN_ACTUALS} recorded actuals; else 0"
)


def drift_families() -> list[Metric]:
    """The gauges, from one read of the registry and of each version's actuals."""
    labels = ["version", "marketplace", "category"]
    alarm = GaugeMetricFamily("model_drift_alarm", ALARM_HELP, labels=[*labels, "reason"])
    actuals = GaugeMetricFamily(
        "model_drift_actuals", "Recorded actual sales per version, marketplace and category", labels=labels
    )
    coverage = GaugeMetricFamily(
        "model_drift_live_coverage", "Share of recorded actuals within the stored 80% interval", labels=labels
    )
    error = GaugeMetricFamily(
        "model_drift_live_median_error",
        "Median |estimated_sales - actual| / actual over recorded actuals > 0",
        labels=labels,
    )
    for metadata in _versions_in_scope():
        version, trained = str(metadata["version"]), set(segments.of_version(metadata))
        for name, figures in version_drift(metadata)["per_category"].items():
            if name not in trained:
                continue  # the labels stay those of the version's own curves, whatever is stored
            series = [version, *split_segment(name)]
            for reason in REASONS:
                alarm.add_metric([*series, reason], 1.0 if reason in figures["reasons"] else 0.0)
            actuals.add_metric(series, figures["actuals"])
            if figures["live_coverage"] is not None:
                coverage.add_metric(series, figures["live_coverage"])
            if figures["live_median_error"] is not None:
                error.add_metric(series, figures["live_median_error"])
    return [alarm, actuals, coverage, error]


def _versions_in_scope() -> list[dict[str, Any]]:
    registry = model_registry()
    carded = {meta["version"]: meta for meta in registry.list() if meta.get("model_card") is not None}
    measured = versions_with_actuals()
    active = registry.active_version()
    if active is not None:
        measured.add(active)
    return [carded[version] for version in sorted(measured & set(carded), reverse=True)[:VERSIONS]]


class DriftCollector:
    """Serves ``drift_families`` on /metrics, computed at most once per CACHE_SECONDS in a process (per
    database); a failed read answers model_drift_check_success 0, and the rest of /metrics as usual."""

    def __init__(self, cache_seconds: float = CACHE_SECONDS):
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: tuple[Any, float, list[Metric]] | None = None

    def forget(self) -> None:
        with self._lock:
            self._cached = None

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            key = (settings.MONGO_URI, mongo.database_name())
            if self._cached is None or self._cached[0] != key or time.monotonic() >= self._cached[1]:
                self._cached = (key, time.monotonic() + self.cache_seconds, self._families())
            families = self._cached[2]
        yield from families

    def _families(self) -> list[Metric]:
        success = GaugeMetricFamily(
            "model_drift_check_success", "1 when the drift figures could be read from the database, else 0"
        )
        try:
            families = drift_families()
        except Exception:  # noqa: BLE001 - the drift figures must not cost the scrape its other metrics
            logger.exception("drift figures could not be read for /metrics")
            success.add_metric([], 0.0)
            return [success]
        success.add_metric([], 1.0)
        return [*families, success]


COLLECTOR = DriftCollector()
