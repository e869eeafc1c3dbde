"""The docstring examples run as tests (they double as hand-checked values)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "two_phase",
    "binomial",
    "store_plan",
    "rogan_gladen",
    "judge_errors",
    "agreement",
    "planner",
    "clusters",
    "adaptive",
    "pooled",
    "pooled_plan",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"emaudit.calibration.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
