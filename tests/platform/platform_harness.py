"""The harness of the platform end-to-end suite (tests/platform): `pharos serve` processes
on free loopback ports with their own data dirs and log files (kept across kill -9 and
restart), the two layouts (five processes on PostgreSQL wired through their endpoints, one
`--target all` on SQLite), the alert settings (rule file, Alertmanager routing to the
test's webhook receiver), a config watcher in another Python process, and polling with
deadlines. The fixtures are in conftest.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = Path(os.environ.get("CARGO_TARGET_DIR") or REPO_ROOT / "target") / "debug" / "pharos"

SERVICES = ("config", "ingest", "query", "search", "alert")
STARTUP_TIMEOUT_S = 60
SHUTDOWN_TIMEOUT_S = 10
# The most log lines of one process attached to a failure report.
LOG_TAIL_LINES = 400

# grpcio's reconnect backoff grows to 2 minutes by default; a test that restarts a server
# wants its channels back within a second. Everything is on loopback: no proxy applies.
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.enable_http_proxy", 0),
)
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "grpc_proxy", "no_proxy")

# HTTP to the processes, ignoring proxy settings of the environment.
http = requests.Session()
http.trust_env = False


def wait_until(what: str, probe: Callable[[], Any], timeout: float, interval: float = 0.1,
               on_timeout: Callable[[], str] | None = None) -> Any:
    """Calls `probe` until it returns something truthy (and returns that), for up to
    `timeout` seconds. Exceptions of the probe count as "not yet"; the last one is in the
    failure message."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = probe()
        except Exception as error:  # noqa: BLE001 - reported below
            result, last = None, error
        else:
            if result:
                return result
            last = result
        if time.monotonic() >= deadline:
            extra = f"\n{on_timeout()}" if on_timeout else ""
            pytest.fail(f"{what}: not within {timeout:.0f} s (last: {last!r}){extra}", pytrace=False)
        time.sleep(interval)


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
        return sock.getsockname()[1]


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    if not path.exists():
        return "(no log)"
    text = path.read_text(errors="replace").splitlines()
    skipped = len(text) - lines
    head = [f"... ({skipped} earlier lines in {path})"] if skipped > 0 else []
    return "\n".join(head + text[-lines:])


# --- The webhook receiver -------------------------------------------------------------------------


@dataclass
class Notification:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


class WebhookReceiver:
    """An HTTP server on loopback that records every POST (JSON bodies) and answers 200."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[Notification] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = {"unparsed": raw.decode(errors="replace")}
                with receiver._lock:
                    receiver._received.append(
                        Notification(self.path, {k.lower(): v for k, v in self.headers.items()},
                                     body, time.monotonic())
                    )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def received(self) -> list[Notification]:
        with self._lock:
            return list(self._received)

    def alerts(self, alertname: str) -> list[tuple[Notification, dict[str, Any]]]:
        """(notification, alert) for every alert named `alertname` received so far."""
        return [
            (n, alert)
            for n in self.received()
            for alert in n.body.get("alerts", [])
            if alert.get("labels", {}).get("alertname") == alertname
        ]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# --- Processes --------------------------------------------------------------------------------


@dataclass
class PharosProcess:
    """One `pharos serve` process; it keeps its addresses and data dir across restarts."""

    name: str
    binary: Path
    args: list[str]
    env: dict[str, str]
    data_dir: Path
    log: Path
    grpc_addr: str = field(default_factory=lambda: f"127.0.0.1:{free_port()}")
    http_addr: str = field(default_factory=lambda: f"127.0.0.1:{free_port()}")
    popen: subprocess.Popen | None = None
    starts: int = 0
    killed: bool = False  # by the test, and not restarted

    @property
    def http(self) -> str:
        return f"http://{self.http_addr}"

    @property
    def endpoint(self) -> str:
        """The gRPC endpoint as other processes' settings name it."""
        return f"http://{self.grpc_addr}"

    def start(self) -> None:
        assert self.popen is None or self.popen.poll() is not None, f"{self.name} is running"
        self.starts += 1
        self.killed = False
        command = [
            str(self.binary), "serve", *self.args,
            "--grpc-addr", self.grpc_addr,
            "--http-addr", self.http_addr,
            "--data-dir", str(self.data_dir),
        ]
        with open(self.log, "ab") as log:
            log.write(f"==== start #{self.starts}: {' '.join(command)}\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=self.env,
                cwd=self.data_dir.parent,
            )

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Until HTTP /ready answers 200 and grpc.health.v1 Check("") says SERVING."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        deadline = time.monotonic() + timeout
        channel = grpc.insecure_channel(self.grpc_addr, options=CHANNEL_OPTIONS)
        last = "nothing yet"
        try:
            while True:
                code = self.popen.poll() if self.popen else None
                if code is not None:
                    pytest.fail(f"{self.name} exited with {code} while starting:\n{tail(self.log, 60)}",
                                pytrace=False)
                try:
                    ready = http.get(f"{self.http}/ready", timeout=2)
                    if ready.status_code == 200:
                        status = health_pb2_grpc.HealthStub(channel).Check(
                            health_pb2.HealthCheckRequest(service=""), timeout=2
                        ).status
                        if status == health_pb2.HealthCheckResponse.SERVING:
                            return
                        last = f"grpc health {status}"
                    else:
                        last = f"/ready {ready.status_code}: {ready.text.strip()}"
                except (requests.RequestException, grpc.RpcError) as error:
                    last = repr(error)[:300]
                if time.monotonic() >= deadline:
                    pytest.fail(f"{self.name} not ready within {timeout} s ({last}):\n"
                                f"{tail(self.log, 60)}", pytrace=False)
                time.sleep(0.1)
        finally:
            channel.close()

    def kill9(self) -> None:
        """SIGKILL, and reap it."""
        assert self.running(), f"{self.name} is not running"
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=SHUTDOWN_TIMEOUT_S)
        self.killed = True
        with open(self.log, "ab") as log:
            log.write(b"==== killed with SIGKILL by the test\n")

    def restart(self) -> None:
        self.start()
        self.wait_ready()

    def health(self) -> dict[str, Any]:
        response = http.get(f"{self.http}/health", timeout=5)
        return response.json()


