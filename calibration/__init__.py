"""Calibration statistics: judge error rates, rater agreement and error-corrected EM rates.

Everything here takes plain numbers, arrays and DataFrames (no database), so researchers can call it
on their own data; the CLI and the app adapt store rows into these calls.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names load on first use, so the CLI starts without the heavy libraries
    from emaudit.calibration.adaptive import AdaptivePlan, adaptive_allocation
    from emaudit.calibration.adaptive_sim import AdaptiveExtensionResult, adaptive_extension_replications
    from emaudit.calibration.agreement import (
        PREVALENCE_CAVEAT,
        AgreementEstimate,
        cohen_kappa,
        fleiss_kappa,
        krippendorff_alpha,
        mean_pairwise_cohen_kappa,
        percent_agreement,
    )
    from emaudit.calibration.binomial import clopper_pearson_ci, jeffreys_bounds, wilson_ci
    from emaudit.calibration.categories import (
        categories_section,
        category_agreement,
        category_shares,
        masi_distance,
        set_alpha,
    )
    from emaudit.calibration.clusters import cluster_rate, two_phase_cluster_rate
    from emaudit.calibration.consensus import RATER_LABEL_VOTES, HumanLabel, HumanLabels, human_labels
    from emaudit.calibration.contrasts import Difference, mover_difference
    from emaudit.calibration.coverage import (
        CoverageResult,
        RaterCoverage,
        question_coverage,
        rater_coverage,
        two_phase_coverage,
    )
    from emaudit.calibration.errors import (
        CalibrationInputError,
        InconsistentCalibrationError,
        UncorrectableJudgeError,
        UndefinedStatisticError,
    )
    from emaudit.calibration.estimate import ESTIMANDS, Estimate
    from emaudit.calibration.halfwidth import (
        HalfwidthAllocation,
        expected_halfwidths,
        halfwidth_allocation,
        halfwidth_allocation_batch,
    )
    from emaudit.calibration.imputation import widen_for_imputation
    from emaudit.calibration.judge_compare import JudgeComparison, JudgeRow, PairedDifference, compare_judges
    from emaudit.calibration.judge_compare_sim import (
        JudgePairCoverage,
        simulate_two_judge_study,
        two_judge_replications,
    )
    from emaudit.calibration.judge_errors import (
        JudgeErrorRates,
        judge_error_rates,
        judge_error_rates_from_confusion,
    )
    from emaudit.calibration.judge_scores import ScoreAgreement, ThresholdPoint, judge_score_agreement
    from emaudit.calibration.label_model import LabelFit, fit_label_model
    from emaudit.calibration.paper_report import Report, build_report, write_report
    from emaudit.calibration.planner import CellPlan, SamplePlan, next_batch, neyman_allocation, plan_sample
    from emaudit.calibration.pooled import (
        CellTransfer,
        PooledCalibration,
        TransferTest,
        pooled_judge_errors,
        pooled_rogan_gladen_rate,
        transfer_test,
    )
    from emaudit.calibration.pooled_plan import PooledCellPlan, PooledPlan, plan_pooled
    from emaudit.calibration.pooled_sim import PooledCoverage, pooled_coverage
    from emaudit.calibration.ppi import ppi_rate
    from emaudit.calibration.rater_model import RaterModel, dawid_skene, posterior_label_draws
    from emaudit.calibration.report import SCHEMA, calibrate_document
    from emaudit.calibration.report_store import ReportInputs, load_report_inputs
    from emaudit.calibration.report_view import DocumentView, read_document
    from emaudit.calibration.rogan_gladen import rogan_gladen_rate
    from emaudit.calibration.score_model import band_design, large_sample_bands, score_band_coverage
    from emaudit.calibration.simulation import (
        SimulatedStudy,
        TwoPhaseReplications,
        simulate,
        simulate_clustered,
        simulate_two_phase_counts,
        simulated_halfwidth,
    )
    from emaudit.calibration.store_plan import StorePlan, plan_cell, plan_from_store
    from emaudit.calibration.two_phase import two_phase_rate


_PUBLIC: dict[str, str] = {
    "AdaptivePlan": "emaudit.calibration.adaptive",
    "adaptive_allocation": "emaudit.calibration.adaptive",
    "AdaptiveExtensionResult": "emaudit.calibration.adaptive_sim",
    "adaptive_extension_replications": "emaudit.calibration.adaptive_sim",
    "HalfwidthAllocation": "emaudit.calibration.halfwidth",
    "expected_halfwidths": "emaudit.calibration.halfwidth",
    "halfwidth_allocation": "emaudit.calibration.halfwidth",
    "halfwidth_allocation_batch": "emaudit.calibration.halfwidth",
    "band_design": "emaudit.calibration.score_model",
    "large_sample_bands": "emaudit.calibration.score_model",
    "score_band_coverage": "emaudit.calibration.score_model",
    "JudgeComparison": "emaudit.calibration.judge_compare",
    "JudgeRow": "emaudit.calibration.judge_compare",
    "PairedDifference": "emaudit.calibration.judge_compare",
    "compare_judges": "emaudit.calibration.judge_compare",
    "JudgePairCoverage": "emaudit.calibration.judge_compare_sim",
    "simulate_two_judge_study": "emaudit.calibration.judge_compare_sim",
    "two_judge_replications": "emaudit.calibration.judge_compare_sim",
    "categories_section": "emaudit.calibration.categories",
    "category_agreement": "emaudit.calibration.categories",
    "category_shares": "emaudit.calibration.categories",
    "masi_distance": "emaudit.calibration.categories",
    "set_alpha": "emaudit.calibration.categories",
    "PREVALENCE_CAVEAT": "emaudit.calibration.agreement",
    "AgreementEstimate": "emaudit.calibration.agreement",
    "cohen_kappa": "emaudit.calibration.agreement",
    "fleiss_kappa": "emaudit.calibration.agreement",
    "krippendorff_alpha": "emaudit.calibration.agreement",
    "mean_pairwise_cohen_kappa": "emaudit.calibration.agreement",
    "percent_agreement": "emaudit.calibration.agreement",
    "clopper_pearson_ci": "emaudit.calibration.binomial",
    "jeffreys_bounds": "emaudit.calibration.binomial",
    "StorePlan": "emaudit.calibration.store_plan",
    "plan_cell": "emaudit.calibration.store_plan",
    "plan_from_store": "emaudit.calibration.store_plan",
    "wilson_ci": "emaudit.calibration.binomial",
    "CoverageResult": "emaudit.calibration.coverage",
    "Difference": "emaudit.calibration.contrasts",
    "mover_difference": "emaudit.calibration.contrasts",
    "Report": "emaudit.calibration.paper_report",
    "build_report": "emaudit.calibration.paper_report",
    "write_report": "emaudit.calibration.paper_report",
    "ReportInputs": "emaudit.calibration.report_store",
    "load_report_inputs": "emaudit.calibration.report_store",
    "DocumentView": "emaudit.calibration.report_view",
    "read_document": "emaudit.calibration.report_view",
    "two_phase_coverage": "emaudit.calibration.coverage",
    "CalibrationInputError": "emaudit.calibration.errors",
    "InconsistentCalibrationError": "emaudit.calibration.errors",
    "UncorrectableJudgeError": "emaudit.calibration.errors",
    "UndefinedStatisticError": "emaudit.calibration.errors",
    "Estimate": "emaudit.calibration.estimate",
    "RATER_LABEL_VOTES": "emaudit.calibration.consensus",
    "HumanLabel": "emaudit.calibration.consensus",
    "HumanLabels": "emaudit.calibration.consensus",
    "human_labels": "emaudit.calibration.consensus",
    "JudgeErrorRates": "emaudit.calibration.judge_errors",
    "judge_error_rates": "emaudit.calibration.judge_errors",
    "judge_error_rates_from_confusion": "emaudit.calibration.judge_errors",
    "ScoreAgreement": "emaudit.calibration.judge_scores",
    "ThresholdPoint": "emaudit.calibration.judge_scores",
    "judge_score_agreement": "emaudit.calibration.judge_scores",
    "CellPlan": "emaudit.calibration.planner",
    "SamplePlan": "emaudit.calibration.planner",
    "next_batch": "emaudit.calibration.planner",
    "neyman_allocation": "emaudit.calibration.planner",
    "plan_sample": "emaudit.calibration.planner",
    "ppi_rate": "emaudit.calibration.ppi",
    "SCHEMA": "emaudit.calibration.report",
    "calibrate_document": "emaudit.calibration.report",
    "rogan_gladen_rate": "emaudit.calibration.rogan_gladen",
    "CellTransfer": "emaudit.calibration.pooled",
    "PooledCalibration": "emaudit.calibration.pooled",
    "TransferTest": "emaudit.calibration.pooled",
    "pooled_judge_errors": "emaudit.calibration.pooled",
    "pooled_rogan_gladen_rate": "emaudit.calibration.pooled",
    "transfer_test": "emaudit.calibration.pooled",
    "PooledCellPlan": "emaudit.calibration.pooled_plan",
    "PooledPlan": "emaudit.calibration.pooled_plan",
    "plan_pooled": "emaudit.calibration.pooled_plan",
    "PooledCoverage": "emaudit.calibration.pooled_sim",
    "pooled_coverage": "emaudit.calibration.pooled_sim",
    "SimulatedStudy": "emaudit.calibration.simulation",
    "TwoPhaseReplications": "emaudit.calibration.simulation",
    "simulate": "emaudit.calibration.simulation",
    "simulate_two_phase_counts": "emaudit.calibration.simulation",
    "two_phase_rate": "emaudit.calibration.two_phase",
    "cluster_rate": "emaudit.calibration.clusters",
    "two_phase_cluster_rate": "emaudit.calibration.clusters",
    "RaterCoverage": "emaudit.calibration.coverage",
    "question_coverage": "emaudit.calibration.coverage",
    "rater_coverage": "emaudit.calibration.coverage",
    "widen_for_imputation": "emaudit.calibration.imputation",
    "LabelFit": "emaudit.calibration.label_model",
    "fit_label_model": "emaudit.calibration.label_model",
    "RaterModel": "emaudit.calibration.rater_model",
    "dawid_skene": "emaudit.calibration.rater_model",
    "posterior_label_draws": "emaudit.calibration.rater_model",
    "simulate_clustered": "emaudit.calibration.simulation",
    "simulated_halfwidth": "emaudit.calibration.simulation",
    "ESTIMANDS": "emaudit.calibration.estimate",
}


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'emaudit.calibration' has no attribute {name!r}")


__all__ = [
    "ESTIMANDS",
    "PREVALENCE_CAVEAT",
    "RATER_LABEL_VOTES",
    "SCHEMA",
    "AdaptiveExtensionResult",
    "AdaptivePlan",
    "AgreementEstimate",
    "CalibrationInputError",
    "CellPlan",
    "CellTransfer",
    "CoverageResult",
    "Difference",
    "DocumentView",
    "Estimate",
    "HalfwidthAllocation",
    "HumanLabel",
    "HumanLabels",
    "InconsistentCalibrationError",
    "JudgeComparison",
    "JudgeErrorRates",
    "JudgePairCoverage",
    "JudgeRow",
    "LabelFit",
    "PairedDifference",
    "PooledCalibration",
    "PooledCellPlan",
    "PooledCoverage",
    "PooledPlan",
    "RaterCoverage",
    "RaterModel",
    "Report",
    "ReportInputs",
    "SamplePlan",
    "ScoreAgreement",
    "SimulatedStudy",
    "StorePlan",
    "ThresholdPoint",
    "TransferTest",
    "TwoPhaseReplications",
    "UncorrectableJudgeError",
    "UndefinedStatisticError",
    "adaptive_allocation",
    "adaptive_extension_replications",
    "band_design",
    "build_report",
    "calibrate_document",
    "categories_section",
    "category_agreement",
    "category_shares",
    "clopper_pearson_ci",
    "cluster_rate",
    "cohen_kappa",
    "compare_judges",
    "dawid_skene",
    "expected_halfwidths",
    "fit_label_model",
    "fleiss_kappa",
    "halfwidth_allocation",
    "halfwidth_allocation_batch",
    "human_labels",
    "jeffreys_bounds",
    "judge_error_rates",
    "judge_error_rates_from_confusion",
    "judge_score_agreement",
    "krippendorff_alpha",
    "large_sample_bands",
    "load_report_inputs",
    "masi_distance",
    "mean_pairwise_cohen_kappa",
    "mover_difference",
    "next_batch",
    "neyman_allocation",
    "percent_agreement",
    "plan_cell",
    "plan_from_store",
    "plan_pooled",
    "plan_sample",
    "pooled_coverage",
    "pooled_judge_errors",
    "pooled_rogan_gladen_rate",
    "posterior_label_draws",
    "ppi_rate",
    "question_coverage",
    "rater_coverage",
    "read_document",
    "rogan_gladen_rate",
    "score_band_coverage",
    "set_alpha",
    "simulate",
    "simulate_clustered",
    "simulate_two_judge_study",
    "simulate_two_phase_counts",
    "simulated_halfwidth",
    "transfer_test",
    "two_judge_replications",
    "two_phase_cluster_rate",
    "two_phase_coverage",
    "two_phase_rate",
    "widen_for_imputation",
    "wilson_ci",
    "write_report",
]
