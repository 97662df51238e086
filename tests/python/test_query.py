"""The PromQL query service (pharos.query.v1.QueryService) from a Python grpcio client: series
written through IngestService/WriteMetrics are read back with QueryInstant (vector, matrix,
scalar and string results), QueryRange, Series, LabelNames and LabelValues (with limits), and
bad input gets INVALID_ARGUMENT with a google.rpc.BadRequest naming the field. Expected values
are computed here by hand from the written points, on times aligned so that Prometheus'
extrapolation in rate() is exact."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import grpc
import pytest
from test_config import field_violations as _violations

# Metric names of this module only (test_ingest writes py_requests_total with other labels).
COUNTER = "pyquery_requests_total"
GAUGE = "pyquery_queue_depth"
STEP_S = 15
# Samples per series: one every 15 s over the 10 minutes before T0, both ends included.
SAMPLES = 41
# (labels, growth per 15 s) of each counter series.
COUNTERS = [
    ({"job": "api", "instance": "a"}, 3.0),
    ({"job": "api", "instance": "b"}, 6.0),
    ({"job": "batch", "instance": "c"}, 1.0),
]
GAUGE_LABELS = {"job": "worker", "queue": "q1"}
RPC_TIMEOUT_S = 10


def _gauge_value(i: int) -> float:
    return float(10 + (i * 7) % 11)


@dataclass
class Data:
    """The written data: sample i of every series is at `t0_ms - (SAMPLES - 1 - i) * 15 s`."""

    t0_ms: int

    def time_ms(self, i: int) -> int:
        return self.t0_ms - (SAMPLES - 1 - i) * STEP_S * 1000

    def index(self, time_ms: int) -> int:
        offset = self.t0_ms - time_ms
        assert offset % (STEP_S * 1000) == 0, time_ms
        return SAMPLES - 1 - offset // (STEP_S * 1000)


@pytest.fixture(scope="module")
def data(pb, pharos_server) -> Data:
    """Writes the module's series once: 3 counters and a gauge over the last ~10 minutes."""
    # A multiple of 15 s in the past, so every sample (and so every window below) is aligned.
    t0_ms = (time.time_ns() // 1_000_000 // 15_000) * 15_000 - 15_000
    written = Data(t0_ms)
    points = []
    for i in range(SAMPLES):
        at_ns = written.time_ms(i) * 1_000_000
        for labels, growth in COUNTERS:
            points.append(_point(pb, COUNTER, labels, at_ns, growth * i))
        points.append(_point(pb, GAUGE, GAUGE_LABELS, at_ns, _gauge_value(i)))
    ingest = pb.ingest_grpc.IngestServiceStub(pharos_server.channel)
    reply = ingest.WriteMetrics(pb.ingest.WriteMetricsRequest(points=points), timeout=RPC_TIMEOUT_S)
    assert (reply.accepted, reply.rejected) == (len(points), 0), reply.rejections
    return written


def _point(pb, name, labels, time_ns, value):
    return pb.ingest.MetricPoint(
        name=name,
        labels=[pb.ingest.Label(name=k, value=v) for k, v in labels.items()],
        time_unix_nano=time_ns,
        value=value,
    )


def _rate(growth: float) -> float:
    """rate(counter[5m]) at a sample time: the window holds 21 samples spanning exactly 300 s,
    so nothing is extrapolated: (last - first) / 300."""
    return (growth * 20) / 300


def _error(call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=RPC_TIMEOUT_S)
    return caught.value


def test_instant_query_gives_a_typed_vector_with_the_exact_rate(pb, query, data):
    at = data.time_ms(30)  # the 5m window [at - 300 s, at] holds samples 10..30
    reply = query.QueryInstant(
        pb.query.QueryInstantRequest(query=f"sum by (job) (rate({COUNTER}[5m]))", time_ms=at),
        timeout=RPC_TIMEOUT_S,
    )
    assert reply.WhichOneof("result") == "vector"
    samples = sorted(reply.vector.samples, key=lambda s: s.labels["job"])
    assert [dict(s.labels) for s in samples] == [{"job": "api"}, {"job": "batch"}]
    assert [s.time_ms for s in samples] == [at, at]
    expected = {"api": _rate(3.0) + _rate(6.0), "batch": _rate(1.0)}
    for sample in samples:
        assert abs(sample.value - expected[sample.labels["job"]]) <= 1e-9, sample
    assert abs(samples[0].value - 0.6) <= 1e-9  # (3 + 6) / 15 per second
    assert list(reply.warnings) == []
    assert reply.stats.series_loaded == 3

    # The raw selector keeps __name__ and every label, and the gauge's value at a sample time.
    reply = query.QueryInstant(
        pb.query.QueryInstantRequest(query=f'{GAUGE}{{job="worker"}}', time_ms=at),
        timeout=RPC_TIMEOUT_S,
    )
    [sample] = reply.vector.samples
    assert dict(sample.labels) == {"__name__": GAUGE, **GAUGE_LABELS}
    assert (sample.time_ms, sample.value) == (at, _gauge_value(30))


def test_instant_range_selector_gives_a_matrix(pb, query, data):
    at = data.time_ms(30)
    reply = query.QueryInstant(
        pb.query.QueryInstantRequest(query=f'{COUNTER}{{job="api"}}[1m]', time_ms=at),
        timeout=RPC_TIMEOUT_S,
    )
    assert reply.WhichOneof("result") == "matrix"
    series = sorted(reply.matrix.series, key=lambda s: s.labels["instance"])
    assert [dict(s.labels) for s in series] == [
        {"__name__": COUNTER, "job": "api", "instance": "a"},
        {"__name__": COUNTER, "job": "api", "instance": "b"},
    ]
    # Prometheus 2.42: a range [at - 1m, at] closed at both ends, so samples 26..30.
    for one, growth in zip(series, [3.0, 6.0]):
        assert [(p.time_ms, p.value) for p in one.samples] == [
            (data.time_ms(i), growth * i) for i in range(26, 31)
        ]


def test_range_query_gives_a_sample_per_step(pb, query, data):
    start, end, step_ms = data.time_ms(22), data.time_ms(30), 30_000
    steps = list(range(start, end + 1, step_ms))
    assert len(steps) == 5
    reply = query.QueryRange(
        pb.query.QueryRangeRequest(
            query=f"rate({COUNTER}[5m])", start_ms=start, end_ms=end, step_ms=step_ms
        ),
        timeout=RPC_TIMEOUT_S,
    )
    by_instance = {s.labels["instance"]: s for s in reply.matrix.series}
    assert sorted(by_instance) == ["a", "b", "c"]
    for labels, growth in COUNTERS:
        one = by_instance[labels["instance"]]
        # rate() drops the metric name.
        assert dict(one.labels) == labels
        assert [p.time_ms for p in one.samples] == steps
        for point in one.samples:
            assert abs(point.value - _rate(growth)) <= 1e-9, (labels, point)

    # Steps before the first sample have no value and so no sample.
    start, end = data.time_ms(0) - 30_000, data.time_ms(4)
    reply = query.QueryRange(
        pb.query.QueryRangeRequest(query=GAUGE, start_ms=start, end_ms=end, step_ms=30_000),
        timeout=RPC_TIMEOUT_S,
    )
    [one] = reply.matrix.series
    assert dict(one.labels) == {"__name__": GAUGE, **GAUGE_LABELS}
    assert [(p.time_ms, p.value) for p in one.samples] == [
        (data.time_ms(i), _gauge_value(i)) for i in (0, 2, 4)
    ]

    # A scalar expression: one series without labels, a sample at every step.
    reply = query.QueryRange(
        pb.query.QueryRangeRequest(query="1+1", start_ms=start, end_ms=end, step_ms=30_000),
        timeout=RPC_TIMEOUT_S,
    )
    [one] = reply.matrix.series
    assert dict(one.labels) == {}
    assert [(p.time_ms, p.value) for p in one.samples] == [
        (t, 2.0) for t in range(start, end + 1, 30_000)
    ]


def test_scalar_and_string_results(pb, query, data):
    at = data.time_ms(30)
    reply = query.QueryInstant(pb.query.QueryInstantRequest(query="1+1", time_ms=at), timeout=RPC_TIMEOUT_S)
    assert reply.WhichOneof("result") == "scalar"
    assert (reply.scalar.time_ms, reply.scalar.value) == (at, 2.0)

    reply = query.QueryInstant(pb.query.QueryInstantRequest(query='"x"', time_ms=at), timeout=RPC_TIMEOUT_S)
    assert reply.WhichOneof("result") == "string"
    assert (reply.string.time_ms, reply.string.value) == (at, "x")

    # Without time_ms the server evaluates at its now.
    before = time.time_ns() // 1_000_000
    reply = query.QueryInstant(pb.query.QueryInstantRequest(query="1+1"), timeout=RPC_TIMEOUT_S)
    after = time.time_ns() // 1_000_000
    assert before - 1_000 <= reply.scalar.time_ms <= after + 1_000


def test_series_label_names_and_label_values(pb, query, data):
    counters = [{"__name__": COUNTER, **labels} for labels, _ in COUNTERS]
    reply = query.Series(pb.query.SeriesRequest(matchers=[COUNTER]), timeout=RPC_TIMEOUT_S)
    assert sorted((dict(s.labels) for s in reply.series), key=lambda l: l["instance"]) == counters
    assert not reply.truncated

    reply = query.Series(
        pb.query.SeriesRequest(matchers=[f'{COUNTER}{{job="api"}}', GAUGE]), timeout=RPC_TIMEOUT_S
    )
    assert sorted(tuple(sorted(s.labels.items())) for s in reply.series) == sorted(
        tuple(sorted(labels.items()))
        for labels in counters[:2] + [{"__name__": GAUGE, **GAUGE_LABELS}]
    )

    reply = query.Series(pb.query.SeriesRequest(matchers=[COUNTER], limit=2), timeout=RPC_TIMEOUT_S)
    assert (len(reply.series), reply.truncated) == (2, True)
    reply = query.Series(pb.query.SeriesRequest(matchers=[COUNTER], limit=3), timeout=RPC_TIMEOUT_S)
    assert (len(reply.series), reply.truncated) == (3, False)

    # A time range with no point of these series selects none of them; one with points, all.
    reply = query.Series(
        pb.query.SeriesRequest(
            matchers=[COUNTER], start_ms=data.time_ms(0) - 3_600_000, end_ms=data.time_ms(0) - 60_000
        ),
        timeout=RPC_TIMEOUT_S,
    )
    assert list(reply.series) == []
    reply = query.Series(
        pb.query.SeriesRequest(matchers=[COUNTER], start_ms=data.time_ms(10), end_ms=data.time_ms(10)),
        timeout=RPC_TIMEOUT_S,
    )
    assert len(reply.series) == 3

    ours = '{__name__=~"pyquery_.*"}'
    reply = query.LabelNames(pb.query.LabelNamesRequest(matchers=[ours]), timeout=RPC_TIMEOUT_S)
    assert (list(reply.names), reply.truncated) == (["__name__", "instance", "job", "queue"], False)
    reply = query.LabelNames(pb.query.LabelNamesRequest(matchers=[ours], limit=2), timeout=RPC_TIMEOUT_S)
    assert (list(reply.names), reply.truncated) == (["__name__", "instance"], True)
    # Without matchers: the names of every series (other tests' too).
    reply = query.LabelNames(pb.query.LabelNamesRequest(), timeout=RPC_TIMEOUT_S)
    assert {"__name__", "instance", "job", "queue"} <= set(reply.names)

    reply = query.LabelValues(pb.query.LabelValuesRequest(name="job", matchers=[ours]), timeout=RPC_TIMEOUT_S)
    assert (list(reply.values), reply.truncated) == (["api", "batch", "worker"], False)
    reply = query.LabelValues(
        pb.query.LabelValuesRequest(name="job", matchers=[COUNTER], limit=1), timeout=RPC_TIMEOUT_S
    )
    assert (list(reply.values), reply.truncated) == (["api"], True)
    reply = query.LabelValues(
        pb.query.LabelValuesRequest(name="__name__", matchers=[ours]), timeout=RPC_TIMEOUT_S
    )
    assert (list(reply.values), reply.truncated) == ([GAUGE, COUNTER], False)
    reply = query.LabelValues(pb.query.LabelValuesRequest(name="__name__"), timeout=RPC_TIMEOUT_S)
    assert {GAUGE, COUNTER} <= set(reply.values)
    assert list(reply.values) == sorted(reply.values)


QUERY_POSITION = re.compile(r"query \(line (\d+), column (\d+), offset (\d+)\)")


def test_bad_input_is_invalid_argument_naming_the_field(pb, query, data):
    at = data.time_ms(30)

    # A syntax error names the field "query", with the place when the parser gives one (it
    # does not say where for these: the field is then "query" alone).
    for unparsable in ["sum(rate(x[5m])", "1 + 2 3", f"{COUNTER}{{job=}}"]:
        error = _error(query.QueryInstant, pb.query.QueryInstantRequest(query=unparsable, time_ms=at))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, unparsable
        [(field, description)] = _violations(error)
        assert field.startswith("query"), (unparsable, field)
        assert field == "query" or QUERY_POSITION.fullmatch(field), (unparsable, field)
        assert description == error.details()

    # An unsupported construct is placed: line and column (1-based, in characters) and the
    # byte offset in the expression.
    error = _error(
        query.QueryInstant, pb.query.QueryInstantRequest(query="abs(x)\n  + histogram_count(x)", time_ms=at)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = _violations(error)
    assert field == "query (line 2, column 5, offset 11)", field
    assert "histogram_count" in description

    error = _error(
        query.QueryRange,
        pb.query.QueryRangeRequest(query=COUNTER, start_ms=at, end_ms=at - 60_000, step_ms=15_000),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in _violations(error)] == ["end"]

    error = _error(
        query.QueryRange,
        pb.query.QueryRangeRequest(query=COUNTER, start_ms=at - 60_000, end_ms=at, step_ms=0),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in _violations(error)] == ["step"]

    error = _error(
        query.QueryInstant, pb.query.QueryInstantRequest(query=f"no_such_function({COUNTER})", time_ms=at)
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = _violations(error)
    assert field.startswith("query"), field
    assert "unknown function" in description

    # Both sides hold two series of job="api": many-to-many, an evaluation error.
    error = _error(
        query.QueryInstant,
        pb.query.QueryInstantRequest(query=f"{COUNTER} + on (job) {COUNTER}", time_ms=at),
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = _violations(error)
    assert field.startswith("query"), field
    assert "many-to-many" in description

    # Series needs at least one matcher.
    error = _error(query.Series, pb.query.SeriesRequest())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
