"""Which estimator answers requests.

PLACEHOLDER (replaced by issue 3): always the literature-curve estimator. Issue 3 puts the model
registry behind ``get_estimator`` without changing its callers.
"""

from __future__ import annotations

from .estimators import Estimator, LiteratureCurveEstimator

_placeholder = LiteratureCurveEstimator()


def get_estimator() -> Estimator:
    return _placeholder
