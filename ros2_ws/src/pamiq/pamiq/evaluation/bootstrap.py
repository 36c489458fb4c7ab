"""Bootstrap confidence intervals of a mean, and of two methods compared on the same episodes.

Why the bootstrap: cells per episode is a bounded count with a skewed distribution, and a
ratio of two means has no simple standard error. Why paired: every method plays the same seed
list, so the same spawns; resampling episode indices jointly for both methods keeps each pair
together and removes the spawn-to-spawn spread from the comparison. Percentile intervals,
numpy only, seeded so a report is reproducible.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

RESAMPLES = 10_000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A statistic and its bootstrap confidence interval."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)

    def text(self, digits: int = 1) -> str:
        """'24.3 [22.1, 26.4]'."""
        return f'{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]'


def _resampled_indices(count: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, count) episode indices drawn with replacement."""
    if count < 1:
        raise ValueError('no episodes to resample')
    return np.random.default_rng(seed).integers(0, count, (resamples, count))


def _interval(value: float, samples: np.ndarray, confidence: float) -> Estimate:
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.nanpercentile(samples, [tail, 100.0 - tail])
    return Estimate(float(value), float(low), float(high))


def bootstrap_mean(
    values, resamples: int = RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE
) -> Estimate:
    """The mean of per-episode values with its percentile bootstrap interval."""
    values = np.asarray(values, float)
    means = values[_resampled_indices(len(values), resamples, seed)].mean(axis=1)
    return _interval(values.mean(), means, confidence)


def _paired(method, baseline) -> tuple[np.ndarray, np.ndarray]:
    method, baseline = np.asarray(method, float), np.asarray(baseline, float)
    if method.shape != baseline.shape:
        raise ValueError(
            f'paired episodes differ in number: {method.shape} against {baseline.shape}'
        )
    return method, baseline


def paired_ratio(
    method, baseline, resamples: int = RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE
) -> Estimate:
    """mean(method) / mean(baseline) over the same episodes, resampled in pairs.

    A resample whose baseline mean is 0 has no ratio and is left out of the interval.
    """
    method, baseline = _paired(method, baseline)
    indices = _resampled_indices(len(method), resamples, seed)
    with np.errstate(divide='ignore', invalid='ignore'):
        ratios = method[indices].mean(axis=1) / baseline[indices].mean(axis=1)
        value = method.mean() / baseline.mean()
    return _interval(value, np.where(np.isfinite(ratios), ratios, np.nan), confidence)


def paired_difference(
    method, baseline, resamples: int = RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE
) -> Estimate:
    """mean(method - baseline) over the same episodes, resampled in pairs."""
    method, baseline = _paired(method, baseline)
    return bootstrap_mean(method - baseline, resamples, seed, confidence)
