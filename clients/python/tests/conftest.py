"""Fixtures of the pharos-client tests: real `pharos serve` processes on free loopback
ports with fresh data directories (SQLite), as tests/python/conftest.py starts them.

The binary is $PHAROS_BIN, else $CARGO_TARGET_DIR (or ./target)/debug/pharos. Tests that
need a server with particular settings (tiny ingest buffers, a short config change log,
auth tokens) start their own with `start_server(env={...})`; `restart()` keeps the ports
and the data directory. The log of every server a failing test used is attached to its
report.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import grpc
import pytest

import pharos_client

CLIENT_ROOT = Path(__file__).resolve().parents[1]
REPO_ROOT = CLIENT_ROOT.parents[1]
DEFAULT_BIN = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target") / "debug" / "pharos"
STARTUP_TIMEOUT_S = 30
SHUTDOWN_TIMEOUT_S = 15

_LOGS: list[Path] = []


def pharos_bin() -> Path:
    path = Path(os.environ.get("PHAROS_BIN") or DEFAULT_BIN)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"pharos binary not found or not executable at {path}; build it "
            "(cargo build -p pharos) or point PHAROS_BIN at it",
            pytrace=False,
        )
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serving(address: str, timeout: float) -> bool:
    """Whether grpc.health.v1 Check("") answers SERVING within `timeout` (raw bytes: the
    request is empty, the answer is field 1 = 1)."""
    with grpc.insecure_channel(address) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        try:
            answer = check(b"", timeout=timeout, wait_for_ready=True)
        except grpc.RpcError:
            return False
        return bool(answer == b"\x08\x01")


class PharosServer:
    """One `pharos serve` process; `grpc_addr` stays the same across restart()."""

    def __init__(self, workdir: Path, env: Mapping[str, str] | None = None) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.log = workdir / "server.log"
        self.grpc_addr = f"127.0.0.1:{free_port()}"
        self.http_addr = f"127.0.0.1:{free_port()}"
        self.extra_env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        _LOGS.append(self.log)

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PHAROS_")}
        env["NO_COLOR"] = "1"
        env.update(self.extra_env)
        command = [
            str(pharos_bin()), "serve",
            "--grpc-addr", self.grpc_addr,
            "--http-addr", self.http_addr,
            "--data-dir", str(self.data_dir),
        ]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"pharos serve exited with {self.process.returncode} at start:\n"
                    + self.log.read_text(errors="replace")[-4000:],
                    pytrace=False,
                )
            if _serving(self.grpc_addr, 1.0):
                return
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"pharos serve not SERVING within {STARTUP_TIMEOUT_S}s", pytrace=False)

    def stop(self) -> int | None:
        if self.process is None:
            return None
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                return process.wait(timeout=SHUTDOWN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                return None
        return process.returncode

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, **kwargs: object) -> pharos_client.Client:
        return pharos_client.Client(self.grpc_addr, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PharosServer]:
    """The session's server (tests use their own key prefixes, metric names, indexes)."""
    instance = PharosServer(tmp_path_factory.mktemp("pharos"))
    instance.start()
    yield instance
    code = instance.stop()
    assert code == 0, f"pharos serve exited with {code} after SIGTERM"


@pytest.fixture
def client(server: PharosServer) -> Iterator[pharos_client.Client]:
    with server.client() as c:
        yield c


@pytest.fixture
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A factory of servers with their own settings (PHAROS_* variables), stopped after the test."""
    started: list[PharosServer] = []

    def start(env: Mapping[str, str] | None = None) -> PharosServer:
        instance = PharosServer(tmp_path_factory.mktemp("pharos"), env)
        started.append(instance)
        instance.start()
        return instance

    yield start
    for instance in started:
        instance.stop()


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    """A key prefix unique to the test."""
    name = request.node.name.replace("[", ".").replace("]", "").replace(" ", "_")
    return f"pyclient/{name}/"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.failed:
        for log in _LOGS:
            if log.exists():
                text = log.read_text(errors="replace")
                report.sections.append((f"pharos serve log {log}", text[-20000:]))
