"""The official OpenTelemetry Python SDK exports metrics to Pharos over OTLP/gRPC, unchanged:
counters, up-down counters, histograms and gauges arrive under the names Prometheus' OTLP
translation (v2.53) gives them (unit suffixes, `_total`), with their attributes, `job` and
`instance` from the service as labels, the other resource attributes on `target_info`, and
histograms keep buckets, sum and count. What is stored is read back from the server's embedded
SQLite file."""

from __future__ import annotations

import sqlite3

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource


def _latest(data_dir, metric):
    """{labels_key: value} of the newest point of each series of `metric`."""
    with sqlite3.connect(f"file:{data_dir / 'pharos.db'}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT s.labels_key, p.value FROM metric_points p JOIN metric_series s ON s.id = p.series_id "
            "WHERE s.name = ? ORDER BY p.time_us",
            (metric,),
        ).fetchall()
    return {key: value for key, value in rows}


def test_sdk_metrics_are_stored_with_prometheus_names(pharos_server):
    exporter = OTLPMetricExporter(endpoint=pharos_server.grpc_addr, insecure=True, timeout=10)
    # A long interval: the export below is the explicit flush.
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource = Resource.create({"service.name": "checkout", "service.instance.id": "pod-7"})
    provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = provider.get_meter("pytest")

    requests = meter.create_counter("py.otel.requests", unit="1")
    requests.add(3, {"route": "/cart"})
    requests.add(4, {"route": "/cart"})
    requests.add(1, {"route": "/pay"})
    in_flight = meter.create_up_down_counter("py.otel.in_flight")
    in_flight.add(5)
    in_flight.add(-2)
    latency = meter.create_histogram("py.otel.latency", unit="ms")
    for value in (5, 50, 500):
        latency.record(value, {"route": "/cart"})
    meter.create_observable_gauge(
        "py.otel.temperature", callbacks=[lambda options: [Observation(21.5, {"room": "lab"})]]
    )

    assert provider.force_flush(timeout_millis=10_000)
    provider.shutdown()

    service = 'instance="pod-7",job="checkout"'
    # Unit "1" adds no suffix to a counter; `_total` marks it as one.
    assert _latest(pharos_server.data_dir, "py_otel_requests_total") == {
        f'{service},route="/cart"': 7.0,
        f'{service},route="/pay"': 1.0,
    }
    assert _latest(pharos_server.data_dir, "py_otel_in_flight") == {service: 3.0}
    assert _latest(pharos_server.data_dir, "py_otel_temperature") == {f'{service},room="lab"': 21.5}

    # Unit "ms" becomes `_milliseconds`, before `_count`, `_sum` and `_bucket`.
    latency = "py_otel_latency_milliseconds"
    assert _latest(pharos_server.data_dir, f"{latency}_count") == {f'{service},route="/cart"': 3.0}
    assert _latest(pharos_server.data_dir, f"{latency}_sum") == {f'{service},route="/cart"': 555.0}
    buckets = {
        key.split('le="')[1].split('"')[0]: value
        for key, value in _latest(pharos_server.data_dir, f"{latency}_bucket").items()
    }
    # The SDK's default explicit bounds: 0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, ...
    assert buckets["0"] == 0.0
    assert buckets["5"] == 1.0
    assert buckets["50"] == 2.0
    assert buckets["500"] == 3.0
    assert buckets["+Inf"] == 3.0

    # The SDK's own resource attributes (telemetry.sdk.*) are on `target_info`, beside job and
    # instance, not on every series.
    (info_key, info_value), = _latest(pharos_server.data_dir, "target_info").items()
    assert info_value == 1.0
    assert info_key.startswith(service + ","), info_key
    assert 'telemetry_sdk_language="python"' in info_key, info_key
