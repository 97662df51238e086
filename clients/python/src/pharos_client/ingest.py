"""The ingest service: single writes that honour RetryInfo, and BatchWriter, which
batches metric points, spans, log records and security events by size and time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar, Union

import grpc

from ._channel import RetryPolicy, call_with_retry
from ._proto.pharos.ingest.v1 import ingest_pb2 as pb
from ._proto.pharos.ingest.v1 import ingest_pb2_grpc as pb_grpc
from .errors import PharosError

__all__ = [
    "BatchWriter",
    "IngestClient",
    "LogRecord",
    "MetricPoint",
    "Rejection",
    "SecurityEvent",
    "Span",
    "WriteResult",
    "point",
]

# The generated messages, for spans, log records and security events.
Span = pb.Span
LogRecord = pb.LogRecord
SecurityEvent = pb.SecurityEvent
MetricPoint = pb.MetricPoint

Timestamp = Union[datetime, float, int, None]
Item = TypeVar("Item", pb.MetricPoint, pb.Span, pb.LogRecord, pb.SecurityEvent)


def time_unix_nano(when: Timestamp) -> int:
    """A time as Unix nanoseconds: a datetime (naive means UTC... use aware ones), float
    seconds, or an int of nanoseconds; None is 0 (the server's receive time)."""
    if when is None:
        return 0
    if isinstance(when, datetime):
        return int(when.timestamp() * 1_000_000) * 1000
    if isinstance(when, float):
        return int(when * 1e9)
    return int(when)


def point(
    name: str,
    value: float,
    labels: Mapping[str, str] | None = None,
    time: Timestamp = None,
) -> pb.MetricPoint:
    """A metric point; `time` is a datetime, float Unix seconds or int Unix nanoseconds
    (None: when the server receives it)."""
    return pb.MetricPoint(
        name=name,
        value=float(value),
        labels=[pb.Label(name=k, value=v) for k, v in (labels or {}).items()],
        time_unix_nano=time_unix_nano(time),
    )


@dataclass(frozen=True)
class Rejection:
    """One item the server refused (the rest of its batch was stored)."""

    index: int
    field: str
    reason: str
    message: str
    item: Any = None


@dataclass
class WriteResult:
    accepted: int = 0
    rejected: int = 0
    rejections: list[Rejection] = field(default_factory=list)


_INGEST_RETRY = RetryPolicy(max_attempts=10, initial_backoff=0.2, max_backoff=10.0, deadline=120.0)

_Sleep = Callable[[float], None]
_OnRetry = Callable[[PharosError, float], None]


class IngestClient:
    """The IngestService: `client.ingest`. Each write retries RESOURCE_EXHAUSTED and
    UNAVAILABLE after the delay the server's RetryInfo asks for (see RetryPolicy)."""

    def __init__(self, channel: grpc.Channel, *, timeout: float | None = None) -> None:
        self._stub: Any = pb_grpc.IngestServiceStub(channel)
        self._timeout = timeout

    @property
    def stub(self) -> Any:
        return self._stub

    def _write(
        self,
        method: Any,
        request: Any,
        items: Sequence[Any],
        retry: RetryPolicy,
        on_retry: _OnRetry | None,
    ) -> WriteResult:
        response = call_with_retry(
            method, request, policy=retry, timeout=self._timeout, on_retry=on_retry
        )
        return WriteResult(
            accepted=int(response.accepted),
            rejected=int(response.rejected),
            rejections=[
                Rejection(
                    r.index,
                    r.field,
                    r.reason,
                    r.message,
                    items[r.index] if r.index < len(items) else None,
                )
                for r in response.rejections
            ],
        )

    def write_metrics(
        self,
        points: Iterable[pb.MetricPoint],
        *,
        retry: RetryPolicy = _INGEST_RETRY,
        on_retry: _OnRetry | None = None,
    ) -> WriteResult:
        items = list(points)
        request = pb.WriteMetricsRequest(points=items)
        return self._write(self._stub.WriteMetrics, request, items, retry, on_retry)

    def write_spans(
        self,
        spans: Iterable[pb.Span],
        *,
        retry: RetryPolicy = _INGEST_RETRY,
        on_retry: _OnRetry | None = None,
    ) -> WriteResult:
        items = list(spans)
        request = pb.WriteSpansRequest(spans=items)
        return self._write(self._stub.WriteSpans, request, items, retry, on_retry)

    def write_logs(
        self,
        records: Iterable[pb.LogRecord],
        *,
        retry: RetryPolicy = _INGEST_RETRY,
        on_retry: _OnRetry | None = None,
    ) -> WriteResult:
        items = list(records)
        request = pb.WriteLogsRequest(records=items)
        return self._write(self._stub.WriteLogs, request, items, retry, on_retry)

    def write_security_events(
        self,
        events: Iterable[pb.SecurityEvent],
        *,
        retry: RetryPolicy = _INGEST_RETRY,
        on_retry: _OnRetry | None = None,
    ) -> WriteResult:
        items = list(events)
        request = pb.WriteSecurityEventsRequest(events=items)
        return self._write(self._stub.WriteSecurityEvents, request, items, retry, on_retry)

    def batch_writer(self, **kwargs: Any) -> BatchWriter:
        """A BatchWriter on this client; see BatchWriter for the arguments."""
        return BatchWriter(self, **kwargs)


class _Buffer(Generic[Item]):
    def __init__(self, send: Callable[[list[Item]], WriteResult]) -> None:
        self.items: list[Item] = []
        self.first_at = 0.0
        self.send: Callable[[list[Item]], WriteResult] = send


@dataclass
class WriterStats:
    """What a BatchWriter did so far."""

    batches: int = 0
    accepted: int = 0
    rejected: int = 0
    retries: int = 0
    # The delays slept before retries, in seconds (the server's RetryInfo when it sent one).
    retry_delays: list[float] = field(default_factory=list)


class BatchWriter:
    """Collects items and writes them in batches from a background thread: a batch goes
    when `max_batch` items wait or the oldest waited `max_delay` seconds, and on
    `flush()`/`close()`. Refused batches (RESOURCE_EXHAUSTED, UNAVAILABLE) are retried
    after the server's RetryInfo delay (see `retry`). `add*` blocks while `max_pending`
    items wait, so a slow server slows the producer instead of filling memory.

    Items the server rejects (partial success) are counted in `stats` and kept in
    `rejections` (and passed to `on_rejection` when given). A batch that fails for good
    makes the next `add*`, `flush()` or `close()` raise its PharosError.

        with client.ingest.batch_writer(max_batch=5000) as writer:
            writer.add("http_requests_total", 1, {"job": "api"})
    """

    def __init__(
        self,
        client: IngestClient,
        *,
        max_batch: int = 1000,
        max_delay: float = 1.0,
        max_pending: int | None = None,
        retry: RetryPolicy = _INGEST_RETRY,
        on_rejection: Callable[[Rejection], None] | None = None,
        keep_rejections: int = 10_000,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._client = client
        self._max_batch = max_batch
        self._max_delay = max_delay
        self._max_pending = max_pending or 10 * max_batch
        self._retry = retry
        self._on_rejection = on_rejection
        self._keep_rejections = keep_rejections
        self.stats = WriterStats()
        self.rejections: list[Rejection] = []
        self._cond = threading.Condition()
        self._buffers: dict[str, _Buffer[Any]] = {
            "metrics": _Buffer(lambda b: client.write_metrics(b, retry=retry, on_retry=self._retried)),
            "spans": _Buffer(lambda b: client.write_spans(b, retry=retry, on_retry=self._retried)),
            "logs": _Buffer(lambda b: client.write_logs(b, retry=retry, on_retry=self._retried)),
            "security_events": _Buffer(
                lambda b: client.write_security_events(b, retry=retry, on_retry=self._retried)
            ),
        }
        self._pending = 0  # items added and not yet written (or failed)
        self._flush_requested = 0
        self._closing = False
        self._error: PharosError | None = None
        self._wait: float | None = None
        self._thread = threading.Thread(target=self._loop, name="pharos-batch-writer", daemon=True)
        self._thread.start()

    # -- adding ------------------------------------------------------------------------

    def add(
        self,
        name: str,
        value: float,
        labels: Mapping[str, str] | None = None,
        time: Timestamp = None,
    ) -> None:
        """Adds one metric point (see `point`)."""
        self._add("metrics", point(name, value, labels, time))

    def add_point(self, item: pb.MetricPoint) -> None:
        self._add("metrics", item)

    def add_span(self, item: pb.Span) -> None:
        self._add("spans", item)

    def add_log(self, item: pb.LogRecord) -> None:
        self._add("logs", item)

    def add_security_event(self, item: pb.SecurityEvent) -> None:
        self._add("security_events", item)

    def _add(self, signal: str, item: Any) -> None:
        with self._cond:
            self._raise_error()
            if self._closing:
                raise RuntimeError("the BatchWriter is closed")
            while self._pending >= self._max_pending and self._error is None:
                self._cond.wait()
            self._raise_error()
            buffer = self._buffers[signal]
            if not buffer.items:
                buffer.first_at = time.monotonic()
            buffer.items.append(item)
            self._pending += 1
            # The first item starts the max_delay clock; a full batch goes at once.
            if len(buffer.items) == 1 or len(buffer.items) >= self._max_batch:
                self._cond.notify_all()

    # -- flushing ----------------------------------------------------------------------

    def flush(self) -> None:
        """Writes everything added so far; raises the error of a batch that failed."""
        with self._cond:
            self._flush_requested += 1
            self._cond.notify_all()
            while self._pending > 0 and self._error is None:
                self._cond.wait()
            self._flush_requested -= 1
            self._raise_error()

    def close(self) -> None:
        """Flushes and stops the background thread."""
        try:
            if self._thread.is_alive():
                self.flush()
        finally:
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._thread.join()

    def __enter__(self) -> BatchWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            # Do not hide the caller's exception behind a flush error.
            try:
                self.close()
            except PharosError:
                pass

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _retried(self, error: PharosError, delay: float) -> None:
        with self._cond:
            self.stats.retries += 1
            self.stats.retry_delays.append(delay)

    # -- the background thread -----------------------------------------------------------

    def _next_batch(self) -> tuple[_Buffer[Any], list[Any]] | None:
        """Under the lock: a batch due now, or None with the time to wait in self._wait."""
        now = time.monotonic()
        soonest: float | None = None
        for buffer in self._buffers.values():
            if not buffer.items:
                continue
            due = buffer.first_at + self._max_delay
            if (
                len(buffer.items) >= self._max_batch
                or due <= now
                or self._flush_requested
                or self._closing
            ):
                batch = buffer.items[: self._max_batch]
                del buffer.items[: self._max_batch]
                buffer.first_at = now
                return buffer, batch
            soonest = due if soonest is None else min(soonest, due)
        self._wait = None if soonest is None else max(0.0, soonest - now)
        return None

    def _loop(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._error is not None:
                        return
                    found = self._next_batch()
                    if found is not None:
                        break
                    if self._closing:
                        return
                    self._cond.wait(self._wait)
            buffer, batch = found
            try:
                result = buffer.send(batch)
            except PharosError as error:
                with self._cond:
                    self._error = error
                    self._pending -= len(batch)
                    self._cond.notify_all()
                return
            except BaseException as error:  # noqa: BLE001 - keep waiters from hanging
                with self._cond:
                    self._error = PharosError(grpc.StatusCode.UNKNOWN, repr(error))
                    self._cond.notify_all()
                raise
            rejections = [
                Rejection(r.index, r.field, r.reason, r.message, r.item) for r in result.rejections
            ]
            with self._cond:
                self.stats.batches += 1
                self.stats.accepted += result.accepted
                self.stats.rejected += result.rejected
                room = self._keep_rejections - len(self.rejections)
                self.rejections.extend(rejections[: max(0, room)])
                self._pending -= len(batch)
                self._cond.notify_all()
            if self._on_rejection is not None:
                for rejection in rejections:
                    self._on_rejection(rejection)
