"""Errors raised by the calibration statistics: each says what to change."""

from __future__ import annotations

from emaudit.errors import EmauditError


class CalibrationInputError(EmauditError, ValueError):
    """Inputs a statistic cannot use (wrong shape, counts out of range, an empty stratum)."""


class UncorrectableJudgeError(CalibrationInputError):
    """The judge carries too little information to correct (Youden's J near or below 0)."""


class UndefinedStatisticError(CalibrationInputError):
    """The statistic is undefined for these data (e.g. alpha when every rating is the same value)."""


class InconsistentCalibrationError(CalibrationInputError):
    """The target data contradict the calibration pool (e.g. a judge rate below its false positive rate)."""
