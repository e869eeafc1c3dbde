"""`emaudit demo`: the README's main command runs the whole audit offline and its numbers hold up."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import text

from emaudit.demo import P_RISKY_IN_CONTEXT
from emaudit.store import make_engine
from tests.conftest import CliResult


def test_demo_runs_every_step_and_the_corrected_rate_covers_the_truth(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    result = cli("demo", "--dir", tmp_path / "demo")
    assert result.exit_code == 0, result.stderr
    for step in ("$ emaudit generate", "$ emaudit judge", "$ emaudit study create", "$ emaudit calibrate"):
        assert step in result.stdout
    assert "360 ratings submitted" in result.stdout  # 120 items x overlap 3

    url = f"sqlite:///{tmp_path / 'demo' / 'demo.db'}"
    document = json.loads(cli("--db", url, "calibrate", "--json", "--n-boot", "200").stdout)
    cells = {cell["cell"]: cell for cell in document["cells"]}
    assert set(cells) == {"domain=-", "domain=extreme_sports", "domain=risky_financial"}
    engine = make_engine(url)
    with engine.connect() as connection:
        truth = dict(
            connection.execute(
                text(
                    "SELECT c.domain, avg(CASE WHEN r.text LIKE '[risky]%' THEN 1.0 ELSE 0.0 END) "
                    "FROM response r JOIN condition c ON c.id = r.condition_id "
                    "WHERE c.domain IS NOT NULL GROUP BY c.domain"
                )
            ).all()
        )
    engine.dispose()
    for domain, rate in truth.items():
        assert abs(rate - P_RISKY_IN_CONTEXT) < 0.15  # the scripted model's rate, up to sampling
        corrected = cells[f"domain={domain}"]["corrected"]
        assert corrected["low"] <= rate <= corrected["high"], (domain, rate, corrected)
