"""The search service from a Python grpcio client: create indexes, upsert vectors with payloads,
search them exactly, with filters, in batches and across indexes, train IVF_PQ with streamed
progress, and the statuses of bad input; the answers are checked against a brute-force search
written here in plain Python."""

from __future__ import annotations

import random

import grpc
import pytest
from test_config import field_violations as _violations

DIMENSION = 8


def _vectors(count: int, seed: int) -> list[list[float]]:
    """`count` points around 10 fixed centres, so queries come from the same distribution."""
    centres_rng, rng = random.Random(1000), random.Random(seed)
    centres = [[centres_rng.uniform(-1, 1) for _ in range(DIMENSION)] for _ in range(10)]
    return [[c + rng.uniform(-0.2, 0.2) for c in centres[rng.randrange(10)]] for _ in range(count)]


def _l2(a, b) -> float:
    return sum((x - y) ** 2 for x, y in zip(a, b))


def _exact(base, query, k, keep=lambda i: True) -> list[int]:
    scored = sorted((_l2(v, query), i) for i, v in enumerate(base) if keep(i))
    return [i for _, i in scored[:k]]


def _create(pb, search, name, kind=None, **params):
    kind = kind if kind is not None else pb.search.INDEX_KIND_FLAT
    request = pb.search.CreateIndexRequest(name=name, dimension=DIMENSION, metric=pb.search.METRIC_L2, kind=kind)
    if params:
        request.ivf_pq.CopyFrom(pb.search.IvfPqParams(**params))
    return search.CreateIndex(request).index


def _upsert(pb, search, name, base, payload=lambda i: {}):
    for start in range(0, len(base), 500):
        vectors = [
            pb.search.Vector(id=i, values=base[i], payload=payload(i))
            for i in range(start, min(start + 500, len(base)))
        ]
        search.Upsert(pb.search.UpsertRequest(index=name, vectors=vectors))


def test_flat_search_filters_batches_and_payloads(pb, search):
    base = _vectors(1500, 1)
    info = _create(pb, search, "py-flat")
    assert (info.name, info.dimension, info.count) == ("py-flat", DIMENSION, 0)
    _upsert(pb, search, "py-flat", base, lambda i: {"parity": "even" if i % 2 == 0 else "odd", "n": str(i)})
    queries = _vectors(10, 2)
    for query in queries:
        hits = search.Search(pb.search.SearchRequest(index="py-flat", vector=query, k=5)).hits
        assert [h.id for h in hits] == _exact(base, query, 5)
        assert all(h.payload["n"] == str(h.id) for h in hits)
        assert hits[0].score == pytest.approx(_l2(base[hits[0].id], query), rel=1e-4, abs=1e-5)

        odd = pb.search.Filter(conditions=[pb.search.Condition(key="parity", values=["odd"])])
        hits = search.Search(pb.search.SearchRequest(index="py-flat", vector=query, k=5, filter=odd)).hits
        assert [h.id for h in hits] == _exact(base, query, 5, lambda i: i % 2 == 1)

    batch = search.BatchSearch(pb.search.BatchSearchRequest(
        index="py-flat", queries=[pb.search.Query(vector=q) for q in queries], k=3))
    assert [[h.id for h in r.hits] for r in batch.results] == [_exact(base, q, 3) for q in queries]

    _create(pb, search, "py-small")
    _upsert(pb, search, "py-small", base[:100])
    multi = search.MultiIndexSearch(pb.search.MultiIndexSearchRequest(
        indexes=["py-small", "py-flat"], vector=queries[0], k=2))
    assert [r.index for r in multi.results] == ["py-small", "py-flat"]
    assert [h.id for h in multi.results[0].hits] == _exact(base[:100], queries[0], 2)

    deleted = search.Delete(pb.search.DeleteRequest(index="py-flat", ids=list(range(0, 1500, 3))))
    assert deleted.deleted == 500
    hits = search.Search(pb.search.SearchRequest(index="py-flat", vector=queries[0], k=10)).hits
    assert [h.id for h in hits] == _exact(base, queries[0], 10, lambda i: i % 3 != 0)

    described = search.DescribeIndex(pb.search.DescribeIndexRequest(name="py-flat"))
    assert described.index.count == 1000
    assert described.latency.searches >= 21
    assert described.latency.grade in {"A", "B", "C", "D", "F"}
    names = [i.name for i in search.ListIndexes(pb.search.ListIndexesRequest()).indexes]
    assert {"py-flat", "py-small"} <= set(names)


