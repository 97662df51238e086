"""The official OpenTelemetry Python SDK exports spans and log records to Pharos over OTLP/gRPC,
unchanged: every span arrives with its ids, parent, kind, times to the nanosecond, typed
attributes, events, links, status and resource; log records keep their body, severity,
attributes and trace context. What is stored is read back from the server's SQLite file and
compared with what the SDK says it sent."""

from __future__ import annotations

import json
import sqlite3
import time

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode


def _rows(data_dir, sql, args):
    with sqlite3.connect(f"file:{data_dir / 'pharos.db'}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute(sql, args).fetchall()]


class _Collect(SimpleSpanProcessor):
    """Exports each span as it ends and keeps it, to compare with what is stored."""

    def __init__(self, exporter):
        super().__init__(exporter)
        self.ended = []

    def on_end(self, span):
        self.ended.append(span)
        super().on_end(span)


def test_sdk_spans_are_stored_as_sent(pharos_server):
    resource = Resource.create({"service.name": "py-shop", "deployment.environment": "test"})
    provider = TracerProvider(resource=resource)
    collect = _Collect(OTLPSpanExporter(endpoint=pharos_server.grpc_addr, insecure=True, timeout=10))
    provider.add_span_processor(collect)
    tracer = provider.get_tracer("pytest.tracer", "0.1")

    other = trace.SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=trace.TraceFlags(1),
    )
    with tracer.start_as_current_span(
        "GET /cart",
        kind=SpanKind.SERVER,
        attributes={"http.route": "/cart", "http.status_code": 500, "ratio": 0.25, "cached": False,
                    "tags": ["a", "b"]},
        links=[Link(other, {"link.kind": "follows"})],
    ) as parent:
        parent.add_event("cache.miss", {"key": "cart:7"})
        with tracer.start_as_current_span("SELECT carts", kind=SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.ERROR, "deadlock"))
    provider.shutdown()

    sent = {span.context.span_id: span for span in collect.ended}
    assert len(sent) == 2
    trace_id = parent.get_span_context().trace_id.to_bytes(16, "big")
    stored = _rows(pharos_server.data_dir, "SELECT * FROM spans WHERE trace_id = ? ORDER BY start_ns", (trace_id,))
    assert len(stored) == 2
    for row in stored:
        span = sent[int.from_bytes(row["span_id"], "big")]
        assert row["name"] == span.name
        assert (row["start_ns"], row["end_ns"]) == (span.start_time, span.end_time)
        assert row["service"] == "py-shop"
        resource = json.loads(row["resource"])
        assert resource["service.name"] == "py-shop"
        assert resource["deployment.environment"] == "test"
        assert resource["telemetry.sdk.language"] == "python"
        attributes = json.loads(row["attributes"])
        assert attributes["otel.scope.name"] == "pytest.tracer"
        assert attributes["otel.scope.version"] == "0.1"
        for key, value in span.attributes.items():
            assert attributes[key] == (list(value) if isinstance(value, tuple) else value)

    root, child = stored
    assert root["parent_span_id"] is None
    assert child["parent_span_id"] == root["span_id"]
    assert (root["kind"], child["kind"]) == (2, 3)
    assert (root["status_code"], child["status_code"], child["status_message"]) == (0, 2, "deadlock")
    events = json.loads(root["events"])
    assert [(e["name"], e["attributes"]) for e in events] == [("cache.miss", {"key": "cart:7"})]
    assert events[0]["time_ns"] == sent[parent.get_span_context().span_id].events[0].timestamp
    links = json.loads(root["links"])
    assert links == [{
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "span_id": "00f067aa0ba902b7",
        "trace_state": "",
        "attributes": {"link.kind": "follows"},
    }]


def test_sdk_log_records_are_stored_with_trace_context(pharos_server):
    resource = Resource.create({"service.name": "py-logs"})
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=pharos_server.grpc_addr, insecure=True, timeout=10))
    )
    logger = provider.get_logger("pytest.logs", "2.0")
    tracer = TracerProvider(resource=resource).get_tracer("pytest")
    now = time.time_ns()
    with tracer.start_as_current_span("work") as span:
        logger.emit(
            timestamp=now - 1_000,
            observed_timestamp=now,
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            body="disk /var is 91% full",
            attributes={"disk.path": "/var", "disk.used": 0.91},
        )
    logger.emit(
        timestamp=now,
        severity_number=SeverityNumber.INFO,
        body={"event": "login", "ok": True},
        event_name="user.login",
    )
    provider.shutdown()

    stored = _rows(
        pharos_server.data_dir,
        "SELECT * FROM logs WHERE service = ? ORDER BY time_ns",
        ("py-logs",),
    )
    assert len(stored) == 2
    warning, info = stored
    assert (warning["time_ns"], warning["observed_ns"]) == (now - 1_000, now)
    assert (warning["severity_number"], warning["severity_text"]) == (13, "WARN")
    assert warning["body"] == "disk /var is 91% full"
    assert warning["trace_id"] == span.get_span_context().trace_id.to_bytes(16, "big")
    assert warning["span_id"] == span.get_span_context().span_id.to_bytes(8, "big")
    assert json.loads(warning["attributes"]) == {
        "disk.path": "/var",
        "disk.used": 0.91,
        "otel.scope.name": "pytest.logs",
        "otel.scope.version": "2.0",
    }
    assert json.loads(warning["resource"])["service.name"] == "py-logs"
    assert info["time_ns"] == now and info["severity_number"] == 9
    assert json.loads(info["body"]) == {"event": "login", "ok": True}
    assert json.loads(info["attributes"])["event.name"] == "user.login"
    assert info["trace_id"] is None
