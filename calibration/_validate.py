"""Input checks shared by the estimators; every message says what to change."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import norm

from emaudit.calibration.errors import CalibrationInputError


def check_confidence(confidence: float) -> float:
    """Return the two-sided normal quantile for ``confidence`` after checking 0 < confidence < 1."""
    if not 0.0 < float(confidence) < 1.0:
        raise CalibrationInputError(
            f"confidence must be strictly between 0 and 1 (e.g. 0.95); got {confidence}"
        )
    return float(norm.ppf(0.5 + float(confidence) / 2.0))


def count_array(name: str, values: ArrayLike | Sequence[float], *, whole: bool = True) -> NDArray[np.float64]:
    """A 1-D float array of non-negative counts (whole unless ``whole=False``), or an error."""
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise CalibrationInputError(
            f"{name} must be a non-empty 1-D sequence of counts; got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise CalibrationInputError(f"{name} contains NaN or infinite values; pass whole counts")
    if np.any(arr < 0) or (whole and np.any(arr != np.round(arr))):
        raise CalibrationInputError(f"{name} must hold non-negative whole counts; got {arr.tolist()}")
    return arr


def proportion(name: str, value: float, *, open_interval: bool = False) -> float:
    """``value`` as a float in [0, 1] (or (0, 1) when ``open_interval``), or an error naming ``name``."""
    v = float(value)
    bad = not (0.0 < v < 1.0) if open_interval else not (0.0 <= v <= 1.0)
    if not np.isfinite(v) or bad:
        bounds = "strictly between 0 and 1" if open_interval else "between 0 and 1"
        raise CalibrationInputError(f"{name} must be a proportion {bounds}; got {value}")
    return v


def same_length(**arrays: NDArray[np.float64]) -> None:
    """Raise unless every array has the same length."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise CalibrationInputError(f"give one value per stratum in each argument; lengths differ: {detail}")
