"""Search with numpy arrays and the alert layer against a real server."""

from __future__ import annotations

import time

import numpy as np
import pytest

import pharos_client

DIM = 16


def test_search_round_trip_with_numpy(client: pharos_client.Client) -> None:
    name = "pyclient-flat"
    info = client.search.create_index(name, DIM, metric="l2")
    assert (info.name, info.dimension, info.metric, info.kind, info.count) == (name, DIM, "l2", "flat", 0)
    with pytest.raises(pharos_client.AlreadyExistsError):
        client.search.create_index(name, DIM)
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((300, DIM)).astype(np.float32)
    ids = np.arange(1000, 1300, dtype=np.int64)
    payloads = [{"parity": "even" if i % 2 == 0 else "odd"} for i in range(300)]
    assert client.search.upsert(name, ids, vectors, payloads, batch_size=128) == 300
    assert [i.count for i in client.search.list_indexes() if i.name == name] == [300]

    # Every vector finds itself first, at distance 0, across more than one BatchSearch.
    queries = np.concatenate([vectors] * 4)  # 1200 queries > 1024 per request
    result = client.search.search(name, queries, k=5)
    assert result.ids.shape == (1200, 5) and result.ids.dtype == np.int64
    assert result.scores.shape == (1200, 5) and result.scores.dtype == np.float32
    np.testing.assert_array_equal(result.ids[:, 0], np.concatenate([ids] * 4))
    np.testing.assert_allclose(result.scores[:, 0], 0.0, atol=1e-4)
    assert np.all(np.diff(result.scores, axis=1) >= -1e-5)  # nearest first
    assert result.payloads[3][0] == {"parity": "odd"}

    # The neighbours match numpy's own answer.
    brute = np.argsort(((vectors[:5, None, :] - vectors[None, :, :]) ** 2).sum(-1), axis=1)[:, :5]
    np.testing.assert_array_equal(result.ids[:5], ids[brute])

    # A single 1-D query gives 1-D arrays; a filter keeps only matching payloads.
    one = client.search.search(name, vectors[10], k=3, filter={"parity": "odd"})
    assert one.ids.shape == (3,)
    assert all(p == {"parity": "odd"} for p in one.payloads)
    assert one.ids[0] != ids[10]

    # Fewer hits than k pad with -1 / NaN.
    small = client.search.search(name, vectors[:2], k=5, filter={"parity": ["none"]})
    assert (small.ids == -1).all() and np.isnan(small.scores).all()

    assert client.search.delete(name, ids[:150]) == 150
    after = client.search.search(name, vectors[:150], k=1)
    assert not np.isin(after.ids, ids[:150]).any()

    with pytest.raises(pharos_client.InvalidArgumentError):
        client.search.search(name, np.zeros((1, DIM + 1), dtype=np.float32))
    with pytest.raises(ValueError):
        client.search.upsert(name, [1, 2], vectors[:3])
    client.search.drop_index(name)
    with pytest.raises(pharos_client.NotFoundError):
        client.search.search(name, vectors[:1])


def test_cosine_and_inner_product(client: pharos_client.Client) -> None:
    for metric in ("cosine", "inner_product"):
        name = f"pyclient-{metric}"
        client.search.create_index(name, 2, metric=metric)
        client.search.upsert(name, [1, 2], np.array([[1, 0], [0, 1]], dtype=np.float32))
        hits = client.search.search(name, np.array([[2, 0.1]]), k=2)
        assert hits.ids.tolist() == [[1, 2]]
        assert hits.scores[0, 0] > hits.scores[0, 1]
        client.search.drop_index(name)


RULES = """groups:
- name: pyclient-always
  interval: 1s
  rules:
  - alert: PyClientAlways
    expr: vector(1) > 0
    labels:
      severity: page
    annotations:
      summary: always firing
"""


def test_alerts_acknowledge_and_silences(server: object) -> None:
    from conftest import PharosServer

    assert isinstance(server, PharosServer)
    with server.client(actor="pytest-oncall") as client:
        assert client.alert.put_rule_group("pyclient", RULES) == "pyclient-always"
        try:
            deadline = time.monotonic() + 20
            alerts: list[pharos_client.Alert] = []
            while not alerts and time.monotonic() < deadline:
                alerts = client.alert.list_alerts(['alertname="PyClientAlways"'])
                time.sleep(0.2)
            assert len(alerts) == 1
            alert = alerts[0]
            assert alert.labels["severity"] == "page" and alert.state == "active"
            assert client.alert.get_alert(alert.fingerprint).fingerprint == alert.fingerprint

            acked = client.alert.acknowledge(alert.fingerprint, "on it")
            assert acked.acknowledgement is not None
            assert (acked.acknowledgement.by, acked.acknowledgement.comment) == ("pytest-oncall", "on it")

            silence = client.alert.create_silence(
                ['alertname="PyClientAlways"', pharos_client.Matcher("severity", "pa.*", "=~")],
                duration=600,
                comment="maintenance",
            )
            assert silence.state == "active" and silence.id
            assert silence.created_by == "pytest-oncall"
            assert [str(m) for m in silence.matchers] == ['alertname="PyClientAlways"', 'severity=~"pa.*"']
            listed = client.alert.list_silences(expired=False)
            assert silence.id in [s.id for s in listed]
            expired = client.alert.expire_silence(silence.id)
            assert expired.state in ("expired", "active")  # active until the millisecond ends
            time.sleep(0.01)
            assert silence.id not in [s.id for s in client.alert.list_silences(expired=False)]

            groups = [g for g in client.alert.list_rule_groups() if g["name"] == "pyclient-always"]
            assert groups and groups[0]["running"]
        finally:
            client.alert.delete_rule_group("pyclient", "pyclient-always")

        with pytest.raises(pharos_client.InvalidArgumentError) as refused:
            client.alert.get_alert("xyz")
        assert [v.field for v in refused.value.field_violations] == ["fingerprint"]
        with pytest.raises(pharos_client.NotFoundError):
            client.alert.get_alert("0123456789abcdef")
