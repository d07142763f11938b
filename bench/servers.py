"""The servers a benchmark runs, each a process of its own on a free loopback port."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent
PYTHON = sys.executable
PHOTOHOOK = [str(Path(PYTHON).with_name("photohook"))]
UVICORN = [
    PYTHON,
    "-m",
    "uvicorn",
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--log-level",
    "warning",
    "--no-server-header",
]
TICKS = os.sysconf("SC_CLK_TCK")
#: The peer: adnanh/webhook (Debian's ``webhook`` package), a Go server running a command per hook.
WEBHOOK = shutil.which("webhook")


def webhook_peer(workdir: Path) -> Server | None:
    """adnanh/webhook on loopback with one hook, ``fotor``, that runs ``/bin/true`` for each
    request and stores nothing; None when the program is not installed."""
    if WEBHOOK is None:
        return None
    hooks = workdir / "hooks.json"
    hooks.write_text(json.dumps([{"id": "fotor", "execute-command": "/bin/true"}]))
    return Server(
        "p. adnanh/webhook, a hook running /bin/true (stores nothing)",
        [WEBHOOK, "-hooks", str(hooks), "-ip", "127.0.0.1", "-port", "{port}"],
        workdir,
        "webhook",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(
        self,
        name: str,
        command: list[str],
        workdir: Path,
        path: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.env = {**os.environ, **(env or {})}
        self.name = name
        self.workdir = workdir
        self.port = free_port()
        self.command = [part.replace("{port}", str(self.port)) for part in command]
        self.path = path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Launch the server and wait until it answers."""
        self.launch()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.base}/healthz", timeout=0.5)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start")

    def launch(self) -> None:
        """Start the process (a server, or a worker that serves nothing), its log in
        ``workdir/<name>.log``: a log written somewhere costs what it costs in production."""
        env = {
            **self.env,
            "PYTHONPATH": str(ROOT.parent),
            "BENCH_NAIVE_DB": str(self.workdir / "naive.db"),
            "BENCH_GROUP_DB": str(self.workdir / "group.db"),
        }
        self.process = subprocess.Popen(
            self.command,
            cwd=self.workdir,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(self.workdir / f"{self.name.replace('/', '-')}.log").open("wb"),
        )

    def url(self) -> str:
        if self.path == "photohook":
            result = subprocess.run(
                [*PHOTOHOOK, "url", "fotor", "--base-url", self.base],
                env=self.env,  # the token key is the database's
                cwd=self.workdir,
                capture_output=True,
                text=True,
                check=True,
            )
            return result.stdout.strip()
        if self.path == "webhook":
            return f"{self.base}/hooks/fotor"
        return f"{self.base}/hooks/fotor/token"

    def cpu_seconds(self) -> float:
        """The CPU time of the process and of its children that ended (the peer's commands)."""
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(field) for field in fields[11:15]) / TICKS

    def peak_rss_mib(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def settle(
    servers: list[Server], *, idle: float = 0.05, window: float = 0.5, limit: float = 60.0
) -> None:
    """Wait until ``servers`` together use less than ``idle`` of a core over ``window`` seconds
    (a photohook with routes goes on delivering its backlog after its load stops), at most
    ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = sum(server.cpu_seconds() for server in servers)
        time.sleep(window)
        if sum(server.cpu_seconds() for server in servers) - before < idle * window:
            return
    print(f"warning: the servers were still busy after {limit:g} s; measuring anyway")
