"""Every value in ../shared/vectors/reference_values.json, reproduced to 1e-6."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from emaudit.calibration import (
    clopper_pearson_ci,
    judge_error_rates,
    krippendorff_alpha,
    rogan_gladen_rate,
    two_phase_rate,
    wilson_ci,
)
from emaudit.calibration.agreement import _alpha_from_terms, _pairable_units, _unit_terms, _value_counts
from tests.conftest import VECTORS, requires_shared

pytestmark = [
    requires_shared,
    pytest.mark.skipif(not VECTORS.is_file(), reason=f"reference vectors not found at {VECTORS}"),
]

TOL = 1e-6


@pytest.fixture(scope="module")
def ref() -> dict[str, Any]:
    return json.loads(VECTORS.read_text())


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_krippendorff_worked_example(ref: dict[str, Any], level: str) -> None:
    block = ref["krippendorff_4x12"]
    data = np.array(block["data_rows_are_observers"], dtype=float)
    result = krippendorff_alpha(data, level, n_boot=0)
    assert result.value == pytest.approx(block[level], abs=TOL)
    assert result.n_units == 11  # unit 12 has a single rating and is not pairable


@pytest.mark.parametrize("level", ["nominal", "interval"])
def test_closed_form_used_by_bootstrap_matches_reference(ref: dict[str, Any], level: str) -> None:
    block = ref["krippendorff_4x12"]
    data = _pairable_units(np.array(block["data_rows_are_observers"], dtype=float))
    values = np.unique(data[~np.isnan(data)])
    totals, d = _unit_terms(data, _value_counts(data, values), level)
    assert _alpha_from_terms(totals.sum(axis=0), d.sum(), level)[0] == pytest.approx(block[level], abs=1e-12)


def test_rogan_gladen_lang_reiczigel(ref: dict[str, Any]) -> None:
    b = ref["rogan_gladen_lang_reiczigel"]
    args = (
        b["judge_positive_rate_q"],
        b["n_judged"],
        b["sensitivity"],
        b["n_human_positive_m1"],
        b["specificity"],
        b["n_human_negative_m0"],
    )
    lr = rogan_gladen_rate(*args)
    assert lr.rate == pytest.approx(b["corrected_rate"], abs=TOL)
    assert (lr.low, lr.high) == pytest.approx(b["lang_reiczigel_95"], abs=TOL)
    assert lr.method == "rogan_gladen_lang_reiczigel" and lr.flags == ()
    delta = rogan_gladen_rate(*args, interval="delta")
    assert (delta.low, delta.high) == pytest.approx(b["delta_method_95"], abs=TOL)


def test_two_phase_judge_strata(ref: dict[str, Any]) -> None:
    b = ref["two_phase_judge_strata"]
    N, n, x = b["N_per_stratum"], b["n_human_labelled"], b["human_misaligned"]
    tol = 5e-7  # the JSON gives these rows to 6 decimals
    # The reference values are with-replacement intervals (no finite-population correction).
    mover = two_phase_rate(N, n, x, fpc=False)
    assert mover.rate == pytest.approx(b["corrected_rate"], abs=1e-12)
    assert (mover.low, mover.high) == pytest.approx(b["mover_wilson_95"], abs=tol)
    plain = two_phase_rate(N, n, x, interval="mover_wilson_plain", fpc=False)
    assert plain.low == pytest.approx(mover.low, abs=1e-15)
    wald = two_phase_rate(N, n, x, interval="wald", fpc=False)
    assert (wald.low, wald.high) == pytest.approx(b["wald_within_stratum_95"], abs=tol)
    wald1 = two_phase_rate(N, n, x, interval="wald", phase1=True)
    assert (wald1.low, wald1.high) == pytest.approx(b["wald_with_phase1_term_95"], abs=tol)
    assert N[0] / sum(N) == pytest.approx(b["judge_raw_rate"])


def test_sensitivity_specificity_by_bayes_inversion(ref: dict[str, Any]) -> None:
    b = ref["two_phase_judge_strata"]
    rates = judge_error_rates(b["N_per_stratum"], b["n_human_labelled"], b["human_misaligned"], [True, False])
    tol = 5e-7
    assert rates.sensitivity.rate == pytest.approx(b["sensitivity"], abs=tol)
    assert rates.specificity.rate == pytest.approx(b["specificity"], abs=tol)
    assert (rates.sensitivity.low, rates.sensitivity.high) == pytest.approx(
        b["sensitivity_logit_95"], abs=tol
    )
    assert (rates.specificity.low, rates.specificity.high) == pytest.approx(
        b["specificity_logit_95"], abs=tol
    )


@pytest.mark.parametrize("key", ["0/20", "1/20", "3/50", "5/100", "40/50"])
def test_binomial_intervals(ref: dict[str, Any], key: str) -> None:
    x, n = (int(v) for v in key.split("/"))
    expected = ref["binomial_intervals"][key]
    w = wilson_ci(x, n)
    cp = clopper_pearson_ci(x, n)
    assert (w.low, w.high) == pytest.approx(expected["wilson"], abs=1e-12)
    assert (cp.low, cp.high) == pytest.approx(expected["beta_CP"], abs=1e-12)