# --- Logs attached to failure reports (by conftest's pytest_runtest_makereport) ----------------

LOGS_KEY = pytest.StashKey[dict[str, Path]]()


def attach_log(request: pytest.FixtureRequest, name: str, path: Path) -> None:
    request.node.stash.setdefault(LOGS_KEY, {})[name] = path


# --- Settings files ---------------------------------------------------------------------------

ALERTNAME = "PlatformTemperatureHigh"
THRESHOLD = 90

RULES = f"""groups:
- name: platform
  rules:
  - alert: {ALERTNAME}
    expr: platform_temperature > {THRESHOLD}
    labels:
      severity: page
    annotations:
      summary: 'temperature of {{{{ $labels.host }}}} is {{{{ $value }}}}'
"""


def _routing(url: str) -> str:
    # One group per host (a new breach is a new group, notified at once: group_wait 0s).
    return f"""route:
  receiver: hook
  group_by: ['alertname', 'host']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
- name: hook
  webhook_configs:
  - url: {url}
    send_resolved: false
"""


def write_alert_settings(directory: Path, webhook_url: str, endpoints: dict[str, str]) -> Path:
    """The alert settings: rule file, Alertmanager routing to `webhook_url`, and the
    endpoints of the services in other processes (none when they run in the same process)."""
    (directory / "rules").mkdir(parents=True, exist_ok=True)
    (directory / "rules" / "platform.yml").write_text(RULES)
    (directory / "routing.yml").write_text(_routing(webhook_url))
    lines = [
        "[alert]",
        'rule_files = ["rules/*.yml"]',
        'routing_file = "routing.yml"',
        # Rules evaluate as points of the metrics they read commit (ingest's feed); the
        # interval is only the fallback and the test does not wait for it.
        'evaluation_interval = "1m"',
    ]
    lines += [f'{name}_endpoint = "{url}"' for name, url in sorted(endpoints.items())]
    lines += [
        "[alert.webhook]",
        'initial_backoff = "50ms"',
        'max_backoff = "500ms"',
        'timeout = "2s"',
    ]
    settings = directory / "alert.toml"
    settings.write_text("\n".join(lines) + "\n")
    return settings


# --- Platforms ------------------------------------------------------------------------------


