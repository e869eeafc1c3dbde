"""Start the rating app: ``streamlit run`` of the router as a child process that stops with its parent.

:func:`serve_app` is what ``emaudit app`` (and ``emaudit demo --app``) call. Streamlit runs in a
child process (its runtime wants to own the main thread and the event loop); the parent forwards
SIGTERM, SIGINT and SIGHUP to it and waits, so a service manager's stop (SIGTERM) ends the server
and frees the port instead of leaving an orphan that makes the next start fail.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

ROUTER = Path(__file__).resolve().with_name("streamlit_app.py")
_FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_STOP_GRACE_SECONDS = 10


def app_command(port: int, address: str) -> list[str]:
    """The ``streamlit run`` command line of the rating app (headless; no telemetry, no tracebacks)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROUTER),
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--server.headless",
        "true",
        "--server.runOnSave",
        "false",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        # Raters must never see a stack trace (it could show SQL or paths); operators read the log.
        "--client.showErrorDetails",
        "none",
        "--client.toolbarMode",
        "minimal",
    ]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a test, benchmark or docs server)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_serving(url: str, process: subprocess.Popen[Any], *, timeout: float = 60) -> None:
    """Return once the app at ``url`` answers Streamlit's health check.

    Raises:
        RuntimeError: ``process`` (the server, or the command that starts it) exited first.
        TimeoutError: no answer within ``timeout`` seconds.
    """
    import urllib.request  # here, not at import: every CLI start imports this module

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"streamlit did not answer at {url} within {timeout:g} s")


def serve_app(
    database_url: str,
    *,
    port: int = 8501,
    address: str = "localhost",
    env: Mapping[str, str] | None = None,
) -> int:
    """Serve the rating app on ``address:port`` for the store at ``database_url`` until it stops.

    Blocks until the server exits. SIGTERM / SIGINT / SIGHUP sent to this process are passed on to
    the server (which then shuts down cleanly); if it has not exited ``_STOP_GRACE_SECONDS`` later
    it is killed. The caller checks the database first (``emaudit.console.cli_engine``).

    Args:
        database_url: The store's URL, with its password (the child reads it from the environment).
        port: The port to listen on.
        address: The address to listen on (``0.0.0.0`` for other machines; put TLS in front).
        env: The child's environment (default: this process's), ``EMAUDIT_DATABASE_URL`` added.

    Returns:
        The server's exit code (0 after a forwarded stop signal).
    """
    child_env = dict(os.environ if env is None else env) | {"EMAUDIT_DATABASE_URL": database_url}
    child = subprocess.Popen(app_command(port, address), env=child_env)
    stopping: list[int] = []

    def forward(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signum)
        if child.poll() is None:
            child.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    previous = {signum: signal.signal(signum, forward) for signum in _FORWARDED}
    try:
        while True:
            try:
                code = child.wait(timeout=_STOP_GRACE_SECONDS if stopping else None)
                break
            except subprocess.TimeoutExpired:
                child.kill()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if child.poll() is None:  # an exception in this process: never leave the server behind
            child.kill()
            child.wait()
    return 0 if stopping and code in (0, -signal.SIGTERM, -signal.SIGINT) else code
