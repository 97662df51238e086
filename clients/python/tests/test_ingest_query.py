"""Ingest and query layers against a real server: BatchWriter batches by size and time,
reports partial-success rejections, retries RESOURCE_EXHAUSTED after the server's
RetryInfo delay (a server with a tiny write buffer that lingers), and PromQL answers come
back as plain Python structures."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from conftest import PharosServer

import pharos_client
from pharos_client import BatchWriter, point

NOW = time.time()


def _wait_count(client: pharos_client.Client, selector: str, want: float) -> float:
    deadline = time.monotonic() + 15
    got = -1.0
    while time.monotonic() < deadline:
        samples = client.query.instant(f"count({selector})")
        got = samples[0]["value"][1] if samples else 0.0
        if got == want:
            return got
        time.sleep(0.2)
    return got


def test_batch_writer_batches_by_size_and_flushes(client: pharos_client.Client) -> None:
    with client.ingest.batch_writer(max_batch=40, max_delay=30) as writer:
        for i in range(100):
            writer.add("pyclient_batch_total", i, {"series": str(i)}, time=NOW - 30)
        # Two full batches go at once; the last 20 wait for flush (max_delay is long).
        deadline = time.monotonic() + 10
        while writer.stats.batches < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert writer.stats.batches == 2 and writer.stats.accepted == 80
        writer.flush()
        assert writer.stats.batches == 3 and writer.stats.accepted == 100
    assert _wait_count(client, "pyclient_batch_total", 100) == 100


def test_batch_writer_sends_by_time(client: pharos_client.Client) -> None:
    with client.ingest.batch_writer(max_batch=10_000, max_delay=0.2) as writer:
        writer.add("pyclient_linger_total", 1, {"a": "b"}, time=NOW - 20)
        deadline = time.monotonic() + 5
        while writer.stats.batches < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert writer.stats.accepted == 1


def test_rejections_are_reported_and_the_rest_stored(client: pharos_client.Client) -> None:
    seen: list[pharos_client.Rejection] = []
    with client.ingest.batch_writer(max_batch=100, on_rejection=seen.append) as writer:
        writer.add("pyclient_partial_total", 1, {"i": "0"}, time=NOW - 10)
        writer.add("bad name!", 1, time=NOW - 10)
        writer.add("pyclient_partial_total", 2, {"i": "1"}, time=NOW - 30 * 86400)
        writer.add("pyclient_partial_total", 3, {"i": "2"}, time=NOW - 10)
    assert (writer.stats.accepted, writer.stats.rejected) == (2, 2)
    assert writer.rejections == seen
    by_index = {r.index: r for r in writer.rejections}
    assert sorted(by_index) == [1, 2]
    assert by_index[1].field == "name" and by_index[1].item.name == "bad name!"
    assert by_index[2].reason == "TIME_TOO_OLD"
    assert _wait_count(client, "pyclient_partial_total", 2) == 2


def test_spans_logs_and_security_events(client: pharos_client.Client) -> None:
    ns = int(NOW * 1e9)
    with client.ingest.batch_writer() as writer:
        writer.add_span(
            pharos_client.ingest.Span(
                trace_id=bytes(range(1, 17)),
                span_id=bytes(range(1, 9)),
                name="GET /",
                service_name="pyclient",
                start_time_unix_nano=ns - 1_000_000,
                end_time_unix_nano=ns,
            )
        )
        writer.add_log(pharos_client.ingest.LogRecord(time_unix_nano=ns, body="hello", severity_number=9))
        writer.add_security_event(
            pharos_client.ingest.SecurityEvent(
                event_type="auth_failure", severity=pharos_client.ingest.pb.SEVERITY_LOW
            )
        )
    assert (writer.stats.accepted, writer.stats.rejected, writer.stats.batches) == (3, 0, 3)


# A write buffer of 100 points whose batches wait 400 ms: a second batch arriving meanwhile
# does not fit and is refused with RESOURCE_EXHAUSTED and a RetryInfo of 300 ms.
OVERLOADABLE = {
    "PHAROS_INGEST__METRICS__MAX_BUFFERED_POINTS": "100",
    "PHAROS_INGEST__METRICS__LINGER": "400ms",
    "PHAROS_INGEST__RETRY_AFTER": "300ms",
}


def test_batch_writer_honours_retry_info(start_server: Callable[..., PharosServer]) -> None:
    server = start_server(OVERLOADABLE)
    with server.client() as client:
        # The raw refusal first: what the writer has to deal with.
        results: list[object] = []

        def write(offset: int) -> None:
            points = [point("pyclient_overload_raw", 1, {"i": str(offset + i)}, NOW - 5) for i in range(80)]
            try:
                results.append(client.ingest.write_metrics(points, retry=pharos_client.RetryPolicy(max_attempts=1)))
            except pharos_client.PharosError as error:
                results.append(error)

        threads = [threading.Thread(target=write, args=(n * 100,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        refused = [r for r in results if isinstance(r, pharos_client.PharosError)]
        assert len(refused) == 1, results
        assert isinstance(refused[0], pharos_client.ResourceExhaustedError)
        assert refused[0].retry_delay == pytest.approx(0.3)

        policy = pharos_client.RetryPolicy(max_attempts=0, deadline=90)
        writers = [
            client.ingest.batch_writer(max_batch=80, max_delay=0.05, retry=policy) for _ in range(3)
        ]

        def produce(n: int, writer: BatchWriter) -> None:
            for i in range(400):
                writer.add("pyclient_overload_total", 1, {"w": str(n), "i": str(i)}, time=NOW - 5)
            writer.flush()

        threads = [threading.Thread(target=produce, args=(n, w)) for n, w in enumerate(writers)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for w in writers:
            w.close()
        elapsed = time.monotonic() - started
        delays = [d for w in writers for d in w.stats.retry_delays]
        assert sum(w.stats.accepted for w in writers) == 1200
        assert delays, "no batch was refused; the server did not overload"
        # Every retry waited exactly what the server asked for.
        assert all(d == pytest.approx(0.3) for d in delays), delays
        assert elapsed >= 0.3
        assert _wait_count(client, "pyclient_overload_total", 1200) == 1200


def test_instant_range_and_metadata_queries(client: pharos_client.Client) -> None:
    base = float(int(NOW) - 600)
    with client.ingest.batch_writer() as writer:
        for step in range(10):
            for job in ("api", "db"):
                value = step * (1 if job == "api" else 10)
                writer.add("pyclient_q_total", value, {"job": job}, time=base + step * 60)
    at = base + 9 * 60
    assert _wait_count(client, "pyclient_q_total", 2) == 2

    samples = client.query.instant('pyclient_q_total{job="db"}', time=at)
    assert samples == [
        {"metric": {"__name__": "pyclient_q_total", "job": "db"}, "value": (at, 90.0)}
    ]
    total = client.query.instant("sum(pyclient_q_total)", time=at)
    assert total == [{"metric": {}, "value": (at, 99.0)}]
    assert client.query.instant("1 + 2", time=at) == [{"metric": {}, "value": (at, 3.0)}]

    series = client.query.range("pyclient_q_total", base, at, step=120)
    assert [s["metric"]["job"] for s in sorted(series, key=lambda s: s["metric"]["job"])] == ["api", "db"]
    api = [s for s in series if s["metric"]["job"] == "api"][0]
    assert api["values"] == [(base + t, float(t // 60)) for t in range(0, 541, 120)]

    answer = client.query.evaluate("pyclient_q_total[5m]", time=at)
    assert answer["resultType"] == "matrix" and len(answer["result"]) == 2
    with pytest.raises(TypeError):
        client.query.instant("pyclient_q_total[5m]", time=at)

    assert "job" in client.query.label_names(["pyclient_q_total"])
    assert client.query.label_values("job", ["pyclient_q_total"]) == ["api", "db"]
    assert len(client.query.series(["pyclient_q_total"])) == 2


def test_bad_promql_names_the_field(client: pharos_client.Client) -> None:
    with pytest.raises(pharos_client.InvalidArgumentError) as refused:
        client.query.instant("sum(")
    assert [v.field for v in refused.value.field_violations] == ["query"]
