"""Regenerate the README's images in docs/: a report figure from `emaudit demo` and an app screenshot.

    python scripts/make_docs_images.py

Runs the demo in a temporary folder, copies its EM-vs-shots figure to docs/report_shots.png, then adds
three unrated items and a rater to a copy of the demo study, serves the app (`streamlit run`, as
`emaudit app` does) and screenshots the rater page with Playwright driving /usr/bin/chromium.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"
CHROMIUM = Path("/usr/bin/chromium")


def main() -> None:
    from emaudit.annotate import add_rater
    from emaudit.annotate.app.server import app_command, free_port, wait_until_serving
    from emaudit.cli import main as emaudit
    from emaudit.store import make_engine, write_session

    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "demo"
        try:
            emaudit(["demo", "--dir", str(directory)])
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                raise
        shutil.copy(directory / "report" / "figures" / "shots.png", DOCS / "report_shots.png")
        url = f"sqlite:///{directory / 'demo.db'}"
        try:
            emaudit(["--db", url, "study", "extend", "demo", "--add", "3"])
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                raise
        engine = make_engine(url)
        with write_session(engine) as session:
            token = add_rater(session, "screenshot rater", study="demo").token
        engine.dispose()
        port = free_port()
        env = os.environ | {"EMAUDIT_DATABASE_URL": url}
        process = subprocess.Popen(
            app_command(port, "127.0.0.1"),
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_serving(base, process)
            from playwright.sync_api import expect, sync_playwright

            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM),
                    headless=True,
                    args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
                )
                page = browser.new_page(viewport={"width": 1100, "height": 1100})
                page.set_default_timeout(60_000)
                page.goto(f"{base}/?token={token}")
                expect(page.get_by_test_id("stProgress")).to_be_visible(timeout=60_000)
                expect(page.locator("[data-stale='true']")).to_have_count(0)
                time.sleep(1.0)
                page.screenshot(path=str(DOCS / "app_rater.png"), full_page=True)
                browser.close()
        finally:
            process.terminate()
            process.wait(timeout=10)
    print(f"wrote {DOCS / 'report_shots.png'} and {DOCS / 'app_rater.png'}", file=sys.stderr)


if __name__ == "__main__":
    main()
