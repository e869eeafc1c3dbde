"""Every package lists its public API in ``__all__``, and every listed name exists."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["emaudit", "emaudit.judge", "emaudit.annotate", "emaudit.calibration"])
def test_all_names_resolve(package: str) -> None:
    module = importlib.import_module(package)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert module.__all__ and missing == []


@pytest.mark.parametrize("package", ["emaudit", "emaudit.judge", "emaudit.annotate", "emaudit.calibration"])
def test_no_public_name_is_also_a_module(package: str) -> None:
    # Names load lazily: a submodule with a public name's name would replace it once imported.
    import pkgutil

    module = importlib.import_module(package)
    modules = {info.name for info in pkgutil.iter_modules(module.__path__)}
    assert modules.isdisjoint(module.__all__)


def test_cli_starts_without_loading_the_heavy_libraries() -> None:
    # `emaudit --help` must stay quick: pandas, scikit-learn and openai load in the commands that use them
    code = (
        "import sys; from emaudit.cli import app; "
        "print(sorted(m for m in ('pandas', 'sklearn', 'openai', 'streamlit') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
