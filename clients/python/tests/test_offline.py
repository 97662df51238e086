"""Checks that need no server: the committed stubs match proto/, the bundled service
config is deploy/service_config.json, mypy --strict passes on the hand-written layer,
value conversions and the mapping of rich gRPC errors."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

import pharos_client
from pharos_client import _values
from pharos_client.errors import (
    ConflictError,
    InvalidArgumentError,
    ResourceExhaustedError,
    from_rpc_error,
)

CLIENT_ROOT = Path(__file__).resolve().parents[1]
REPO_ROOT = CLIENT_ROOT.parents[1]


def test_committed_stubs_match_the_protos() -> None:
    result = subprocess.run(
        [sys.executable, str(CLIENT_ROOT / "tools" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_bundled_service_config_is_the_deploy_one() -> None:
    deployed = json.loads((REPO_ROOT / "deploy" / "service_config.json").read_text())
    assert pharos_client.default_service_config() == deployed
    bundled = CLIENT_ROOT / "src" / "pharos_client" / "service_config.json"
    assert json.loads(bundled.read_text()) == deployed


def test_service_config_has_retries_and_timeouts_per_service() -> None:
    config = pharos_client.default_service_config()
    services = {
        name["service"]
        for entry in config["methodConfig"]
        for name in entry["name"]
        if "method" not in name
    }
    assert services == {
        "pharos.config.v1.ConfigService",
        "pharos.ingest.v1.IngestService",
        "pharos.query.v1.QueryService",
        "pharos.search.v1.SearchService",
        "pharos.alert.v1.AlertService",
    }
    for entry in config["methodConfig"]:
        streaming = any("method" in name for name in entry["name"])
        # Streams (Watch, Subscribe, Train...) must not get a whole-call deadline.
        assert ("timeout" in entry) != streaming, entry
        policy = entry.get("retryPolicy")
        if policy:
            assert 2 <= policy["maxAttempts"] <= 5
            assert set(policy["retryableStatusCodes"]) <= {"UNAVAILABLE", "RESOURCE_EXHAUSTED"}


def test_a_channel_accepts_the_service_config() -> None:
    # grpcio rejects an invalid service config when the channel resolves; a call to a closed
    # port must fail with UNAVAILABLE, not INTERNAL.
    with pharos_client.Client(f"127.0.0.1:{_closed_port()}") as client:
        with pytest.raises(pharos_client.UnavailableError):
            client.config.get("x")


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy not installed")
def test_mypy_strict_passes_on_the_layer() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(CLIENT_ROOT / "pyproject.toml")],
        cwd=CLIENT_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        (True, _values.ValueType.BOOL, "true"),
        (42, _values.ValueType.INT, "42"),
        (0.5, _values.ValueType.FLOAT, "0.5"),
        ("hi", _values.ValueType.STRING, "hi"),
        ({"b": [1, 2], "a": None}, _values.ValueType.JSON, '{"a":null,"b":[1,2]}'),
        (timedelta(hours=1, minutes=30), _values.ValueType.DURATION, "1h 30m"),
        (timedelta(milliseconds=250), _values.ValueType.DURATION, "250ms"),
    ],
)
def test_values_round_trip(value: _values.Value, kind: _values.ValueType, text: str) -> None:
    assert _values.infer_type(value) is kind
    assert _values.to_text(value, kind) == text
    assert _values.from_text(text, kind) == value


def test_durations_parse_humantime() -> None:
    assert _values.parse_duration("1h30m") == timedelta(minutes=90)
    assert _values.parse_duration("2days 4h") == timedelta(days=2, hours=4)
    assert _values.parse_duration("1s 500ms") == timedelta(seconds=1.5)
    with pytest.raises(ValueError):
        _values.parse_duration("soon")


class _FakeError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, message: str, details: list[object]) -> None:
        self._code, self._message = code, message
        status = status_pb2.Status(code=code.value[0], message=message)
        for detail in details:
            packed = any_pb2.Any()
            packed.Pack(detail)
            status.details.append(packed)
        self._trailing = (("grpc-status-details-bin", status.SerializeToString()),)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._message

    def trailing_metadata(self) -> tuple[tuple[str, bytes], ...]:
        return self._trailing


def test_rich_errors_map_to_the_hierarchy() -> None:
    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field="key", description="empty")
        ]
    )
    error = from_rpc_error(_FakeError(grpc.StatusCode.INVALID_ARGUMENT, "invalid key", [bad]))
    assert isinstance(error, InvalidArgumentError) and isinstance(error, ValueError)
    assert [(v.field, v.description) for v in error.field_violations] == [("key", "empty")]

    retry = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(nanos=250_000_000))
    info = error_details_pb2.ErrorInfo(reason="OVERLOADED", domain="pharos.io")
    error = from_rpc_error(_FakeError(grpc.StatusCode.RESOURCE_EXHAUSTED, "full", [retry, info]))
    assert isinstance(error, ResourceExhaustedError)
    assert error.retry_delay == pytest.approx(0.25) and error.retryable
    assert error.reason == "OVERLOADED"

    mismatch = error_details_pb2.ErrorInfo(
        reason="REVISION_MISMATCH", domain="pharos.io", metadata={"current_revision": "7"}
    )
    error = from_rpc_error(_FakeError(grpc.StatusCode.FAILED_PRECONDITION, "no", [mismatch]))
    assert isinstance(error, ConflictError) and error.current_revision == 7
