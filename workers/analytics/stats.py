"""Small statistical building blocks shared by the analyses (robust scales, intervals, FDR)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from scipy import stats as st

FloatArray = NDArray[np.float64]

#: Iglewicz & Hoaglin: |modified z| above this is an outlier.
OUTLIER_Z = 3.5
_MAD_TO_SD = 1.4826


def outlier_threshold(n: int, family_alpha: float = 0.01) -> float:
    """|robust z| above which a point is an outlier: 3.5, raised for large samples so that pure
    Gaussian noise yields a false alarm in at most ``family_alpha`` of datasets (Bonferroni)."""
    return max(OUTLIER_Z, float(st.norm.isf(family_alpha / (2 * max(n, 1)))))


def robust_scale(x: FloatArray) -> float:
    """A standard-deviation-like scale that a few outliers cannot inflate (MAD, then IQR)."""
    if x.size == 0:
        return 0.0
    med = float(np.median(x))
    mad = float(np.median(np.abs(x - med))) * _MAD_TO_SD
    if mad > 0:
        return mad
    q75, q25 = np.percentile(x, [75, 25])
    iqr = float(q75 - q25) / 1.349
    if iqr > 0:
        return iqr
    return float(np.mean(np.abs(x - med))) * 1.2533


def robust_z(x: FloatArray) -> FloatArray:
    """Modified z-scores around the median; zeros when the data has no spread at all."""
    scale = robust_scale(x)
    if scale <= 0 or not math.isfinite(scale):
        return np.zeros_like(x)
    return (x - float(np.median(x))) / scale


def wilson(
    k: NDArray[np.int64], n: NDArray[np.int64], z: float = 1.96
) -> tuple[FloatArray, FloatArray]:
    """Wilson score interval for k successes in n trials; honest for small n and rates near 0."""
    n_f = np.maximum(n.astype(np.float64), 1.0)
    p = k / n_f
    denom = 1 + z**2 / n_f
    centre = (p + z**2 / (2 * n_f)) / denom
    half = z * np.sqrt(p * (1 - p) / n_f + z**2 / (4 * n_f**2)) / denom
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def fdr(p_values: FloatArray) -> FloatArray:
    """Benjamini-Hochberg adjusted p-values (many tests must not manufacture findings)."""
    if p_values.size == 0:
        return p_values
    clipped = np.clip(np.nan_to_num(p_values, nan=1.0), 0.0, 1.0)
    return np.asarray(st.false_discovery_control(clipped), dtype=np.float64)


def quantile_sample(x: FloatArray, size: int = 2000) -> FloatArray:
    """A deterministic, order-independent stand-in for a big sample: its evenly spaced quantiles."""
    if x.size <= size:
        return np.sort(x)
    return np.quantile(x, np.linspace(0, 1, size))


def confidence(p_value: float, n: int, n_full: int = 30) -> float:
    """Confidence 0..0.99 from a p-value, discounted when the sample is small."""
    if not math.isfinite(p_value):
        return 0.0
    base = min(max(1.0 - p_value, 0.0), 0.99)
    return round(base * min(1.0, math.sqrt(max(n, 0) / n_full)), 2)


def corr_p_value(r: FloatArray, n: FloatArray) -> FloatArray:
    """Two-sided p-value of a correlation coefficient via the t distribution."""
    with np.errstate(divide="ignore", invalid="ignore"):
        dof = np.maximum(n - 2, 1)
        t = np.abs(r) * np.sqrt(dof / np.maximum(1 - r**2, 1e-300))
        p = 2 * st.t.sf(t, dof)
    return np.where(n > 2, np.nan_to_num(p, nan=1.0), 1.0)


def greater_p(sample: FloatArray, rest: FloatArray) -> float:
    """One-sided Mann-Whitney p that ``sample`` tends to be larger than ``rest``."""
    if sample.size < 3 or rest.size < 3:
        return 1.0
    if np.ptp(np.concatenate([sample, rest])) == 0:
        return 1.0
    result = st.mannwhitneyu(sample, rest, alternative="greater", method="asymptotic")
    return float(result.pvalue)
