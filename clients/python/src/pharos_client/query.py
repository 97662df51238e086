"""The query service: PromQL answers as plain Python structures, shaped like the
Prometheus HTTP API's `data` (times in float Unix seconds, values as floats)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, TypedDict, Union

import grpc

from ._channel import call
from ._proto.pharos.query.v1 import query_pb2 as pb
from ._proto.pharos.query.v1 import query_pb2_grpc as pb_grpc

__all__ = ["InstantSample", "QueryClient", "QueryResult", "RangeSeries"]

Time = Union[datetime, float, int]
Step = Union[timedelta, float, int]


class InstantSample(TypedDict):
    """One sample of an instant vector (or the one value of a scalar)."""

    metric: dict[str, str]
    value: tuple[float, float]


class RangeSeries(TypedDict):
    """One series of a matrix, with a (time, value) pair at each step."""

    metric: dict[str, str]
    values: list[tuple[float, float]]


class QueryResult(TypedDict):
    """What any expression gives: resultType "vector", "scalar", "string" or "matrix"."""

    resultType: Literal["vector", "scalar", "string", "matrix"]
    result: Any
    warnings: list[str]


def _ms(when: Time) -> int:
    if isinstance(when, datetime):
        return int(round(when.timestamp() * 1000))
    return int(round(float(when) * 1000))


def _step_ms(step: Step) -> int:
    if isinstance(step, timedelta):
        return int(step / timedelta(milliseconds=1))
    return int(round(float(step) * 1000))


def _matrix(matrix: pb.Matrix) -> list[RangeSeries]:
    return [
        {
            "metric": dict(series.labels),
            "values": [(s.time_ms / 1000.0, s.value) for s in series.samples],
        }
        for series in matrix.series
    ]


class QueryClient:
    """The QueryService: `client.query`. Times are datetimes or float Unix seconds."""

    def __init__(self, channel: grpc.Channel, *, timeout: float | None = None) -> None:
        self._stub: Any = pb_grpc.QueryServiceStub(channel)
        self._timeout = timeout

    @property
    def stub(self) -> Any:
        return self._stub

    def evaluate(
        self, promql: str, time: Time | None = None, *, timeout: float | None = None
    ) -> QueryResult:
        """Evaluates `promql` at `time` (None: now), whatever its type."""
        request = pb.QueryInstantRequest(query=promql)
        if time is not None:
            request.time_ms = _ms(time)
        if timeout is not None:
            request.timeout_ms = int(timeout * 1000)
        response = call(self._stub.QueryInstant, request, timeout=self._call_timeout(timeout))
        kind = response.WhichOneof("result")
        result: Any
        if kind == "scalar":
            result = (response.scalar.time_ms / 1000.0, response.scalar.value)
            result_type: Literal["vector", "scalar", "string", "matrix"] = "scalar"
        elif kind == "string":
            result = (response.string.time_ms / 1000.0, response.string.value)
            result_type = "string"
        elif kind == "matrix":
            result = _matrix(response.matrix)
            result_type = "matrix"
        else:
            result = [
                {"metric": dict(s.labels), "value": (s.time_ms / 1000.0, s.value)}
                for s in response.vector.samples
            ]
            result_type = "vector"
        return {"resultType": result_type, "result": result, "warnings": list(response.warnings)}

    def instant(
        self, promql: str, time: Time | None = None, *, timeout: float | None = None
    ) -> list[InstantSample]:
        """The instant vector of `promql` at `time` (None: now), as
        [{"metric": {...}, "value": (t, v)}]; a scalar gives one sample with no labels.
        An expression whose value is a range vector raises TypeError (use `evaluate`)."""
        answer = self.evaluate(promql, time, timeout=timeout)
        if answer["resultType"] == "vector":
            samples: list[InstantSample] = answer["result"]
            return samples
        if answer["resultType"] == "scalar":
            return [{"metric": {}, "value": answer["result"]}]
        raise TypeError(
            f"{promql!r} gives a {answer['resultType']}, not an instant vector; use evaluate()"
        )

    def range(
        self,
        promql: str,
        start: Time,
        end: Time,
        step: Step,
        *,
        timeout: float | None = None,
    ) -> list[RangeSeries]:
        """`promql` at every `step` from `start` to `end`, as
        [{"metric": {...}, "values": [(t, v), ...]}]."""
        request = pb.QueryRangeRequest(
            query=promql, start_ms=_ms(start), end_ms=_ms(end), step_ms=_step_ms(step)
        )
        if timeout is not None:
            request.timeout_ms = int(timeout * 1000)
        response = call(self._stub.QueryRange, request, timeout=self._call_timeout(timeout))
        return _matrix(response.matrix)

    def series(
        self,
        matchers: Sequence[str],
        start: Time | None = None,
        end: Time | None = None,
        *,
        limit: int = 0,
    ) -> list[dict[str, str]]:
        """The label sets of the series matching the selectors."""
        request = pb.SeriesRequest(matchers=list(matchers), limit=limit)
        if start is not None:
            request.start_ms = _ms(start)
        if end is not None:
            request.end_ms = _ms(end)
        response = call(self._stub.Series, request, timeout=self._timeout)
        return [dict(s.labels) for s in response.series]

    def label_names(self, matchers: Sequence[str] = (), *, limit: int = 0) -> list[str]:
        request = pb.LabelNamesRequest(matchers=list(matchers), limit=limit)
        return list(call(self._stub.LabelNames, request, timeout=self._timeout).names)

    def label_values(self, name: str, matchers: Sequence[str] = (), *, limit: int = 0) -> list[str]:
        request = pb.LabelValuesRequest(name=name, matchers=list(matchers), limit=limit)
        return list(call(self._stub.LabelValues, request, timeout=self._timeout).values)

    def _call_timeout(self, timeout: float | None) -> float | None:
        if timeout is None:
            return self._timeout
        return timeout + 5.0
