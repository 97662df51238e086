"""The config service: typed values, compare-and-set, history and a self-resuming watch."""

from __future__ import annotations

import builtins
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import grpc

from ._channel import RetryPolicy, call, retry_delay
from ._proto.pharos.config.v1 import config_pb2 as pb
from ._proto.pharos.config.v1 import config_pb2_grpc as pb_grpc
from ._values import Value, ValueType, from_text, infer_type, to_datetime, to_text
from .errors import NotFoundError, OutOfRangeError, PharosError, from_rpc_error

__all__ = [
    "ChangeKind",
    "ConfigClient",
    "ConfigEntry",
    "ConfigWatch",
    "HistoryItem",
    "ValueType",
    "WatchEvent",
]

_MISSING: Any = object()


class ChangeKind(str, Enum):
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True)
class ConfigEntry:
    """One stored value; `value` is the typed Python value, `text` as stored."""

    key: str
    value: Value
    text: str
    type: ValueType
    category: str
    description: str
    environment: str
    revision: int
    updated_at: datetime | None
    updated_by: str

    @classmethod
    def from_pb(cls, entry: pb.ConfigEntry) -> ConfigEntry:
        value_type = ValueType.from_pb(entry.type)
        try:
            value = from_text(entry.value, value_type)
        except ValueError:
            value = entry.value
        return cls(
            key=entry.key,
            value=value,
            text=entry.value,
            type=value_type,
            category=entry.category,
            description=entry.description,
            environment=entry.environment,
            revision=entry.revision,
            updated_at=to_datetime(entry.updated_at) if entry.HasField("updated_at") else None,
            updated_by=entry.updated_by,
        )


@dataclass(frozen=True)
class HistoryItem:
    revision: int
    kind: ChangeKind
    old_value: str | None
    new_value: str | None
    type: ValueType
    changed_at: datetime | None
    actor: str


@dataclass(frozen=True)
class WatchEvent:
    """One change (or, with `snapshot` set, one current value of a (re)synchronisation).
    For a DELETE, `entry` is the entry as it was, with the revision of the delete."""

    kind: ChangeKind
    entry: ConfigEntry
    previous_value: str | None
    snapshot: bool

    @property
    def key(self) -> str:
        return self.entry.key

    @property
    def value(self) -> Value:
        return self.entry.value

    @property
    def revision(self) -> int:
        return self.entry.revision


def _kind(number: int) -> ChangeKind:
    return ChangeKind.DELETE if number == pb.CHANGE_KIND_DELETE else ChangeKind.PUT


