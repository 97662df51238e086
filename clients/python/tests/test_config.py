"""The config layer against a real server: typed values, compare-and-set, list, history,
errors with field violations, and a watch that resumes by itself (after a cancelled
stream, after a server restart) and re-reads on OUT_OF_RANGE (a compacted revision)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from conftest import PharosServer

import pharos_client
from pharos_client import ChangeKind, ConfigWatch, ValueType, WatchEvent

EVENT_TIMEOUT_S = 15


class Reader:
    """Reads a ConfigWatch on a thread, so tests can wait for events with a timeout."""

    def __init__(self, watch: ConfigWatch) -> None:
        self.watch = watch
        self.events: list[WatchEvent] = []
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self.watch:
                with self._cond:
                    self.events.append(event)
                    self._cond.notify_all()
        except BaseException as error:  # noqa: BLE001
            with self._cond:
                self.error = error
                self._cond.notify_all()

    def wait(self, what: str, done: Callable[[list[WatchEvent]], bool]) -> list[WatchEvent]:
        deadline = time.monotonic() + EVENT_TIMEOUT_S
        with self._cond:
            while not done(self.events):
                if self.error is not None:
                    raise AssertionError(f"watch failed: {self.error!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{what} not seen; got {self.events}")
                self._cond.wait(left)
            return list(self.events)

    def close(self) -> None:
        self.watch.close()
        self._thread.join(5)


def changes(events: list[WatchEvent]) -> list[tuple[str, str, Any]]:
    return [(e.kind.value, e.key, e.value) for e in events if not e.snapshot]


def test_typed_values_round_trip(client: pharos_client.Client, prefix: str) -> None:
    values: dict[str, Any] = {
        "flag": True,
        "count": 42,
        "ratio": 0.25,
        "name": "pharos",
        "limits": {"rps": 100, "burst": [1, 2]},
        "timeout": timedelta(seconds=90),
    }
    for name, value in values.items():
        entry = client.config.set(prefix + name, value, category="pytest", description=name)
        assert entry.value == value and entry.revision > 0
    for name, value in values.items():
        got = client.config.get(prefix + name)
        assert got.value == value, name
        assert got.category == "pytest" and got.description == name
    assert client.config.get(prefix + "timeout").type is ValueType.DURATION
    assert client.config.get_value(prefix + "missing", "fallback") == "fallback"
    with pytest.raises(pharos_client.NotFoundError):
        client.config.get(prefix + "missing")
    # A type given explicitly wins over the Python type.
    entry = client.config.set(prefix + "as_text", "7", type=ValueType.INT)
    assert entry.value == 7 and entry.type is ValueType.INT


def test_environments_override_the_base_value(client: pharos_client.Client, prefix: str) -> None:
    client.config.set(prefix + "pool", 10)
    client.config.set(prefix + "pool", 50, environment="prod")
    assert client.config.get(prefix + "pool").value == 10
    assert client.config.get(prefix + "pool", environment="prod").value == 50
    assert client.config.get(prefix + "pool", environment="staging").value == 10


def test_compare_and_set(client: pharos_client.Client, prefix: str) -> None:
    key = prefix + "cas"
    first = client.config.compare_and_set(key, 1, expected_revision=0)
    second = client.config.compare_and_set(key, 2, expected_revision=first.revision)
    with pytest.raises(pharos_client.ConflictError) as refused:
        client.config.compare_and_set(key, 3, expected_revision=first.revision)
    assert refused.value.reason == "REVISION_MISMATCH"
    assert refused.value.current_revision == second.revision
    with pytest.raises(pharos_client.ConflictError):
        client.config.compare_and_set(key, 3, expected_revision=0)
    assert client.config.get(key).value == 2
    with pytest.raises(pharos_client.ConflictError):
        client.config.delete(key, expected_revision=first.revision)
    assert client.config.delete(key, expected_revision=second.revision) > second.revision


def test_list_pages_and_history(client: pharos_client.Client, prefix: str) -> None:
    for i in range(25):
        client.config.set(f"{prefix}k{i:02d}", i)
    listed = list(client.config.list(prefix, page_size=7))
    assert [e.key for e in listed] == [f"{prefix}k{i:02d}" for i in range(25)]
    assert [e.value for e in listed] == list(range(25))

    key = prefix + "hist"
    client.config.set(key, "a")
    client.config.set(key, "b")
    client.config.delete(key)
    items = client.config.history(key)
    assert [i.kind for i in items] == [ChangeKind.DELETE, ChangeKind.PUT, ChangeKind.PUT]
    assert [i.new_value for i in items] == [None, "b", "a"]
    assert items[0].old_value == "b"
    assert items[0].revision > items[1].revision > items[2].revision


def test_bad_input_carries_field_violations(client: pharos_client.Client, prefix: str) -> None:
    with pytest.raises(pharos_client.InvalidArgumentError) as refused:
        client.config.set("has space", "x")
    assert [v.field for v in refused.value.field_violations] == ["key"]
    with pytest.raises(pharos_client.InvalidArgumentError) as refused:
        client.config.set(prefix + "n", "forty", type=ValueType.INT)
    assert [v.field for v in refused.value.field_violations] == ["value"]


def test_watch_snapshot_then_changes(client: pharos_client.Client, prefix: str) -> None:
    client.config.set(prefix + "a", 1)
    client.config.set(prefix + "b", "x")
    reader = Reader(client.config.watch(prefixes=[prefix]))
    try:
        reader.wait("the snapshot", lambda ev: reader.watch.synced and len(ev) >= 2)
        assert sorted((e.key, e.value) for e in reader.events if e.snapshot) == [
            (prefix + "a", 1),
            (prefix + "b", "x"),
        ]
        client.config.set(prefix + "a", 2)
        client.config.delete(prefix + "b")
        client.config.set("pyclient/elsewhere", 1)  # not watched
        got = reader.wait("two changes", lambda ev: len(changes(ev)) >= 2)
        assert changes(got) == [("put", prefix + "a", 2), ("delete", prefix + "b", "x")]
        delete = [e for e in got if e.kind is ChangeKind.DELETE][0]
        assert delete.previous_value == "x"
        assert reader.watch.revision == delete.revision
    finally:
        reader.close()


def test_watch_resumes_after_a_cancelled_stream(client: pharos_client.Client, prefix: str) -> None:
    key = prefix + "n"
    client.config.set(key, 0)
    reader = Reader(client.config.watch(keys=[key]))
    try:
        reader.wait("the snapshot", lambda ev: reader.watch.synced)
        for round_ in range(3):
            # Break the stream under the watch (as a network failure would) and write while
            # it is away: it must resume from its revision and miss nothing.
            with reader.watch._lock:
                reader.watch._call.cancel()
            for i in range(5):
                client.config.set(key, round_ * 10 + i + 1)
            reader.wait(f"round {round_}", lambda ev: len(changes(ev)) >= (round_ + 1) * 5)
        time.sleep(0.5)
        values = [v for _, _, v in changes(reader.events)]
        assert values == [r * 10 + i + 1 for r in range(3) for i in range(5)]
        assert reader.watch.reconnects >= 3
    finally:
        reader.close()


def test_watch_resumes_across_a_server_restart(
    start_server: Callable[..., PharosServer], prefix: str
) -> None:
    server = start_server()
    key = prefix + "n"
    with server.client() as watcher, server.client() as writer:
        writer.config.set(key, 0)
        reader = Reader(watcher.config.watch(keys=[key]))
        try:
            reader.wait("the snapshot", lambda ev: reader.watch.synced)
            for i in range(1, 4):
                writer.config.set(key, i)
            reader.wait("changes before the restart", lambda ev: len(changes(ev)) >= 3)
            server.restart()
            for i in range(4, 8):
                writer.config.set(key, i)
            reader.wait("changes after the restart", lambda ev: len(changes(ev)) >= 7)
            time.sleep(0.5)
            assert [v for _, _, v in changes(reader.events)] == list(range(1, 8))
            assert reader.watch.reconnects >= 1 and reader.watch.resyncs == 0
        finally:
            reader.close()


COMPACTING = {
    # Keep changes 1 s, prune every 500 ms: a watcher away for a few seconds is compacted past.
    "PHAROS_CONFIG__REPLICATION__CHANGE_LOG_RETENTION": "1s",
    "PHAROS_CONFIG__REPLICATION__COMPACTION_INTERVAL": "500ms",
}


def test_a_compacted_revision_answers_out_of_range(
    start_server: Callable[..., PharosServer], prefix: str
) -> None:
    server = start_server(COMPACTING)
    with server.client() as client:
        first = client.config.set(prefix + "a", 1)
        client.config.set(prefix + "a", 2)
        time.sleep(3)
        client.config.set(prefix + "a", 3)
        stream = client.config.stub.Watch(
            pharos_client._proto.pharos.config.v1.config_pb2.WatchRequest(
                keys=[prefix + "a"], start_revision=first.revision
            )
        )
        with pytest.raises(Exception) as refused:
            next(iter(stream))
        error = pharos_client.errors.from_rpc_error(refused.value)  # type: ignore[arg-type]
        assert isinstance(error, pharos_client.OutOfRangeError)
        assert error.reason == "REVISION_COMPACTED"


def test_watch_rereads_after_out_of_range(
    start_server: Callable[..., PharosServer], prefix: str
) -> None:
    server = start_server(COMPACTING)
    with server.client() as client:
        client.config.set(prefix + "keep", "k")
        client.config.set(prefix + "change", 1)
        client.config.set(prefix + "gone", "g")
        watch = client.config.watch(prefixes=[prefix])
        # Iterated here, not on a thread, so that the watch stays away while the server
        # compacts; a timer ends it should the test hang.
        guard = threading.Timer(60, watch.close)
        guard.start()
        try:
            snapshot = [next(watch) for _ in range(3)]
            assert watch.synced and {e.key for e in snapshot} == {
                prefix + k for k in ("keep", "change", "gone")
            }
            # The stream breaks; meanwhile values change and the change log is pruned.
            with watch._lock:
                watch._call.cancel()
            client.config.set(prefix + "change", 2)
            client.config.delete(prefix + "gone")
            client.config.set(prefix + "new", True)
            time.sleep(3)
            after = [next(watch) for _ in range(3)]
            assert watch.resyncs == 1
            # Then the watch goes on with changes as usual.
            client.config.set(prefix + "keep", "k2")
            live = next(watch)
        finally:
            guard.cancel()
            watch.close()
    # Only what changed comes again, each once: the new values, and a DELETE for the key gone.
    got = {e.key: (e.kind.value, e.value, e.snapshot) for e in after}
    assert got == {
        prefix + "change": ("put", 2, True),
        prefix + "new": ("put", True, True),
        prefix + "gone": ("delete", "g", True),
    }
    assert (live.kind, live.key, live.value, live.snapshot) == (
        ChangeKind.PUT, prefix + "keep", "k2", False
    )


def test_auth_tokens_and_actor(start_server: Callable[..., PharosServer], prefix: str) -> None:
    server = start_server({"PHAROS_SERVER__AUTH__TOKENS": '["robot:s3cret"]'})
    with server.client() as anonymous:
        with pytest.raises(pharos_client.UnauthenticatedError):
            anonymous.config.get(prefix + "x")
    with server.client(token="s3cret") as client:
        entry = client.config.set(prefix + "x", 1)
        assert entry.updated_by == "robot"
        assert client.config.get(prefix + "x").value == 1