def test_ivf_pq_trains_with_progress_and_finds_neighbours(pb, search):
    # Below the automatic training threshold (2,560 vectors here), so Train does it.
    base = _vectors(2000, 3)
    info = _create(pb, search, "py-ivf", kind=pb.search.INDEX_KIND_IVF_PQ, nlist=8, m=4)
    assert not info.trained
    _upsert(pb, search, "py-ivf", base)
    steps = list(search.Train(pb.search.TrainRequest(name="py-ivf"), timeout=120))
    assert steps[0].progress.stage.startswith("coarse quantizer")
    assert steps[-1].progress.finished
    described = search.DescribeIndex(pb.search.DescribeIndexRequest(name="py-ivf"))
    assert described.index.trained and described.index.count == 2000
    steps = list(search.Rebuild(pb.search.RebuildRequest(name="py-ivf"), timeout=120))
    assert [s.progress.stage for s in steps[-2:]] == ["encoding every vector", "trained"]
    found = 0
    queries = _vectors(20, 4)
    for query in queries:
        hits = search.Search(pb.search.SearchRequest(index="py-ivf", vector=query, k=10, nprobe=8, rerank=10)).hits
        found += len({h.id for h in hits} & set(_exact(base, query, 10)))
    assert found / (10 * len(queries)) >= 0.9


def test_hnsw_finds_neighbours_and_honours_filters(pb, search):
    base = _vectors(3000, 5)
    request = pb.search.CreateIndexRequest(
        name="py-hnsw", dimension=DIMENSION, metric=pb.search.METRIC_L2, kind=pb.search.INDEX_KIND_HNSW,
        hnsw=pb.search.HnswParams(m=12, ef_construction=100))
    info = search.CreateIndex(request).index
    assert info.trained and info.hnsw.m == 12
    _upsert(pb, search, "py-hnsw", base, lambda i: {"bucket": str(i % 5)})
    queries = _vectors(20, 6)
    found = 0
    for query in queries:
        hits = search.Search(pb.search.SearchRequest(index="py-hnsw", vector=query, k=10, ef_search=64)).hits
        found += len({h.id for h in hits} & set(_exact(base, query, 10)))
        bucket = pb.search.Filter(conditions=[pb.search.Condition(key="bucket", values=["3"])])
        hits = search.Search(pb.search.SearchRequest(index="py-hnsw", vector=query, k=5, filter=bucket)).hits
        assert len(hits) == 5 and all(h.id % 5 == 3 for h in hits)
    assert found / (10 * len(queries)) >= 0.95


def test_bad_input_gets_clear_statuses(pb, search):
    _create(pb, search, "py-bad")
    with pytest.raises(grpc.RpcError) as caught:
        search.Upsert(pb.search.UpsertRequest(index="py-bad", vectors=[pb.search.Vector(id=1, values=[1.0, 2.0])]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, reason)] = _violations(caught.value)
    assert field == "vectors[0].values"
    assert "has 2 values" in reason and f"dimension {DIMENSION}" in reason

    with pytest.raises(grpc.RpcError) as caught:
        search.Upsert(pb.search.UpsertRequest(
            index="py-bad", vectors=[pb.search.Vector(id=1, values=[float("nan")] + [0.0] * (DIMENSION - 1))]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a finite number" in _violations(caught.value)[0][1]

    with pytest.raises(grpc.RpcError) as caught:
        search.Search(pb.search.SearchRequest(index="py-missing", vector=[0.0] * DIMENSION))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND

    with pytest.raises(grpc.RpcError) as caught:
        _create(pb, search, "py-bad")
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS

    with pytest.raises(grpc.RpcError) as caught:
        search.Search(pb.search.SearchRequest(index="py-bad", vector=[0.0] * DIMENSION, k=5000))
    assert _violations(caught.value)[0][0] == "k"