class ConfigWatch:
    """An iterator of WatchEvent that survives disconnects.

    It remembers the highest revision delivered (`revision`) and, when the stream
    breaks (UNAVAILABLE, a server restart, a stream the server ended), opens a new
    one with start_revision=revision, so that no change is lost or repeated. When
    that revision was compacted away (OUT_OF_RANGE), it re-reads the current values
    and yields, as `snapshot` events, those that differ from what it had delivered,
    plus a DELETE for each key it had seen that is gone, then goes on with the changes.
    `synced` turns True once the initial snapshot (or catch-up) is complete.
    `close()` (from any thread) ends the iteration.
    """

    def __init__(
        self,
        stub: Any,
        keys: Iterable[str],
        prefixes: Iterable[str],
        start_revision: int | None,
        retry: RetryPolicy,
    ) -> None:
        self._stub = stub
        self._keys = list(keys)
        self._prefixes = list(prefixes)
        self.revision: int | None = start_revision
        self.synced = False
        self.reconnects = 0
        self.resyncs = 0
        self._retry = retry
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._call: Any = None
        # The last delivered state of each (key, environment), to diff a re-read against.
        self._known: dict[tuple[str, str], ConfigEntry] = {}
        self._events = self._run()

    def __iter__(self) -> Iterator[WatchEvent]:
        return self

    def __next__(self) -> WatchEvent:
        return next(self._events)

    def __enter__(self) -> ConfigWatch:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            if self._call is not None:
                self._call.cancel()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def _open(self, start_revision: int | None) -> Any:
        request = pb.WatchRequest(keys=self._keys, prefixes=self._prefixes)
        if start_revision is not None:
            request.start_revision = start_revision
        with self._lock:
            if self._closed.is_set():
                return None
            self._call = self._stub.Watch(request)
            return self._call

    def _remember(self, event: WatchEvent) -> None:
        ident = (event.entry.key, event.entry.environment)
        if event.kind is ChangeKind.DELETE:
            self._known.pop(ident, None)
        else:
            self._known[ident] = event.entry

    def _run(self) -> Iterator[WatchEvent]:
        failures = 0
        resync = False
        while not self._closed.is_set():
            start = None if resync else self.revision
            responses = self._open(start)
            if responses is None:
                return
            # Without start_revision the stream starts with the current values.
            in_snapshot = start is None
            seen: set[tuple[str, str]] = set()
            error: PharosError | None = None
            try:
                for response in responses:
                    failures = 0
                    # The whole response is in memory: settle the state, then hand it out.
                    batch: list[WatchEvent] = []
                    for raw in response.events:
                        event = WatchEvent(
                            kind=_kind(raw.type),
                            entry=ConfigEntry.from_pb(raw.entry),
                            previous_value=(
                                raw.previous_value if raw.HasField("previous_value") else None
                            ),
                            snapshot=in_snapshot,
                        )
                        ident = (event.entry.key, event.entry.environment)
                        if in_snapshot:
                            seen.add(ident)
                            known = self._known.get(ident)
                            if known is not None and known.revision == event.entry.revision:
                                continue  # delivered before this re-read
                        elif self.revision is not None and event.entry.revision <= self.revision:
                            continue  # delivered before (the server never resends; a safety net)
                        self._remember(event)
                        batch.append(event)
                        if not in_snapshot:
                            self.revision = max(self.revision or 0, event.entry.revision)
                    if response.snapshot_complete:
                        if in_snapshot:
                            # Keys delivered before but absent now were deleted meanwhile.
                            for ident in sorted(set(self._known) - seen):
                                gone = self._known.pop(ident)
                                batch.append(WatchEvent(ChangeKind.DELETE, gone, gone.text, True))
                        in_snapshot = False
                        resync = False
                        self.synced = True
                    if not in_snapshot:
                        self.revision = max(self.revision or 0, response.revision)
                    yield from batch
                # A clean end: the server is shutting down. Resume (on another replica).
            except grpc.RpcError as rpc_error:
                error = from_rpc_error(rpc_error)
            if self._closed.is_set():
                return
            if isinstance(error, OutOfRangeError):
                # start_revision was compacted away: re-read the current values.
                self.resyncs += 1
                resync = True
                continue
            failures += 1
            self.reconnects += 1
            delay: float | None
            if error is None:
                delay = self._retry.backoff(failures)
            else:
                delay = retry_delay(error, self._retry, failures)
                transient = error.code in (
                    grpc.StatusCode.CANCELLED,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    grpc.StatusCode.INTERNAL,
                    grpc.StatusCode.UNKNOWN,
                )
                within = not self._retry.max_attempts or failures < self._retry.max_attempts
                if delay is None and transient and within:
                    delay = self._retry.backoff(failures)
                if delay is None:
                    raise error
            if self._closed.wait(delay):
                return


_WATCH_RETRY = RetryPolicy(max_attempts=0, initial_backoff=0.1, max_backoff=5.0, deadline=None)


