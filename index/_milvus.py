"""The vector-store interface on Milvus: a server (``milvus://host:19530``) or the embedded
milvus-lite (``/path/x.db``, ``milvus-lite:///abs/path.db``), through pymilvus' ``MilvusClient``.

Generations: a FAISS store is copied on write into each index generation; a Milvus collection
lives outside the generation folder and changes in place. So a full build (``new_vector_store``)
makes a new collection ``cpc_<label>_<random>``, which the serving generation does not see until
the new generation is published; incremental upserts and deletes go into the current generation's
collection at once (the serving engine ignores vectors of records it does not hold yet, and an
upsert is idempotent, so a write that fails after Milvus changed is repaired by the next sync).
A generation folder holds only ``<name>.json`` (url, collection, dim). Collections no generation
refers to any more are dropped when old generations are pruned (``drop_collections``).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Sequence
from urllib.parse import urlsplit

import numpy as np

from ._vectors import (
    FILTER_COLUMNS, LITE_ONE_PROCESS, Columns, VectorFilter, VectorStoreUnavailable, _as_values, check_batch, check_filter,
)

VALUE_CHARS_MAX = 1024  # a filter value (an id, a folded place name) longer than this is refused on upsert
SECTORS_MAX = 256
BATCH = 1000  # rows per insert call: Milvus caps a request's size
CONNECT_TIMEOUT = 10.0  # seconds to reach a server before saying it does not answer
_clients: dict[str, object] = {}
_clients_lock = threading.Lock()


def client_target(url: str) -> tuple[str, str | None]:
    """(what ``MilvusClient`` takes as uri, token) for a CPC_VECTOR_URL."""
    if url.startswith("milvus-lite://"):
        return url.removeprefix("milvus-lite://"), None
    if url.endswith(".db") and "://" not in url:
        return str(Path(url).resolve()), None
    parts = urlsplit(url)
    if parts.scheme in ("milvus", "http", "https"):
        scheme = "https" if parts.scheme == "https" else "http"
        token = f"{parts.username}:{parts.password or ''}" if parts.username else None
        return f"{scheme}://{parts.hostname}:{parts.port or 19530}", token
    raise ValueError(f"vector store URL '{url}' is neither milvus://host:port nor a milvus-lite .db path")


def _client(url: str):
    """One client per target: milvus-lite starts its engine once per file (a few seconds)."""
    from pymilvus import MilvusClient

    uri, token = client_target(url)
    with _clients_lock:
        client = _clients.get(uri)
        if client is None:
            if "://" not in uri:
                Path(uri).parent.mkdir(parents=True, exist_ok=True)
            try:
                client = MilvusClient(uri, token=token, timeout=CONNECT_TIMEOUT) if token else MilvusClient(uri, timeout=CONNECT_TIMEOUT)
            except Exception as exc:  # noqa: BLE001 - pymilvus raises its own kinds for "cannot open"
                if "://" not in uri:
                    raise VectorStoreUnavailable(f"cannot open the milvus-lite file {uri} ({exc}); if another"
                                                 f" process has it open: {LITE_ONE_PROCESS}") from exc
                raise VectorStoreUnavailable(f"the Milvus server at {uri} does not answer ({exc})") from exc
            _clients[uri] = client
        return client


def literal(value: str) -> str:
    """``value`` as a Milvus string literal: double-quoted, with quotes, backslashes and control
    characters escaped (JSON's escapes are a subset of what the expression parser reads), so a
    value can never close the string and add to the expression."""
    return json.dumps(str(value), ensure_ascii=False)


def expression(filter: VectorFilter | None) -> str:
    """A ``VectorFilter`` as a Milvus boolean expression ("" for no filter)."""
    check_filter(filter)
    if filter is None:
        return ""
    parts = []
    for negate, clauses in ((False, filter.include), (True, filter.exclude)):
        for col, values in clauses:
            if not values:
                continue
            values = [v for v in values if v]
            if not values:  # only empty values: matches no vector (every stored value is non-empty)
                parts.append("false" if not negate else "true")
                continue
            listed = "[" + ", ".join(literal(v) for v in values) + "]"
            clause = f"ARRAY_CONTAINS_ANY(sector, {listed})" if col == "sector" else f"{col} in {listed}"
            parts.append(f"not ({clause})" if negate else clause)
    parts = [p for p in parts if p != "true"]
    if "false" in parts:
        return "id < 0"
    return " and ".join(parts)


class MilvusVectorStore:
    """``VectorStore`` on one Milvus collection: int64 primary ``id``, float ``vector`` (inner
    product), the filter columns as VARCHAR scalars ("" for none) and ``sector`` as ARRAY<VARCHAR>."""

    kind = "milvus"

    def __init__(self, url: str, collection: str, dim: int):
        self.url, self.collection, self.dim = url, collection, dim
        self.client = _client(url)

    @classmethod
    def create(cls, url: str, dim: int, collection: str) -> "MilvusVectorStore":
        from pymilvus import DataType

        store = cls(url, collection, dim)
        client = store.client
        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        for col in FILTER_COLUMNS:
            if col == "sector":
                schema.add_field(col, DataType.ARRAY, element_type=DataType.VARCHAR,
                                 max_capacity=SECTORS_MAX, max_length=VALUE_CHARS_MAX)
            else:
                schema.add_field(col, DataType.VARCHAR, max_length=VALUE_CHARS_MAX)
        index = client.prepare_index_params()
        index.add_index(field_name="vector", index_type="AUTOINDEX", metric_type="IP")
        client.create_collection(collection, schema=schema, index_params=index, consistency_level="Strong")
        return store

    @classmethod
    def connect(cls, url: str, collection: str, dim: int) -> "MilvusVectorStore":
        store = cls(url, collection, dim)
        if not store.client.has_collection(collection):
            raise LookupError(f"the index refers to Milvus collection '{collection}', which {url} does not hold:"
                              " rebuild it with `cpc index build`")
        store.client.load_collection(collection)
        return store

    def __len__(self) -> int:
        return self.count()

    def count(self, filter: VectorFilter | None = None) -> int:
        rows = self.client.query(self.collection, filter=expression(filter), output_fields=["count(*)"])
        return int(rows[0]["count(*)"])

    def upsert(self, ids: np.ndarray, vectors: np.ndarray, columns: Sequence[Columns]) -> None:
        ids, vectors = check_batch(self.dim, ids, vectors, columns)
        rows = []
        for vid, vec, cols in zip(ids.tolist(), vectors, columns):
            row: dict = {"id": vid, "vector": vec.tolist()}
            for col in FILTER_COLUMNS:
                values = _as_values(cols.get(col))
                if any(len(v) > VALUE_CHARS_MAX for v in values) or len(values) > SECTORS_MAX:
                    raise ValueError(f"vector {vid}: column '{col}' is longer than Milvus holds")
                row[col] = list(dict.fromkeys(values)) if col == "sector" else (values[0] if values else "")
            rows.append(row)
        for start in range(0, len(rows), BATCH):
            self.client.upsert(self.collection, rows[start : start + BATCH])

    def _present(self, ids: Sequence[int]) -> list[int]:
        found: list[int] = []
        for start in range(0, len(ids), BATCH):
            found += [int(r["id"]) for r in self.client.get(self.collection, ids=list(ids[start : start + BATCH]),
                                                            output_fields=["id"])]
        return found

    def delete(self, ids: np.ndarray) -> int:
        ids = sorted(set(np.asarray(ids, np.int64).reshape(-1).tolist()))
        present = self._present(ids)  # Milvus answers a delete with the ids asked, not those removed
        for start in range(0, len(present), BATCH):
            self.client.delete(self.collection, ids=present[start : start + BATCH])
        return len(present)

    def search(self, query: np.ndarray, k: int, filter: VectorFilter | None = None) -> tuple[np.ndarray, np.ndarray]:
        q = np.asarray(query, np.float32).reshape(-1)
        if len(q) != self.dim:
            raise ValueError(f"query must have {self.dim} dimensions, got {len(q)}")
        if k <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        hits = self.client.search(self.collection, data=[q.tolist()], limit=min(k, 16_384), filter=expression(filter),
                                  output_fields=["id"], search_params={"metric_type": "IP"})[0]
        return (np.array([h["distance"] for h in hits], np.float32), np.array([h["id"] for h in hits], np.int64))

    def _get(self, ids: list[int]) -> dict[int, list[float]]:
        got: dict[int, list[float]] = {}
        unique = sorted(set(ids))
        for start in range(0, len(unique), BATCH):
            for row in self.client.get(self.collection, ids=unique[start : start + BATCH], output_fields=["vector"]):
                got[int(row["id"])] = row["vector"]
        return got

    def fetch(self, ids: Sequence[int]) -> np.ndarray:
        ids = [int(i) for i in ids]
        got = self._get(ids)
        missing = [i for i in ids if i not in got]
        if missing:
            raise KeyError(f"unknown vector id {missing[0]}")
        return np.array([got[i] for i in ids], np.float32).reshape(len(ids), self.dim)

    def fetch_known(self, ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        ids = [int(i) for i in ids]
        got = self._get(ids)
        held = np.array([i in got for i in ids], bool)
        out = np.zeros((len(ids), self.dim), np.float32)
        for j, i in enumerate(ids):
            if i in got:
                out[j] = got[i]
        return held, out

    def ping(self, timeout: float) -> None:
        """Raise unless the server answers about this collection within ``timeout`` seconds."""
        if not self.client.has_collection(self.collection, timeout=timeout):
            raise LookupError(f"Milvus at {self.url} no longer holds collection '{self.collection}'")

    def save(self, folder: Path, name: str) -> None:
        """Only a reference: the vectors stay in the collection (see the module's docstring)."""
        ref = {"backend": "milvus", "url": self.url, "collection": self.collection, "dim": self.dim}
        (Path(folder) / f"{name}.json").write_text(json.dumps(ref), encoding="utf-8")

    def drop(self) -> None:
        self.client.drop_collection(self.collection)


def referenced_collections(folder: Path) -> set[tuple[str, str]]:
    """(url, collection) of every Milvus store a generation folder refers to."""
    out = set()
    for path in Path(folder).glob("*.json"):
        try:
            ref = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(ref, dict) and ref.get("backend") == "milvus":
            out.add((ref["url"], ref["collection"]))
    return out


def drop_collections(refs: set[tuple[str, str]]) -> None:
    """Drop collections no generation refers to any more (after old generations are pruned)."""
    for url, collection in sorted(refs):
        client = _client(url)
        if client.has_collection(collection):
            client.drop_collection(collection)
