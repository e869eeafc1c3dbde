"""DESIGN.md: dependencies point one way, and ``calibration`` never imports ``annotate`` or ``judge``.

Checked on the source, lazy imports inside functions included: a statistic must stay callable on a
researcher's own arrays without the rating app or the model client installed beside it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "calibration": ("emaudit.annotate", "emaudit.judge"),
    "emaudit": ("emaudit.annotate", "emaudit.judge", "emaudit.calibration"),
}
# The core's CLI and demo wire the three packages together (DESIGN: "the CLI and the app adapt"), and
# rates.py is the `rates` command's adapter (its questions interval is calibration.clusters on arrays).
CORE_WIRING = {"cli.py", "demo.py", "rates.py"}


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_the_design_allows(package: str) -> None:
    offending = []
    for path in sorted((ROOT / package).rglob("*.py")):
        if package == "emaudit" and (path.name in CORE_WIRING or "migrations" in path.parts):
            continue
        for line, module in _imports(path):
            if module.startswith(FORBIDDEN[package]):
                offending.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not offending, "\n".join(offending)


def test_the_check_sees_lazy_imports(tmp_path: Path) -> None:
    # The calibration modules used to import annotate inside functions; the scan must catch that form.
    module = tmp_path / "lazy.py"
    module.write_text("def f():\n    from emaudit.annotate.sampling import load_frame\n", encoding="utf-8")
    assert _imports(module) == [(2, "emaudit.annotate.sampling")]
