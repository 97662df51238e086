"""Fixtures of the platform end-to-end suite (tests/platform): real `pharos serve`
processes, either the five services as five processes on one fresh PostgreSQL database
(wired to each other through their `*_endpoint` settings, as deploy/docker-compose.yml does)
or one `--target all` process on SQLite, driven from Python only: the `pharos_client`
package, the OpenTelemetry SDK, `requests` and a webhook receiver on loopback (the harness
is platform_harness.py).

The binary is `$PHAROS_BIN`, else $CARGO_TARGET_DIR (or ./target)/debug/pharos; the suite
builds nothing. PostgreSQL is the server named by `$PHAROS_TEST_DATABASE_URL` (default
postgres://postgres@127.0.0.1:5432/postgres); each test gets a database of its own, created
and dropped with `psql`. Without a reachable server the PostgreSQL tests skip, or fail under
CI=true.

Every process logs to a file of its own (restarts append to it); the logs of every process a
test started, and of its helper subprocesses, are attached to the report of a failing test.
Processes are always stopped at teardown (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from platform_harness import (
    LOGS_KEY,
    ConfigWatcher,
    Launcher,
    Platform,
    WebhookReceiver,
    tail,
)

DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/postgres"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for name, path in item.stash.get(LOGS_KEY, {}).items():
            report.sections.append((f"log of {name}", tail(path)))


# --- PostgreSQL ---------------------------------------------------------------------------------


def _database_url(admin_url: str, name: str) -> str:
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _psql(url: str, sql: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = dict(os.environ, PGCONNECT_TIMEOUT="5")
    return subprocess.run(
        ["psql", url, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL is required under CI=true: {reason}", pytrace=False)
    print(f"skipping: {reason}")
    pytest.skip(reason)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The URL of a fresh database (dropped at teardown) on the test PostgreSQL server."""
    admin_url = os.environ.get("PHAROS_TEST_DATABASE_URL") or DEFAULT_PG
    if shutil.which("psql") is None:
        _unavailable("psql is not installed (needed to create the test database)")
    try:
        probe = _psql(admin_url, "SELECT 1")
    except subprocess.TimeoutExpired:
        probe = None
    if probe is None or probe.returncode != 0:
        detail = "timed out" if probe is None else probe.stderr.strip()
        _unavailable(
            f"PostgreSQL at {admin_url} is unreachable ({detail}); start it (cargo xtask pg start) "
            "or set PHAROS_TEST_DATABASE_URL"
        )
    name = f"pharos_platform_{os.getpid()}_{secrets.token_hex(4)}"
    created = _psql(admin_url, f"CREATE DATABASE {name}")
    assert created.returncode == 0, f"cannot create {name}: {created.stderr}"
    try:
        yield _database_url(admin_url, name)
    finally:
        # The processes are stopped by now; FORCE (PostgreSQL 13+) ends what is left anyway.
        dropped = _psql(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        if dropped.returncode != 0:
            dropped = _psql(admin_url, f"DROP DATABASE IF EXISTS {name}")
        if dropped.returncode != 0:
            print(f"could not drop the test database {name}: {dropped.stderr}", file=sys.stderr)


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


@pytest.fixture
def launcher(request, tmp_path) -> Iterator[Launcher]:
    launcher = Launcher(request, tmp_path)
    try:
        yield launcher
    finally:
        died = launcher.teardown()
    # A process that exited by itself during the test (not one the test killed: those were
    # restarted), or that did not stop cleanly, is a failure of the platform.
    if died:
        pytest.fail(f"pharos processes did not run or stop cleanly: {', '.join(died)}",
                    pytrace=False)


# The argument order is the set-up order, and teardown runs in reverse: the processes stop
# before the webhook receiver closes and the database is dropped.
@pytest.fixture
def five_on_postgres(postgres_url, webhook, launcher) -> Platform:
    return launcher.five_on_postgres(postgres_url, webhook.url)


@pytest.fixture
def all_in_one_on_sqlite(webhook, launcher) -> Platform:
    return launcher.all_in_one_on_sqlite(webhook.url)


@pytest.fixture
def config_watcher(launcher) -> Callable[[str, str], ConfigWatcher]:
    return lambda endpoint, prefix: ConfigWatcher(launcher, endpoint, prefix)
