"""``emaudit app`` as a service manager runs it: started, stopped with SIGTERM, started again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from emaudit.annotate.app.server import free_port, wait_until_serving
from emaudit.store import make_engine, migrate


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def test_sigterm_stops_the_streamlit_child_and_frees_the_port(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'app.db'}"
    engine = make_engine(database_url)
    migrate(engine)
    engine.dispose()
    port = free_port()
    command = [sys.executable, "-c", "from emaudit.cli import main; main()", "app", "--port", str(port)]
    command += ["--db", database_url, "--address", "127.0.0.1"]
    for start in range(2):  # the second start works: the first left nothing on the port
        log = (tmp_path / f"app{start}.log").open("wb")
        parent = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
        try:
            wait_until_serving(f"http://127.0.0.1:{port}", parent)
            (child,) = _children(parent.pid)
            parent.send_signal(signal.SIGTERM)
            assert parent.wait(timeout=20) == 0, (tmp_path / f"app{start}.log").read_text()
        finally:
            if parent.poll() is None:
                parent.kill()
            log.close()
        deadline = time.monotonic() + 5
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(child), "the Streamlit server outlived `emaudit app`"
        with socket.socket() as probe:  # nobody listens any more (as servers do, allow TIME_WAIT)
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", port))
