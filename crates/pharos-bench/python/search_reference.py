"""The reference side of `cargo xtask bench search`: FAISS (faiss-cpu) and hnswlib on the data
files the Rust harness wrote, on the same thread count, timed the same way (wall clock around
each call from here).

The harness keeps this process running and sends it one JSON request per line on stdin; each
gets one JSON line on stdout ({"ok": ...} or {"error": "..."}); progress goes to stderr. That
lets the harness alternate its own measurements with these in short slices, so both systems see
the same machine: a VM's speed drifts by tens of percent over minutes.

Requests ("index" is one of doc_flat, flat, ivf, faiss_hnsw, hnswlib; "setting" is
{"nprobe", "rerank"} for ivf and {"ef"} for the HNSW indexes, absent for the flat ones):
  {"op": "versions"}                                     -> {"faiss": "...", "hnswlib": "..."}
  {"op": "build", "index"}                               -> seconds spent building
  {"op": "latencies", "index"}                           -> microseconds of each query, one at a time
  {"op": "recall", "index", "setting"}                   -> recall@10 of the big queries
  {"op": "qps", "index", "setting", "batch", "seconds"}  -> queries per second for about `seconds`
  {"op": "drop", "index"}                                -> null

Files in --dir: meta.json ({"doc": {"n", "d", "queries"}, "big": {"n", "d", "queries"}, "ivf",
"hnsw"}), doc_base.f32, doc_queries.f32, big_base.f32, big_queries.f32 (little-endian float32,
row-major) and big_truth_l2.u64 (the exact 10 nearest by L2 of each big query).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
import time
from pathlib import Path

import faiss
import hnswlib
import numpy as np

K = 10


def log(message: str) -> None:
    print(f"  reference: {message}", file=sys.stderr, flush=True)


def load(directory: Path, name: str, dimension: int) -> np.ndarray:
    return np.fromfile(directory / f"{name}.f32", dtype="<f4").reshape(-1, dimension)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(row[:K]) & set(expected[:K])) for row, expected in zip(found, truth))
    return hits / (len(truth) * K)


class Reference:
    """The indexes built so far and the data they are built from."""

    def __init__(self, directory: Path, threads: int) -> None:
        self.threads = threads
        self.meta = json.loads((directory / "meta.json").read_text())
        doc, big = self.meta["doc"], self.meta["big"]
        self.doc_base = load(directory, "doc_base", doc["d"])
        self.doc_queries = load(directory, "doc_queries", doc["d"])
        self.base = load(directory, "big_base", big["d"])
        self.queries = load(directory, "big_queries", big["d"])
        self.truth = (
            np.fromfile(directory / "big_truth_l2.u64", dtype="<u8").reshape(-1, K).astype(np.int64)
        )
        self.indexes: dict[str, object] = {}
        self.wrapped: dict[str, object] = {}

    def build(self, name: str) -> float:
        started = time.perf_counter()
        d = self.meta["big"]["d"]
        if name == "doc_flat":
            index = faiss.IndexFlatIP(self.meta["doc"]["d"])
            index.add(self.doc_base)
        elif name == "flat":
            index = faiss.IndexFlatIP(d)
            index.add(self.base)
        elif name == "ivf":
            quantizer = faiss.IndexFlatL2(d)
            ivf = faiss.IndexIVFPQ(quantizer, d, self.meta["ivf"]["nlist"], self.meta["ivf"]["m"], 8)
            index = faiss.IndexRefineFlat(ivf)
            index.train(self.base)
            index.add(self.base)
            # The wrapper does not own the indexes it wraps: keep them alive beside it.
            self.wrapped[name] = (ivf, quantizer)
        elif name == "faiss_hnsw":
            index = faiss.IndexHNSWFlat(d, self.meta["hnsw"]["m"])
            index.hnsw.efConstruction = self.meta["hnsw"]["ef_construction"]
            index.add(self.base)
        elif name == "hnswlib":
            index = hnswlib.Index(space="l2", dim=d)
            index.init_index(
                max_elements=len(self.base),
                ef_construction=self.meta["hnsw"]["ef_construction"],
                M=self.meta["hnsw"]["m"],
            )
            index.set_num_threads(self.threads)
            index.add_items(self.base, np.arange(len(self.base)))
        else:
            raise ValueError(f"unknown index {name!r}")
        self.indexes[name] = index
        return time.perf_counter() - started

    def searcher(self, name: str, setting: dict | None):
        """A function answering a (n, d) array of queries with (distances, labels)."""
        index = self.indexes.get(name)
        if index is None:
            raise ValueError(f"index {name!r} is not built")
        if name in ("doc_flat", "flat"):
            return lambda q: index.search(q, K)
        if name == "ivf":
            params = faiss.IndexRefineSearchParameters(
                k_factor=setting["rerank"],
                base_index_params=faiss.SearchParametersIVF(nprobe=setting["nprobe"]),
            )
            return lambda q: index.search(q, K, params=params)
        if name == "faiss_hnsw":
            params = faiss.SearchParametersHNSW(efSearch=setting["ef"])
            return lambda q: index.search(q, K, params=params)
        index.set_ef(max(setting["ef"], K))

        def search(q):
            labels, distances = index.knn_query(q, k=K)
            return distances, labels

        return search

    def latencies(self, name: str) -> list[float]:
        """Microseconds of each single-query call over the documents' queries."""
        search = self.searcher(name, None)
        latencies = []
        for query in self.doc_queries:
            query = query[None, :]
            started = time.perf_counter_ns()
            search(query)
            latencies.append((time.perf_counter_ns() - started) / 1000)
        return latencies

    def recall(self, name: str, setting: dict) -> float:
        _, found = self.searcher(name, setting)(self.queries)
        return recall(found, self.truth)

    def qps(self, name: str, setting: dict | None, batch: int, seconds: float) -> float:
        """Queries per second answering the big queries in batches of `batch` for about
        `seconds` (at least one batch)."""
        search = self.searcher(name, setting)
        queries = self.queries
        done, started = 0, time.perf_counter()
        while True:
            for start in range(0, len(queries), batch):
                part = queries[start:start + batch]
                search(part)
                done += len(part)
                if time.perf_counter() - started > seconds:
                    return done / (time.perf_counter() - started)

    def handle(self, request: dict) -> object:
        op = request["op"]
        if op == "versions":
            return {"faiss": faiss.__version__, "hnswlib": importlib.metadata.version("hnswlib")}
        if op == "build":
            log(f"building {request['index']}")
            return self.build(request["index"])
        if op == "latencies":
            return self.latencies(request["index"])
        if op == "recall":
            return self.recall(request["index"], request.get("setting"))
        if op == "qps":
            return self.qps(
                request["index"], request.get("setting"), request["batch"], request["seconds"]
            )
        if op == "drop":
            self.indexes.pop(request["index"], None)
            self.wrapped.pop(request["index"], None)
            return None
        raise ValueError(f"unknown op {op!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    reference = Reference(args.dir, args.threads)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            reply = {"ok": reference.handle(json.loads(line))}
        except Exception as error:  # reported to the harness, which stops the run
            reply = {"error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
