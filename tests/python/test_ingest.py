"""The ingest service driven by a Python grpcio client generated from proto/: a batch with good
and bad points is stored in part with a reason per refused point, and what is stored is read back
from the server's embedded SQLite file, so the check is on the data, not on the reply alone."""

from __future__ import annotations

import math
import sqlite3
import time

import grpc
import pytest
from grpc_status import rpc_status
from google.rpc import error_details_pb2


def _point(pb, name, labels, time_ns, value):
    return pb.ingest.MetricPoint(
        name=name,
        labels=[pb.ingest.Label(name=k, value=v) for k, v in labels.items()],
        time_unix_nano=time_ns,
        value=value,
    )


def _stored(data_dir, metric):
    """(labels_key, time_us, value) of every stored point of `metric`, oldest first."""
    with sqlite3.connect(f"file:{data_dir / 'pharos.db'}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT s.labels_key, p.time_us, p.value FROM metric_points p "
            "JOIN metric_series s ON s.id = p.series_id WHERE s.name = ? ORDER BY p.time_us",
            (metric,),
        ).fetchall()
    return [(key, at, math.nan if value is None else value) for key, at, value in rows]


def test_partial_success_stores_exactly_the_good_points(pb, ingest, pharos_server):
    now_ns = time.time_ns()
    metric = "py_requests_total"
    points = [
        _point(pb, metric, {"code": "200", "path": "/"}, now_ns - 2_000_000_000, 10.0),
        _point(pb, "bad-name", {}, now_ns, 1.0),
        _point(pb, metric, {"__reserved": "x"}, now_ns, 1.0),
        _point(pb, metric, {"path": "/", "code": "200"}, now_ns - 1_000_000_000, float("nan")),
        _point(pb, metric, {"code": "500"}, now_ns - 30 * 86_400 * 10**9, 1.0),
        _point(pb, metric, {"code": "500"}, now_ns, float("inf")),
    ]
    reply = ingest.WriteMetrics(pb.ingest.WriteMetricsRequest(points=points))
    assert (reply.accepted, reply.rejected) == (3, 3)
    assert [(r.index, r.field, r.reason) for r in reply.rejections] == [
        (1, "name", "METRIC_NAME_INVALID"),
        (2, "labels[0].name", "LABEL_NAME_RESERVED"),
        (4, "time_unix_nano", "TIME_TOO_OLD"),
    ]

    stored = _stored(pharos_server.data_dir, metric)
    assert [(key, at) for key, at, _ in stored] == [
        ('code="200",path="/"', (now_ns - 2_000_000_000) // 1000),
        ('code="200",path="/"', (now_ns - 1_000_000_000) // 1000),
        ('code="500"', now_ns // 1000),
    ]
    assert stored[0][2] == 10.0
    assert math.isnan(stored[1][2])
    assert stored[2][2] == math.inf


def test_gzip_requests_are_accepted(pb, ingest, pharos_server):
    now_ns = time.time_ns()
    points = [_point(pb, "py_gzip_total", {"i": str(i)}, now_ns - i * 1000, float(i)) for i in range(500)]
    reply = ingest.WriteMetrics(
        pb.ingest.WriteMetricsRequest(points=points), compression=grpc.Compression.Gzip
    )
    assert (reply.accepted, reply.rejected) == (500, 0)
    assert len(_stored(pharos_server.data_dir, "py_gzip_total")) == 500


def test_too_many_points_is_invalid_argument_naming_the_field(pb, ingest):
    points = [_point(pb, "py_big", {}, 0, 1.0)] * 100_001
    with pytest.raises(grpc.RpcError) as error:
        ingest.WriteMetrics(pb.ingest.WriteMetricsRequest(points=points))
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(error.value)
    bad_request = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad_request) for detail in status.details)
    assert [v.field for v in bad_request.field_violations] == ["points"]
