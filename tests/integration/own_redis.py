"""A redis-server of a test's own (see `OwnRedis`)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

from tests.support import free_port


class OwnRedis:
    """A redis-server of the test's own, on a free port, with AOF so that a restart keeps its data.

    Other test sessions on this machine run Hermes instances against the shared Redis, and any
    instance consumes the shared inbound stream: tests that must know who routes an event, or that
    stop Redis, use their own.
    """

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        directory.mkdir(exist_ok=True)
        self._cmd = [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes",
            "--dir",
            str(directory),
        ]
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        self._procs.append(subprocess.Popen(self._cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for _ in range(200):
            ping = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False)
            if ping.stdout.strip() == b"PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        proc = self._procs[-1]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)

    def close(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=5)
