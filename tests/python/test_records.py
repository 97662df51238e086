"""Spans, log records and security events through our own API from a Python grpcio client:
partial success with a reason per refused item, and the client-streaming Write, checked against
the rows stored in the server's SQLite file."""

from __future__ import annotations

import sqlite3
import time


def _count(data_dir, sql, args=()):
    with sqlite3.connect(f"file:{data_dir / 'pharos.db'}?mode=ro", uri=True) as db:
        return db.execute(sql, args).fetchone()[0]


def test_spans_logs_and_security_events_with_partial_success(pb, ingest, pharos_server):
    now = time.time_ns()
    trace_id = bytes.fromhex("5b8efff798038103d269b633813fc60c")
    spans = [
        pb.ingest.Span(trace_id=trace_id, span_id=bytes.fromhex("eee19b7ec3c1b174"), name="root",
                       service_name="py", start_time_unix_nano=now - 2000, end_time_unix_nano=now,
                       attributes={"a": "1"}),
        pb.ingest.Span(trace_id=b"short", span_id=bytes(8), name="bad", start_time_unix_nano=now,
                       end_time_unix_nano=now),
    ]
    reply = ingest.WriteSpans(pb.ingest.WriteSpansRequest(spans=spans))
    assert (reply.accepted, reply.rejected) == (1, 1)
    assert [(r.index, r.field, r.reason) for r in reply.rejections] == [(1, "trace_id", "TRACE_ID_INVALID")]
    assert _count(pharos_server.data_dir, "SELECT COUNT(*) FROM spans WHERE trace_id = ?", (trace_id,)) == 1

    records = [
        pb.ingest.LogRecord(time_unix_nano=now, service_name="py-records", severity_number=9, body="hello"),
        pb.ingest.LogRecord(service_name="py-records", severity_number=99, body="bad severity"),
    ]
    reply = ingest.WriteLogs(pb.ingest.WriteLogsRequest(records=records))
    assert (reply.accepted, reply.rejected) == (1, 1)
    assert reply.rejections[0].reason == "SEVERITY_NUMBER_INVALID"
    assert _count(pharos_server.data_dir, "SELECT COUNT(*) FROM logs WHERE service = 'py-records'") == 1

    events = [
        pb.ingest.SecurityEvent(event_type="sql_injection_attempt", severity=pb.ingest.SEVERITY_CRITICAL,
                                source_ip="198.51.100.7", user_id="mallory", resource="/search",
                                attributes={"query": "' OR 1=1 --"}),
        pb.ingest.SecurityEvent(event_type="auth_failure", severity=pb.ingest.SEVERITY_UNSPECIFIED),
    ]
    reply = ingest.WriteSecurityEvents(pb.ingest.WriteSecurityEventsRequest(events=events))
    assert (reply.accepted, reply.rejected) == (1, 1)
    assert reply.rejections[0].reason == "SEVERITY_INVALID"
    assert _count(
        pharos_server.data_dir,
        "SELECT COUNT(*) FROM security_events WHERE user_id = 'mallory' AND source_ip = '198.51.100.7' "
        "AND severity = 5 AND json_extract(attributes, '$.query') = ?",
        ("' OR 1=1 --",),
    ) == 1


def test_write_stream_commits_every_batch(pb, ingest, pharos_server):
    now = time.time_ns()

    def batches():
        for i in range(20):
            yield pb.ingest.WriteRequest(metrics=pb.ingest.WriteMetricsRequest(points=[
                pb.ingest.MetricPoint(name="py_stream_total", labels=[pb.ingest.Label(name="i", value=str(i))],
                                      time_unix_nano=now, value=float(i))
            ]))
            yield pb.ingest.WriteRequest(logs=pb.ingest.WriteLogsRequest(records=[
                pb.ingest.LogRecord(time_unix_nano=now + i, service_name="py-stream", body=f"line {i}")
            ]))

    reply = ingest.Write(batches())
    assert (reply.batches, reply.accepted, reply.rejected) == (40, 40, 0)
    assert _count(pharos_server.data_dir, "SELECT COUNT(*) FROM logs WHERE service = 'py-stream'") == 20
    assert _count(
        pharos_server.data_dir,
        "SELECT COUNT(*) FROM metric_points p JOIN metric_series s ON s.id = p.series_id "
        "WHERE s.name = 'py_stream_total'",
    ) == 20


def test_feed_subscriber_sees_committed_security_events(pb, ingest):
    user = f"py-feed-{time.time_ns()}"
    event = pb.ingest.SecurityEvent(event_type="auth_failure", severity=pb.ingest.SEVERITY_HIGH, user_id=user,
                                    source_ip="192.0.2.44", attributes={"attempts": "5"})
    assert ingest.WriteSecurityEvents(pb.ingest.WriteSecurityEventsRequest(events=[event])).accepted == 1

    stream = ingest.Subscribe(
        pb.ingest.SubscribeRequest(signals=[pb.ingest.FEED_SIGNAL_SECURITY_EVENTS], after_position=0),
        timeout=10,
    )
    positions, found = [], None
    for response in stream:
        assert response.WhichOneof("item") == "batch"
        assert response.batch.WhichOneof("items") == "security_events"
        positions.append(response.batch.position)
        found = next((e for e in response.batch.security_events.events if e.user_id == user), None)
        if found is not None:
            break
    stream.cancel()
    assert found is not None
    assert (found.event_type, found.source_ip, found.severity) == ("auth_failure", "192.0.2.44",
                                                                     pb.ingest.SEVERITY_HIGH)
    assert dict(found.attributes) == {"attempts": "5"}
    assert positions == sorted(set(positions))