class ConfigClient:
    """The ConfigService: `client.config`."""

    def __init__(self, channel: grpc.Channel, *, timeout: float | None = None) -> None:
        self._stub: Any = pb_grpc.ConfigServiceStub(channel)
        self._timeout = timeout

    @property
    def stub(self) -> Any:
        """The raw generated stub, for what this layer does not cover."""
        return self._stub

    def get(self, key: str, *, environment: str = "") -> ConfigEntry:
        """The entry of `key` (the environment's override, else the base value);
        NotFoundError when there is none."""
        response = call(
            self._stub.Get, pb.GetRequest(key=key, environment=environment), timeout=self._timeout
        )
        return ConfigEntry.from_pb(response.entry)

    def get_value(self, key: str, default: Any = _MISSING, *, environment: str = "") -> Any:
        """The typed value of `key`, or `default` when it does not exist (NotFoundError
        without a default)."""
        try:
            return self.get(key, environment=environment).value
        except NotFoundError:
            if default is _MISSING:
                raise
            return default

    def set(
        self,
        key: str,
        value: Value,
        *,
        type: ValueType | None = None,
        category: str = "",
        description: str = "",
        environment: str = "",
        expected_revision: int | None = None,
    ) -> ConfigEntry:
        """Stores `value` (its type inferred from the Python type unless given: bool, int,
        float, str, timedelta for DURATION, dict/list for JSON). With `expected_revision`
        it is a compare-and-set (0: the key must not exist): ConflictError on mismatch."""
        value_type = type or infer_type(value)
        request = pb.SetRequest(
            key=key,
            value=to_text(value, value_type),
            type=value_type.to_pb(),
            category=category,
            description=description,
            environment=environment,
        )
        if expected_revision is not None:
            request.expected_revision = expected_revision
        response = call(self._stub.Set, request, timeout=self._timeout)
        return ConfigEntry.from_pb(response.entry)

    def compare_and_set(
        self, key: str, value: Value, expected_revision: int, **kwargs: Any
    ) -> ConfigEntry:
        """`set` only if the entry is at `expected_revision` (0: absent); raises
        ConflictError (reason REVISION_MISMATCH, `current_revision`) otherwise."""
        return self.set(key, value, expected_revision=expected_revision, **kwargs)

    def delete(
        self, key: str, *, environment: str = "", expected_revision: int | None = None
    ) -> int:
        """Deletes the entry; returns the revision of the delete."""
        request = pb.DeleteRequest(key=key, environment=environment)
        if expected_revision is not None:
            request.expected_revision = expected_revision
        return int(call(self._stub.Delete, request, timeout=self._timeout).revision)

    def list(
        self, prefix: str = "", *, category: str = "", environment: str = "", page_size: int = 500
    ) -> Iterator[ConfigEntry]:
        """Every entry under `prefix`, fetching page after page."""
        token = ""
        while True:
            response = call(
                self._stub.List,
                pb.ListRequest(
                    prefix=prefix,
                    category=category,
                    environment=environment,
                    page_size=page_size,
                    page_token=token,
                ),
                timeout=self._timeout,
            )
            for entry in response.entries:
                yield ConfigEntry.from_pb(entry)
            token = response.next_page_token
            if not token:
                return

    def history(
        self, key: str, *, environment: str = "", limit: int = 100
    ) -> builtins.list[HistoryItem]:
        """The recorded changes of `key`, newest first."""
        response = call(
            self._stub.History,
            pb.HistoryRequest(key=key, environment=environment, limit=limit),
            timeout=self._timeout,
        )
        return [
            HistoryItem(
                revision=item.revision,
                kind=_kind(item.kind),
                old_value=item.old_value if item.HasField("old_value") else None,
                new_value=item.new_value if item.HasField("new_value") else None,
                type=ValueType.from_pb(item.type),
                changed_at=to_datetime(item.changed_at) if item.HasField("changed_at") else None,
                actor=item.actor,
            )
            for item in response.items
        ]

    def watch(
        self,
        keys: Iterable[str] = (),
        prefixes: Iterable[str] = (),
        *,
        start_revision: int | None = None,
        retry: RetryPolicy = _WATCH_RETRY,
    ) -> ConfigWatch:
        """Watches `keys` and `prefixes` (none: every key). Without `start_revision` the
        current values come first (`snapshot` events), then every change; with it, the
        changes after it. Resumes by itself after a disconnect; see ConfigWatch."""
        return ConfigWatch(self._stub, keys, prefixes, start_revision, retry)
