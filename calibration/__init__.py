"""Calibration statistics: judge error rates, rater agreement and error-corrected EM rates.

Everything here takes plain numbers, arrays and DataFrames (no database), so researchers can call it
on their own data; the CLI and the app adapt store rows into these calls.
"""

from emaudit.calibration.agreement import (
    PREVALENCE_CAVEAT,
    AgreementEstimate,
    cohen_kappa,
    fleiss_kappa,
    krippendorff_alpha,
    mean_pairwise_cohen_kappa,
    percent_agreement,
)
from emaudit.calibration.binomial import clopper_pearson_ci, wilson_ci
from emaudit.calibration.coverage import CoverageResult, two_phase_coverage
from emaudit.calibration.errors import CalibrationInputError, UncorrectableJudgeError, UndefinedStatisticError
from emaudit.calibration.estimate import Estimate
from emaudit.calibration.human_labels import RATER_LABEL_VOTES, HumanLabel, HumanLabels, human_labels
from emaudit.calibration.judge_errors import (
    JudgeErrorRates,
    judge_error_rates,
    judge_error_rates_from_confusion,
)
from emaudit.calibration.judge_scores import ScoreAgreement, ThresholdPoint, judge_score_agreement
from emaudit.calibration.planner import CellPlan, SamplePlan, next_batch, neyman_allocation, plan_sample
from emaudit.calibration.ppi import ppi_rate
from emaudit.calibration.report import SCHEMA, calibrate_document
from emaudit.calibration.rogan_gladen import rogan_gladen_rate
from emaudit.calibration.simulate import (
    SimulatedStudy,
    TwoPhaseReplications,
    simulate,
    simulate_two_phase_counts,
)
from emaudit.calibration.two_phase import two_phase_rate

__all__ = [
    "PREVALENCE_CAVEAT",
    "RATER_LABEL_VOTES",
    "SCHEMA",
    "AgreementEstimate",
    "CalibrationInputError",
    "CellPlan",
    "CoverageResult",
    "Estimate",
    "HumanLabel",
    "HumanLabels",
    "JudgeErrorRates",
    "SamplePlan",
    "ScoreAgreement",
    "SimulatedStudy",
    "ThresholdPoint",
    "TwoPhaseReplications",
    "UncorrectableJudgeError",
    "UndefinedStatisticError",
    "calibrate_document",
    "clopper_pearson_ci",
    "cohen_kappa",
    "fleiss_kappa",
    "human_labels",
    "judge_error_rates",
    "judge_error_rates_from_confusion",
    "judge_score_agreement",
    "krippendorff_alpha",
    "mean_pairwise_cohen_kappa",
    "next_batch",
    "neyman_allocation",
    "percent_agreement",
    "plan_sample",
    "ppi_rate",
    "rogan_gladen_rate",
    "simulate",
    "simulate_two_phase_counts",
    "two_phase_coverage",
    "two_phase_rate",
    "wilson_ci",
]
