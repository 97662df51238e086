"""Fixtures of the Python cross-language suite: Python stubs generated from
`proto/pharos` with grpc_tools, and a real `pharos serve` process on free loopback
ports with a fresh data directory (SQLite), reached through grpcio.

The binary is `$PHAROS_BIN`, else $CARGO_TARGET_DIR (or ./target)/debug/pharos;
the suite builds nothing itself. The server's log is attached to the report
of every failing test, fixture set-up and teardown included.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO_ROOT / "proto"
DEFAULT_BIN = (
    Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target") / "debug" / "pharos"
)

STARTUP_TIMEOUT_S = 30
SHUTDOWN_TIMEOUT_S = 10

# The log of the running server, for failure reports (set by `pharos_server`).
_SERVER_LOG: Path | None = None


def _pharos_bin() -> Path:
    path = Path(os.environ.get("PHAROS_BIN") or DEFAULT_BIN)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"pharos binary not found or not executable at {path}; build it "
            "(cargo build -p pharos) or point PHAROS_BIN at it",
            pytrace=False,
        )
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _read_log(path: Path | None) -> str:
    if path is None or not path.exists():
        return "(no server log)"
    return path.read_text(errors="replace")


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    """The generated modules: `pb.config`/`pb.ingest`/`pb.query`/`pb.search` (messages) and
    `pb.*_grpc` (stubs)."""
    import grpc_tools

    out = tmp_path_factory.mktemp("stubs")
    bundled = Path(grpc_tools.__file__).parent / "_proto"
    # Only Pharos's own protos: proto/third_party serves other tools (and its
    # google/ folder would shadow the googleapis-common-protos package).
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "pharos").rglob("*.proto"))
    assert protos, f"no .proto files under {PROTO_ROOT / 'pharos'}"
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_ROOT}",
        f"-I{PROTO_ROOT / 'third_party'}",
        f"-I{bundled}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        *protos,
    ]
    result = subprocess.run(command, cwd=PROTO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, f"protoc failed:\n{result.stdout}\n{result.stderr}"
    sys.path.insert(0, str(out))
    from pharos.config.v1 import config_pb2, config_pb2_grpc
    from pharos.ingest.v1 import ingest_pb2, ingest_pb2_grpc
    from pharos.query.v1 import query_pb2, query_pb2_grpc
    from pharos.search.v1 import search_pb2, search_pb2_grpc

    return SimpleNamespace(
        config=config_pb2,
        config_grpc=config_pb2_grpc,
        ingest=ingest_pb2,
        ingest_grpc=ingest_pb2_grpc,
        query=query_pb2,
        query_grpc=query_pb2_grpc,
        search=search_pb2,
        search_grpc=search_pb2_grpc,
    )


@dataclass
class Server:
    """A running `pharos serve`: its channel, HTTP base URL and log."""

    channel: grpc.Channel
    http: str
    grpc_addr: str
    log: Path
    data_dir: Path


def _wait_serving(channel: grpc.Channel, process: subprocess.Popen) -> None:
    """Waits on grpc.health.v1 Watch("") until SERVING (then confirms with
    Check("")), the process exits or the startup timeout passes."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    call = health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service=""),
        timeout=STARTUP_TIMEOUT_S,
        wait_for_ready=True,
    )
    # A server that dies at start would otherwise leave us waiting for the deadline.
    watcher = threading.Thread(target=lambda: (process.wait(), call.cancel()), daemon=True)
    watcher.start()
    try:
        for response in call:
            if response.status == health_pb2.HealthCheckResponse.SERVING:
                call.cancel()
                check = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=STARTUP_TIMEOUT_S
                )
                assert check.status == health_pb2.HealthCheckResponse.SERVING, check
                return
    except grpc.RpcError as error:
        reason = f"{error.code().name}: {error.details()}"
    else:
        reason = "health stream ended without SERVING"
    exited = process.poll()
    if exited is not None:
        reason = f"server exited with code {exited} ({reason})"
    pytest.fail(
        f"pharos serve did not report SERVING within {STARTUP_TIMEOUT_S}s: {reason}",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def pharos_server(tmp_path_factory) -> Iterator[Server]:
    """One `pharos serve` for the session (tests use their own key prefixes).
    Teardown sends SIGTERM and requires a clean exit (code 0) within 10 s."""
    global _SERVER_LOG
    binary = _pharos_bin()
    workdir = tmp_path_factory.mktemp("pharos")
    data_dir = workdir / "data"
    log = workdir / "server.log"
    grpc_addr = f"127.0.0.1:{_free_port()}"
    http_addr = f"127.0.0.1:{_free_port()}"
    # A clean environment: no stray PHAROS_* setting of the caller may change the server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHAROS_")}
    env["NO_COLOR"] = "1"
    command = [
        str(binary),
        "serve",
        "--grpc-addr",
        grpc_addr,
        "--http-addr",
        http_addr,
        "--data-dir",
        str(data_dir),
    ]
    with open(log, "wb") as log_file:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file, env=env
        )
    _SERVER_LOG = log
    channel = grpc.insecure_channel(grpc_addr)
    try:
        _wait_serving(channel, process)
    except BaseException:
        channel.close()
        if process.poll() is None:
            process.kill()
            process.wait()
        raise
    yield Server(
        channel=channel, http=f"http://{http_addr}", grpc_addr=grpc_addr, log=log, data_dir=data_dir
    )

    channel.close()
    early = process.poll()
    if early is not None:
        pytest.fail(
            f"pharos serve exited with {early} during the tests",
            pytrace=False,
        )
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(
            f"pharos serve did not exit within {SHUTDOWN_TIMEOUT_S}s of SIGTERM",
            pytrace=False,
        )
    if code != 0:
        pytest.fail(
            f"pharos serve exited with {code} after SIGTERM",
            pytrace=False,
        )


@pytest.fixture
def server(pharos_server) -> tuple[grpc.Channel, str]:
    """(channel, http base url) of the running server."""
    return pharos_server.channel, pharos_server.http


@pytest.fixture
def config(pb, pharos_server):
    """A ConfigService stub on the running server."""
    return pb.config_grpc.ConfigServiceStub(pharos_server.channel)


@pytest.fixture
def ingest(pb, pharos_server):
    """An IngestService stub on the running server."""
    return pb.ingest_grpc.IngestServiceStub(pharos_server.channel)


@pytest.fixture
def query(pb, pharos_server):
    """A QueryService stub on the running server."""
    return pb.query_grpc.QueryServiceStub(pharos_server.channel)


@pytest.fixture
def search(pb, pharos_server):
    """A SearchService stub on the running server."""
    return pb.search_grpc.SearchServiceStub(pharos_server.channel)


@pytest.fixture
def prefix(request) -> str:
    """A key prefix unique to the test, so tests never see each other's keys."""
    name = request.node.name.replace("[", ".").replace("]", "")
    return f"pytest/{name}/"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _SERVER_LOG is not None and "pharos_server" in getattr(item, "fixturenames", ()):
        report.sections.append(("pharos serve log", _read_log(_SERVER_LOG)))