class Platform:
    """Where each service lives: `process(service)` is the process serving it (the same one
    for every service in the all-in-one layout)."""

    def __init__(self, kind: str, processes: dict[str, PharosProcess],
                 placement: dict[str, str]) -> None:
        self.kind = kind
        self.processes = processes
        self.placement = placement
        self._clients: dict[str, Any] = {}

    def process(self, service: str) -> PharosProcess:
        return self.processes[self.placement[service]]

    def grpc(self, service: str) -> str:
        return self.process(service).grpc_addr

    def http(self, service: str) -> str:
        return self.process(service).http

    def client(self, service: str):
        """A pharos_client.Client on the process serving `service` (a new one after that
        process restarted)."""
        from pharos_client import Client

        process = self.process(service)
        key = f"{process.name}#{process.starts}"
        if key not in self._clients:
            self._clients[key] = Client(process.grpc_addr, options=CHANNEL_OPTIONS)
        return self._clients[key]

    def close_clients(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


class Launcher:
    """Starts the processes of one test and stops them all at its end."""

    def __init__(self, request: pytest.FixtureRequest, workdir: Path) -> None:
        self.request = request
        self.workdir = workdir
        self.binary = pharos_bin()
        self.processes: list[PharosProcess] = []
        self.helpers: list[subprocess.Popen] = []
        self.platforms: list[Platform] = []
        # A clean environment: no stray PHAROS_* setting of the caller may change a server,
        # and no proxy for the webhook deliveries to loopback.
        self.env = {
            k: v for k, v in os.environ.items()
            if not k.startswith("PHAROS_") and k.lower() not in PROXY_VARIABLES
        }
        self.env["NO_COLOR"] = "1"

    def process(self, name: str, args: list[str]) -> PharosProcess:
        directory = self.workdir / name
        directory.mkdir(parents=True, exist_ok=True)
        process = PharosProcess(
            name=name, binary=self.binary, args=args, env=dict(self.env),
            data_dir=directory / "data", log=directory / "pharos.log",
        )
        self.processes.append(process)
        attach_log(self.request, f"pharos {name}", process.log)
        return process

    def migrate(self, database_url: str) -> None:
        result = subprocess.run(
            [str(self.binary), "migrate", "--database-url", database_url],
            capture_output=True, text=True, timeout=120, env=self.env,
        )
        assert result.returncode == 0, f"pharos migrate failed:\n{result.stdout}\n{result.stderr}"

    def five_on_postgres(self, database_url: str, webhook_url: str) -> Platform:
        """config, ingest, query, search and alert, one process each, one database."""
        self.migrate(database_url)
        db = ["--database-url", database_url]
        procs = {name: self.process(name, ["--target", name, *db]) for name in SERVICES}
        procs["ingest"].env["PHAROS_INGEST__CONFIG_ENDPOINT"] = procs["config"].endpoint
        settings = write_alert_settings(
            self.workdir / "alert", webhook_url,
            {name: procs[name].endpoint for name in ("query", "ingest", "config")},
        )
        procs["alert"].args += ["--config", str(settings)]
        # All at once: each waits for (or follows, later) the ones it needs.
        for process in procs.values():
            process.start()
        for process in procs.values():
            process.wait_ready()
        platform = Platform("five-on-postgres", procs, {s: s for s in SERVICES})
        self.platforms.append(platform)
        return platform

    def all_in_one_on_sqlite(self, webhook_url: str) -> Platform:
        process = self.process("all", ["--target", "all"])
        settings = write_alert_settings(self.workdir / "all", webhook_url, {})
        process.args += ["--config", str(settings)]
        process.start()
        process.wait_ready()
        platform = Platform("all-in-one-on-sqlite", {"all": process},
                            {s: "all" for s in SERVICES})
        self.platforms.append(platform)
        return platform

    def helper(self, name: str, command: list[str]) -> subprocess.Popen:
        """A helper subprocess (stdout a pipe, stderr a log attached to failures)."""
        log = self.workdir / f"{name}.stderr"
        attach_log(self.request, name, log)
        with open(log, "wb") as stderr:
            popen = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=stderr, text=True, bufsize=1, env=self.env)
        self.helpers.append(popen)
        return popen

    def teardown(self) -> list[str]:
        """Stops everything; returns the problems: processes that had died on their own, or
        that did not exit with 0 within the shutdown timeout of SIGTERM."""
        died = []
        for platform in self.platforms:
            platform.close_clients()
        for popen in self.helpers:
            if popen.poll() is None:
                popen.kill()
            popen.wait()
        for process in self.processes:
            if process.popen is not None and process.popen.poll() is not None and not process.killed:
                died.append(f"{process.name} (exit code {process.popen.returncode})")
        for process in self.processes:
            if process.running():
                process.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_TIMEOUT_S
        for process in self.processes:
            if process.popen is None:
                continue
            if process.popen.returncode is not None:
                continue  # died before (reported above)
            try:
                code = process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.popen.kill()
                process.popen.wait()
                died.append(f"{process.name} (still running {SHUTDOWN_TIMEOUT_S} s after SIGTERM)")
            else:
                if code != 0:
                    died.append(f"{process.name} (exit code {code} after SIGTERM)")
        return died


# --- A config watcher in another OS process ----------------------------------------------------

WATCHER_SCRIPT = r"""
import json, sys
from pharos_client import Client
endpoint, prefix = sys.argv[1], sys.argv[2]
options = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
           ("grpc.max_reconnect_backoff_ms", 1000), ("grpc.enable_http_proxy", 0)]
with Client(endpoint, options=options) as client:
    with client.config.watch(prefixes=[prefix]) as watch:
        for event in watch:
            print(json.dumps({"kind": event.kind.value, "key": event.key, "value": event.entry.text,
                              "revision": event.revision, "snapshot": event.snapshot,
                              "reconnects": watch.reconnects}), flush=True)
"""


class ConfigWatcher:
    """`client.config.watch(prefixes=[prefix])` run by another Python process; its events
    arrive here as dicts."""

    def __init__(self, launcher: Launcher, endpoint: str, prefix: str) -> None:
        self.process = launcher.helper(
            "config-watcher", [sys.executable, "-u", "-c", WATCHER_SCRIPT, endpoint, prefix]
        )
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            with self._lock:
                self._events.append(json.loads(line))

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)

    def wait_for(self, key: str, value: str, timeout: float = 30) -> dict[str, Any]:
        def seen():
            if self.process.poll() is not None:
                pytest.fail(f"the config watcher exited with {self.process.returncode}", pytrace=False)
            return next((e for e in self.events() if e["key"] == key and e["value"] == value), None)

        return wait_until(f"the watcher in another process sees {key}={value}", seen, timeout,
                          interval=0.05, on_timeout=lambda: f"watcher events: {self.events()}")

