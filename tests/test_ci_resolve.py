"""CI resolves the newest allowed release of every dependency (issue 14: typer 0.29 broke the CLI while
CI kept an older typer), and pyproject caps a dependency only with a comment saying which release broke."""

from __future__ import annotations

import re
import tomllib

from tests.conftest import REPO


def test_ci_installs_a_fresh_resolve_without_a_cache() -> None:
    script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    installs = [line for line in script.splitlines() if "pip install" in line and "-e " in line]
    assert len(installs) == 1
    (install,) = installs
    for flag in ("--upgrade", "--upgrade-strategy eager", "--no-cache-dir"):
        assert flag in install, f".ci/run installs without {flag}: {install}"


def test_every_upper_bound_says_why() -> None:
    text = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    project = tomllib.loads(text)["project"]
    requirements = list(project["dependencies"]) + [
        r for extra in project["optional-dependencies"].values() for r in extra
    ]
    for requirement in requirements:
        if re.search(r"<(?!=?\s*$)", requirement):
            line = next(line for line in text.splitlines() if f'"{requirement}"' in line)
            assert "#" in line.split(f'"{requirement}"', 1)[1], f"upper bound without a reason: {requirement}"
