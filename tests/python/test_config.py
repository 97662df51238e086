"""The configuration service seen from a Python grpcio client: Set/Get with
environments, compare-and-set, rich INVALID_ARGUMENT errors, Watch with
snapshot and resume, History, List paging, server reflection, and the HTTP
side (/metrics, /health, /ready) of the same process.

Every test works under its own key prefix (the `prefix` fixture), so tests
share one server without seeing each other's keys.
"""

from __future__ import annotations

import queue
import threading

import grpc
import pytest
import requests
from google.rpc import error_details_pb2
from grpc_status import rpc_status

ACTOR = "pytest-python"
METADATA = (("x-pharos-actor", ACTOR),)
# How long to wait for one Watch response that is expected to arrive.
EVENT_TIMEOUT_S = 10
# Unary deadline: generous, so a slow CI machine does not fail a test.
RPC_TIMEOUT_S = 10


def set_value(pb, config, key, value, **fields):
    request = pb.config.SetRequest(key=key, value=value, **fields)
    return config.Set(request, metadata=METADATA, timeout=RPC_TIMEOUT_S).entry


def get_value(pb, config, key, environment=""):
    request = pb.config.GetRequest(key=key, environment=environment)
    return config.Get(request, timeout=RPC_TIMEOUT_S).entry


