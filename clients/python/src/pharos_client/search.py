"""The search service with numpy: vectors in as (n, d) float32 arrays, hits out as
(q, k) arrays of ids and scores (FAISS-style: missing hits are id -1, score NaN)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

import grpc
import numpy as np
import numpy.typing as npt

from ._channel import call, stream
from ._proto.pharos.search.v1 import search_pb2 as pb
from ._proto.pharos.search.v1 import search_pb2_grpc as pb_grpc

__all__ = ["IndexInfo", "SearchClient", "SearchResult"]

MetricName = Literal["l2", "inner_product", "cosine"]
KindName = Literal["flat", "ivf_pq", "hnsw"]
FilterSpec = Mapping[str, Union[str, Sequence[str]]]

MAX_UPSERT = 10_000
MAX_BATCH_QUERIES = 1_024
MAX_DELETE = 100_000

_METRICS: dict[str, int] = {
    "l2": pb.METRIC_L2,
    "inner_product": pb.METRIC_INNER_PRODUCT,
    "ip": pb.METRIC_INNER_PRODUCT,
    "cosine": pb.METRIC_COSINE,
}
_KINDS: dict[str, int] = {
    "flat": pb.INDEX_KIND_FLAT,
    "ivf_pq": pb.INDEX_KIND_IVF_PQ,
    "hnsw": pb.INDEX_KIND_HNSW,
}


@dataclass(frozen=True)
class IndexInfo:
    name: str
    dimension: int
    metric: str
    kind: str
    count: int
    trained: bool
    params: dict[str, int]

    @classmethod
    def from_pb(cls, info: pb.IndexInfo) -> IndexInfo:
        which = info.WhichOneof("params")
        params: dict[str, int] = {}
        if which is not None:
            sub = getattr(info, which)
            params = {f.name: int(v) for f, v in sub.ListFields()}
        return cls(
            name=info.name,
            dimension=info.dimension,
            metric=pb.Metric.Name(info.metric).removeprefix("METRIC_").lower(),
            kind=pb.IndexKind.Name(info.kind).removeprefix("INDEX_KIND_").lower(),
            count=int(info.count),
            trained=info.trained,
            params=params,
        )


@dataclass(frozen=True)
class SearchResult:
    """`ids` (int64) and `scores` (float32), shape (q, k) — or (k,) for a single 1-D
    query; a query with fewer than k hits is padded with id -1 and score NaN.
    `payloads[i][j]` is the payload of hit j of query i (a list for a 1-D query)."""

    ids: npt.NDArray[np.int64]
    scores: npt.NDArray[np.float32]
    payloads: list[Any]


def _matrix(vectors: npt.ArrayLike, name: str) -> npt.NDArray[np.float32]:
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d), not {array.shape}")
    return array


def _filter(spec: FilterSpec | None) -> pb.Filter | None:
    if not spec:
        return None
    conditions = []
    for key, values in spec.items():
        listed = [values] if isinstance(values, str) else list(values)
        conditions.append(pb.Condition(key=key, values=listed))
    return pb.Filter(conditions=conditions)


def _chunks(total: int, size: int) -> Iterator[slice]:
    for start in range(0, total, size):
        yield slice(start, min(total, start + size))


class SearchClient:
    """The SearchService: `client.search`."""

    def __init__(self, channel: grpc.Channel, *, timeout: float | None = None) -> None:
        self._stub: Any = pb_grpc.SearchServiceStub(channel)
        self._timeout = timeout

    @property
    def stub(self) -> Any:
        return self._stub

    def create_index(
        self,
        name: str,
        dimension: int,
        *,
        metric: MetricName | str = "l2",
        kind: KindName | str = "flat",
        nlist: int = 0,
        m: int = 0,
        nbits: int = 0,
        ef_construction: int = 0,
    ) -> IndexInfo:
        """Creates an empty index; AlreadyExistsError if there is one of that name.
        `nlist`/`m`/`nbits` are IVF_PQ parameters, `m`/`ef_construction` HNSW ones
        (0: the server's defaults)."""
        request = pb.CreateIndexRequest(
            name=name,
            dimension=dimension,
            metric=_METRICS[metric],  # type: ignore[arg-type]
            kind=_KINDS[kind],  # type: ignore[arg-type]
        )
        if kind == "ivf_pq":
            request.ivf_pq.CopyFrom(pb.IvfPqParams(nlist=nlist, m=m, nbits=nbits))
        elif kind == "hnsw":
            request.hnsw.CopyFrom(pb.HnswParams(m=m, ef_construction=ef_construction))
        return IndexInfo.from_pb(call(self._stub.CreateIndex, request, timeout=self._timeout).index)

    def drop_index(self, name: str) -> None:
        call(self._stub.DropIndex, pb.DropIndexRequest(name=name), timeout=self._timeout)

    def list_indexes(self) -> list[IndexInfo]:
        response = call(self._stub.ListIndexes, pb.ListIndexesRequest(), timeout=self._timeout)
        return [IndexInfo.from_pb(info) for info in response.indexes]

    def describe_index(self, name: str) -> dict[str, Any]:
        """The index, its memory, latency and the server's recommendations."""
        r = call(self._stub.DescribeIndex, pb.DescribeIndexRequest(name=name), timeout=self._timeout)
        return {
            "index": IndexInfo.from_pb(r.index),
            "memory_bytes": int(r.memory_bytes),
            "latency": {
                "searches": int(r.latency.searches),
                "p50_us": r.latency.p50_us,
                "p95_us": r.latency.p95_us,
                "p99_us": r.latency.p99_us,
                "grade": r.latency.grade,
            },
            "recommendations": list(r.recommendations),
            "applied_revision": int(r.applied_revision),
        }

    def upsert(
        self,
        index: str,
        ids: npt.ArrayLike,
        vectors: npt.ArrayLike,
        payloads: Sequence[Mapping[str, str] | None] | None = None,
        *,
        batch_size: int = MAX_UPSERT,
    ) -> int:
        """Writes `vectors` (shape (n, d), converted to float32) under `ids` (n
        non-negative integers), with optional payloads (n mappings or None), in requests of
        at most `batch_size` vectors. Returns how many were written."""
        matrix = _matrix(vectors, "vectors")
        id_array = np.asarray(ids).reshape(-1)
        if id_array.shape[0] != matrix.shape[0]:
            raise ValueError(f"{id_array.shape[0]} ids for {matrix.shape[0]} vectors")
        if id_array.size and (not np.issubdtype(id_array.dtype, np.integer) or id_array.min() < 0):
            raise ValueError("ids must be non-negative integers")
        if payloads is not None and len(payloads) != matrix.shape[0]:
            raise ValueError(f"{len(payloads)} payloads for {matrix.shape[0]} vectors")
        written = 0
        for part in _chunks(matrix.shape[0], max(1, min(batch_size, MAX_UPSERT))):
            request = pb.UpsertRequest(index=index)
            rows = matrix[part]
            for offset, row in enumerate(rows):
                vector = request.vectors.add(id=int(id_array[part.start + offset]))
                vector.values.extend(row.tolist())
                if payloads is not None:
                    payload = payloads[part.start + offset]
                    if payload:
                        vector.payload.update(payload)
            response = call(self._stub.Upsert, request, timeout=self._timeout)
            written += int(response.upserted)
        return written

    def delete(self, index: str, ids: npt.ArrayLike) -> int:
        """Removes vectors by id; returns how many were in the index."""
        id_list = [int(i) for i in np.asarray(ids).reshape(-1)]
        deleted = 0
        for part in _chunks(len(id_list), MAX_DELETE):
            request = pb.DeleteRequest(index=index, ids=id_list[part])
            deleted += int(call(self._stub.Delete, request, timeout=self._timeout).deleted)
        return deleted

    def search(
        self,
        index: str,
        queries: npt.ArrayLike,
        k: int = 10,
        *,
        filter: FilterSpec | None = None,
        nprobe: int = 0,
        ef_search: int = 0,
        rerank: int = 0,
    ) -> SearchResult:
        """The k nearest vectors to each query: `queries` is (q, d) or a single (d,)
        vector. `filter` maps payload keys to a value or a list of accepted values."""
        array = np.asarray(queries, dtype=np.float32)
        single = array.ndim == 1
        matrix = array.reshape(1, -1) if single else _matrix(array, "queries")
        q = matrix.shape[0]
        ids = np.full((q, k), -1, dtype=np.int64)
        scores = np.full((q, k), np.nan, dtype=np.float32)
        payloads: list[list[dict[str, str]]] = []
        payload_filter = _filter(filter)
        for part in _chunks(q, MAX_BATCH_QUERIES):
            request = pb.BatchSearchRequest(
                index=index,
                queries=[pb.Query(vector=row.tolist()) for row in matrix[part]],
                k=k,
                nprobe=nprobe,
                ef_search=ef_search,
                rerank=rerank,
            )
            if payload_filter is not None:
                request.filter.CopyFrom(payload_filter)
            response = call(self._stub.BatchSearch, request, timeout=self._timeout)
            for offset, hits in enumerate(response.results):
                row = part.start + offset
                found = hits.hits[:k]
                ids[row, : len(found)] = [h.id for h in found]
                scores[row, : len(found)] = [h.score for h in found]
                payloads.append([dict(h.payload) for h in found])
        if single:
            return SearchResult(ids[0], scores[0], payloads[0])
        return SearchResult(ids, scores, payloads)

    def train(self, name: str) -> Iterator[dict[str, Any]]:
        """Trains an IVF_PQ index, yielding progress dicts; the last has finished=True."""
        for response in stream(self._stub.Train, pb.TrainRequest(name=name)):
            p = response.progress
            yield {"stage": p.stage, "done": int(p.done), "total": int(p.total), "finished": p.finished}