def rpc_error(call, request, **kwargs) -> grpc.RpcError:
    """Makes a call that must fail and returns its error."""
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=RPC_TIMEOUT_S, **kwargs)
    return caught.value


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The google.rpc.BadRequest field violations of a failed call."""
    status = rpc_status.from_call(error)
    assert status is not None, f"no google.rpc.Status in the trailers of {error}"
    violations = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations.extend((v.field, v.description) for v in bad_request.field_violations)
    return violations


class WatchReader:
    """Reads a Watch stream on a thread so the test can wait for each
    response with a timeout instead of blocking forever."""

    def __init__(self, call):
        self.call = call
        self.responses: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for response in self.call:
                self.responses.put(response)
        except grpc.RpcError as error:
            self.responses.put(error)
        self.responses.put(None)

    def next(self, timeout=EVENT_TIMEOUT_S):
        try:
            item = self.responses.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no Watch response within {timeout}s")
        if isinstance(item, grpc.RpcError):
            pytest.fail(f"Watch failed: {item.code().name}: {item.details()}")
        assert item is not None, "Watch stream ended unexpectedly"
        return item

    def until_snapshot_complete(self):
        """Every event up to and including the response with snapshot_complete."""
        events = []
        while True:
            response = self.next()
            events.extend(response.events)
            if response.snapshot_complete:
                return events, response.revision

    def close(self):
        self.call.cancel()
        self.thread.join(timeout=EVENT_TIMEOUT_S)
        assert not self.thread.is_alive(), "Watch reader did not stop after cancel"


@pytest.fixture
def open_watch(pb, config):
    """Opens Watch streams and cancels whatever the test leaves open."""
    readers = []

    def open_(**fields):
        reader = WatchReader(config.Watch(pb.config.WatchRequest(**fields)))
        readers.append(reader)
        return reader

    yield open_
    for reader in readers:
        reader.close()


# --- Set and Get ---------------------------------------------------------------------


def test_set_then_get_round_trips_every_field(pb, config, prefix):
    key = prefix + "pool.size"
    written = set_value(
        pb,
        config,
        key,
        "42",
        type=pb.config.VALUE_TYPE_INT,
        category="database",
        description="connections per replica",
    )
    assert written.revision > 0

    entry = get_value(pb, config, key)
    assert entry.key == key
    assert entry.value == "42"
    assert entry.type == pb.config.VALUE_TYPE_INT
    assert entry.category == "database"
    assert entry.description == "connections per replica"
    assert entry.environment == ""
    assert entry.revision == written.revision
    assert entry.HasField("updated_at")
    assert entry.updated_at.seconds > 0
    assert entry.updated_by == ACTOR
    assert entry == written


def test_environment_override_applies_only_to_its_environment(pb, config, prefix):
    key = prefix + "feature.enabled"
    base = set_value(pb, config, key, "false", type=pb.config.VALUE_TYPE_BOOL)
    override = set_value(pb, config, key, "true", type=pb.config.VALUE_TYPE_BOOL, environment="staging")
    assert override.environment == "staging"
    assert override.revision > base.revision

    staging = get_value(pb, config, key, environment="staging")
    assert (staging.value, staging.environment, staging.revision) == ("true", "staging", override.revision)

    production = get_value(pb, config, key, environment="production")
    assert (production.value, production.environment, production.revision) == ("false", "", base.revision)

    plain = get_value(pb, config, key)
    assert (plain.value, plain.environment) == ("false", "")


def test_get_of_a_missing_key_is_not_found(pb, config, prefix):
    error = rpc_error(config.Get, pb.config.GetRequest(key=prefix + "absent"))
    assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()
    assert prefix + "absent" in error.details()


# --- Compare-and-set ---------------------------------------------------------------


def test_compare_and_set(pb, config, prefix):
    key = prefix + "cas"
    created = set_value(pb, config, key, "one", expected_revision=0)
    assert created.revision > 0

    error = rpc_error(
        config.Set, pb.config.SetRequest(key=key, value="again", expected_revision=0), metadata=METADATA
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
    assert get_value(pb, config, key).value == "one"

    updated = set_value(pb, config, key, "two", expected_revision=created.revision)
    assert updated.revision > created.revision

    error = rpc_error(
        config.Set,
        pb.config.SetRequest(key=key, value="stale", expected_revision=created.revision),
        metadata=METADATA,
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error.details()
    current = get_value(pb, config, key)
    assert (current.value, current.revision) == ("two", updated.revision)


# --- Rich errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "field"),
    [
        ("int_not_a_number", "value"),
        ("key_with_space", "key"),
        ("empty_key", "key"),
        ("existing_int_keeps_its_type", "value"),
    ],
)
def test_invalid_argument_names_the_field(pb, config, prefix, case, field):
    if case == "existing_int_keeps_its_type":
        set_value(pb, config, prefix + "count", "5", type=pb.config.VALUE_TYPE_INT)
    requests_by_case = {
        "int_not_a_number": pb.config.SetRequest(
            key=prefix + "int", value="abc", type=pb.config.VALUE_TYPE_INT
        ),
        # No type given: the key's INT type applies to the new value.
        "existing_int_keeps_its_type": pb.config.SetRequest(key=prefix + "count", value="abc"),
        "key_with_space": pb.config.SetRequest(key=prefix + "has space", value="x"),
        "empty_key": pb.config.SetRequest(key="", value="x"),
    }
    error = rpc_error(config.Set, requests_by_case[case], metadata=METADATA)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    violations = field_violations(error)
    assert [name for name, _ in violations] == [field], violations
    assert all(description for _, description in violations), violations
    if case == "int_not_a_number":
        missing = rpc_error(config.Get, pb.config.GetRequest(key=prefix + "int"))
        assert missing.code() == grpc.StatusCode.NOT_FOUND, "an invalid Set must not write"
    if case == "existing_int_keeps_its_type":
        kept = get_value(pb, config, prefix + "count")
        assert (kept.value, kept.type) == ("5", pb.config.VALUE_TYPE_INT)


# --- Watch -------------------------------------------------------------------------


def test_watch_snapshot_then_live_put_and_delete(pb, config, prefix, open_watch):
    a = set_value(pb, config, prefix + "a", "1")
    b = set_value(pb, config, prefix + "b", "2")
    set_value(pb, config, "pytest/outside/" + prefix + "a", "not watched")

    watch = open_watch(prefixes=[prefix])
    snapshot, revision = watch.until_snapshot_complete()
    assert {(e.entry.key, e.entry.value, e.entry.revision) for e in snapshot} == {
        (a.key, "1", a.revision),
        (b.key, "2", b.revision),
    }
    assert all(e.type == pb.config.CHANGE_KIND_PUT for e in snapshot)
    assert revision >= b.revision

    c = set_value(pb, config, prefix + "c", "3")
    response = watch.next()
    assert [(e.type, e.entry.key, e.entry.value, e.entry.revision) for e in response.events] == [
        (pb.config.CHANGE_KIND_PUT, c.key, "3", c.revision)
    ]
    assert response.revision == c.revision

    deleted = config.Delete(
        pb.config.DeleteRequest(key=a.key), metadata=METADATA, timeout=RPC_TIMEOUT_S
    )
    assert deleted.revision > c.revision
    assert deleted.previous.value == "1"
    response = watch.next()
    assert len(response.events) == 1, response
    event = response.events[0]
    assert event.type == pb.config.CHANGE_KIND_DELETE
    assert (event.entry.key, event.entry.revision) == (a.key, deleted.revision)
    assert event.HasField("previous_value") and event.previous_value == "1"


def test_watch_resumes_after_start_revision_without_gaps_or_repeats(pb, config, prefix, open_watch):
    set_value(pb, config, prefix + "x", "0")
    first = open_watch(prefixes=[prefix])
    _, last_seen = first.until_snapshot_complete()
    seen = set_value(pb, config, prefix + "x", "1")
    response = first.next()
    assert [e.entry.revision for e in response.events] == [seen.revision]
    last_seen = response.revision
    assert last_seen == seen.revision
    first.close()

    # Three changes while no stream is open, plus one outside the prefix.
    changes = [
        ("PUT", set_value(pb, config, prefix + "x", "2").revision),
        ("PUT", set_value(pb, config, prefix + "y", "new").revision),
    ]
    set_value(pb, config, "pytest/outside/" + prefix + "x", "not watched")
    deleted = config.Delete(
        pb.config.DeleteRequest(key=prefix + "y"), metadata=METADATA, timeout=RPC_TIMEOUT_S
    )
    changes.append(("DELETE", deleted.revision))

    resumed = open_watch(prefixes=[prefix], start_revision=last_seen)
    events, caught_up_to = resumed.until_snapshot_complete()
    kinds = {pb.config.CHANGE_KIND_PUT: "PUT", pb.config.CHANGE_KIND_DELETE: "DELETE"}
    assert [(kinds[e.type], e.entry.revision) for e in events] == changes
    assert [e.entry.value for e in events] == ["2", "new", "new"]
    assert caught_up_to >= changes[-1][1]

    # The live part continues after the catch-up: the next change comes alone.
    after = set_value(pb, config, prefix + "x", "3")
    response = resumed.next()
    assert [e.entry.revision for e in response.events] == [after.revision]


# --- History -----------------------------------------------------------------------


def test_history_lists_changes_newest_first(pb, config, prefix):
    key = prefix + "timeout"
    writes = [
        set_value(pb, config, key, value, type=pb.config.VALUE_TYPE_DURATION).revision
        for value in ("1s", "5s", "30s")
    ]
    deleted = config.Delete(pb.config.DeleteRequest(key=key), metadata=METADATA, timeout=RPC_TIMEOUT_S)

    history = config.History(pb.config.HistoryRequest(key=key), timeout=RPC_TIMEOUT_S)
    rows = [
        (
            item.revision,
            item.kind,
            item.old_value if item.HasField("old_value") else None,
            item.new_value if item.HasField("new_value") else None,
        )
        for item in history.items
    ]
    put, delete = pb.config.CHANGE_KIND_PUT, pb.config.CHANGE_KIND_DELETE
    assert rows == [
        (deleted.revision, delete, "30s", None),
        (writes[2], put, "5s", "30s"),
        (writes[1], put, "1s", "5s"),
        (writes[0], put, None, "1s"),
    ]
    for item in history.items:
        assert item.actor == ACTOR
        assert item.HasField("changed_at") and item.changed_at.seconds > 0
        assert item.type == pb.config.VALUE_TYPE_DURATION

    limited = config.History(pb.config.HistoryRequest(key=key, limit=2), timeout=RPC_TIMEOUT_S)
    assert [item.revision for item in limited.items] == [deleted.revision, writes[2]]


# --- List --------------------------------------------------------------------------


def test_list_by_prefix_walks_every_page(pb, config, prefix):
    keys = [f"{prefix}item/{n}" for n in range(5)]
    for n, key in enumerate(keys):
        set_value(pb, config, key, str(n), category="paging")
    # Shares the textual start of the prefix but is not under it.
    set_value(pb, config, prefix + "itemized", "outside")

    listed, pages, token = [], 0, ""
    while True:
        page = config.List(
            pb.config.ListRequest(prefix=prefix + "item/", page_size=2, page_token=token),
            timeout=RPC_TIMEOUT_S,
        )
        pages += 1
        assert len(page.entries) <= 2
        listed.extend((e.key, e.value) for e in page.entries)
        token = page.next_page_token
        if not token:
            break
        assert pages < 10, "List paging does not end"
    assert listed == [(key, str(n)) for n, key in enumerate(keys)]
    assert pages == 3

    by_category = config.List(
        pb.config.ListRequest(prefix=prefix, category="paging"), timeout=RPC_TIMEOUT_S
    )
    assert [e.key for e in by_category.entries] == keys
    assert by_category.next_page_token == ""


# --- Reflection --------------------------------------------------------------------


def test_server_reflection_describes_the_config_service(server):
    from google.protobuf.descriptor_pool import DescriptorPool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    channel, _ = server
    database = ProtoReflectionDescriptorDatabase(channel)
    services = list(database.get_services())
    assert "pharos.config.v1.ConfigService" in services, services

    service = DescriptorPool(database).FindServiceByName("pharos.config.v1.ConfigService")
    methods = {m.name: m for m in service.methods}
    assert set(methods) >= {"Set", "Get", "List", "Delete", "History", "Watch"}
    assert methods["Set"].input_type.full_name == "pharos.config.v1.SetRequest"
    assert methods["Watch"].output_type.full_name == "pharos.config.v1.WatchResponse"
    assert methods["Watch"].server_streaming
    assert not methods["Get"].server_streaming


# --- HTTP --------------------------------------------------------------------------


def _histogram_count(metrics: str, method: str, code: int) -> float:
    """The +Inf bucket of rpc_server_call_duration_seconds for one
    ConfigService method and status code (0 when absent)."""
    for line in metrics.splitlines():
        if (
            line.startswith("rpc_server_call_duration_seconds_bucket{")
            and 'rpc_service="pharos.config.v1.ConfigService"' in line
            and f'rpc_method="{method}"' in line
            and f'rpc_grpc_status_code="{code}"' in line
            and 'le="+Inf"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_record_config_service_calls(pb, config, server, prefix):
    _, http = server
    before = requests.get(f"{http}/metrics", timeout=RPC_TIMEOUT_S).text
    set_before = _histogram_count(before, "Set", 0)
    missing_before = _histogram_count(before, "Get", 5)

    for n in range(3):
        set_value(pb, config, prefix + f"m{n}", str(n))
    rpc_error(config.Get, pb.config.GetRequest(key=prefix + "absent"))

    response = requests.get(f"{http}/metrics", timeout=RPC_TIMEOUT_S)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE rpc_server_call_duration_seconds histogram" in text
    buckets = [
        line
        for line in text.splitlines()
        if line.startswith("rpc_server_call_duration_seconds_bucket{")
        and 'rpc_service="pharos.config.v1.ConfigService"' in line
        and 'rpc_method="Set"' in line
    ]
    assert len(buckets) > 2, "expected real buckets, not only +Inf"
    assert _histogram_count(text, "Set", 0) - set_before == 3
    assert _histogram_count(text, "Get", 5) - missing_before == 1


def test_health_names_components(server):
    _, http = server
    response = requests.get(f"{http}/health", timeout=RPC_TIMEOUT_S)
    assert response.status_code == 200
    report = response.json()
    components = report["components"]
    assert {"database", "config_cache", "change_stream", "disk"} <= set(components), components
    assert components["database"]["status"] == "ok"
    # The disk is shared with the rest of the machine: `degraded` exactly under 5 % free, and the
    # overall status is the worst component's.
    disk = components["disk"]
    low = disk["free_bytes"] * 20 < disk["total_bytes"]
    assert disk["status"] == ("degraded" if low else "ok"), disk
    for name in ("config_cache", "change_stream", "process_memory"):
        assert components[name]["status"] == "ok", components
    rank = {"ok": 0, "degraded": 1, "down": 2}
    worst = max((c["status"] for c in components.values()), key=rank.__getitem__)
    assert report["status"] == worst, report
    assert components["database"]["backend"] == "sqlite"


def test_ready_when_serving(server):
    _, http = server
    response = requests.get(f"{http}/ready", timeout=RPC_TIMEOUT_S)
    assert response.status_code == 200
    assert response.text.strip() == "ready"
