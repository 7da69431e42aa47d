"""Load an evaluation dataset (native or BEIR layout) with errors that name file, line and field.

Native layout (a folder)::

    corpus.jsonl   organisation records in the project schema (corpus.Organisation)
    queries.jsonl  {"id", "text", "lang"?, "split"?: "tune"|"test"} per line
    qrels.tsv      header ``query_id<TAB>doc_id<TAB>grade``; grade 2 = what is sought,
                   1 = partially relevant, absent = 0
    chats.jsonl    optional; not read here, only located (see ``eval._run.run_chats``)

BEIR layout: ``corpus.jsonl`` with ``_id``/``title``/``text`` (+ ``metadata``),
``queries.jsonl`` with ``_id``/``text``, ``qrels/test.tsv`` with header
``query-id<TAB>corpus-id<TAB>score``. BEIR documents become Organisation records so the
very same engine indexes them; BEIR judgements are binary by convention, so there any
score >= 1 counts as "sought" (``Dataset.sought == 1``), which keeps Recall and MRR
comparable with published BEIR figures.

Everything is validated before any embedding starts: a typo in line 900 of the qrels
should not cost a ten-minute encoding run.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator

from pydantic import ValidationError

from corpus import KINDS, CorpusError, Organisation, RecordError, detect_lang, jsonl_lines, load_records

SPLITS = ("tune", "test")
NATIVE_HEADER = ("query_id", "doc_id", "grade")
BEIR_HEADER = ("query-id", "corpus-id", "score")
MAX_GRADE = 2
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")
_LANG = re.compile(r"^[a-z]{2}$")
_NAME_WORDS = 8  # a BEIR doc without a title is named after its first words


class DatasetError(CorpusError):
    """Invalid evaluation data. ``file``, ``line`` (0 = the file as a whole) and ``field`` say where.

    A CorpusError subclass, so every caller that already reports corpus errors reports these.
    """

    def __init__(self, file: str | Path, line: int, field: str, message: str, more: list[RecordError] | None = None):
        self.file, self.line, self.field, self.message = str(file), line, field, message
        self.errors = [RecordError(self.file, line, field, message)] + list(more or [])
        where = f"{self.file}:{line}: {field}" if line else f"{self.file}" + (f": {field}" if field != "-" else "")
        extra = f" (and {len(self.errors) - 1} more problem(s))" if len(self.errors) > 1 else ""
        ValueError.__init__(self, f"{where}: {message}{extra}")


@dataclass(frozen=True)
class Query:
    id: str
    text: str
    lang: str
    split: str | None = None
    line: int = 0
    answerable: bool = True  # "type": "ooc" marks a question nothing in the corpus fits
    styles: tuple[str, ...] = ()  # "style": how it is written ("keywords", "typo", "traditional", ...)
    type: str | None = None  # "type": "needs", "general" or "ooc"


@dataclass
class Dataset:
    """What an evaluation run needs; doc ids inside are the records' (slug) ids."""

    root: Path
    layout: str  # "native" or "beir"
    records: list[Organisation]
    queries: dict[str, Query]
    qrels: dict[str, dict[str, int]]  # query id -> doc id -> grade (> 0 only)
    sought: int = MAX_GRADE  # the grade that means "what is sought" (recall, MRR, language pairs)
    source_ids: dict[str, str] = field(default_factory=dict)  # record id -> id in the files, when they differ
    chats_path: Path | None = None
    split: str = "all"

    @property
    def by_id(self) -> dict[str, Organisation]:
        return {r.id: r for r in self.records}

    def source_id(self, doc_id: str) -> str:
        """The document id as written in the dataset files (BEIR ids may not be slugs)."""
        return self.source_ids.get(doc_id, doc_id)

    def select(self, split: str = "all", limit: int | None = None) -> "Dataset":
        """The same dataset restricted to one split ("tune", "test" or "all") and/or the first ``limit`` queries."""
        if split not in ("all",) + SPLITS:
            raise ValueError(f"split must be one of all, {', '.join(SPLITS)}")
        queries = {qid: q for qid, q in self.queries.items() if split == "all" or q.split == split}
        if not queries:
            raise DatasetError(self.root / "queries.jsonl", 0, "split", f"no query has \"split\": \"{split}\"")
        if limit is not None:
            queries = dict(list(queries.items())[: max(0, limit)])
        qrels = {qid: j for qid, j in self.qrels.items() if qid in queries}
        return replace(self, queries=queries, qrels=qrels, split=split)

    def info(self) -> dict[str, Any]:
        return {
            "path": str(self.root),
            "layout": self.layout,
            "records": len(self.records),
            "queries": len(self.queries),
            "judgements": sum(len(j) for j in self.qrels.values()),
            "split": self.split,
            "sought_grade": self.sought,
        }


# -- low-level readers ----------------------------------------------------------------
def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise DatasetError(path, 0, "-", "file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(path, raw[: exc.start].count(b"\n") + 1, "-", "not valid UTF-8") from None
    return jsonl_lines(text)


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    for lineno, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(path, lineno, "-", f"not valid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise DatasetError(path, lineno, "-", "a line must hold one JSON object")
        yield lineno, obj


def _string(path: Path, lineno: int, obj: dict[str, Any], key: str, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise DatasetError(path, lineno, key, "missing")
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise DatasetError(path, lineno, key, f"must be a string, found {type(value).__name__}")
    value = str(value).strip()
    if required and not value:
        raise DatasetError(path, lineno, key, "must not be empty")
    return value or None


# -- queries ------------------------------------------------------------------------
QUERY_TYPES = ("needs", "general", "ooc")


def _load_queries(path: Path, id_key: str) -> dict[str, Query]:
    queries: dict[str, Query] = {}
    for lineno, obj in _jsonl(path):
        qid = _string(path, lineno, obj, id_key)
        text = _string(path, lineno, obj, "text")
        assert qid is not None and text is not None
        if qid in queries:
            raise DatasetError(path, lineno, id_key, f"duplicate query id '{qid}' (first on line {queries[qid].line})")
        lang = _string(path, lineno, obj, "lang", required=False)
        if lang is not None:
            lang = lang.lower()
            if not _LANG.match(lang):
                raise DatasetError(path, lineno, "lang", f"'{lang}' is not an ISO 639-1 code such as pt, zh or en")
        split = _string(path, lineno, obj, "split", required=False)
        if split is not None and split not in SPLITS:
            raise DatasetError(path, lineno, "split", f"must be one of {', '.join(SPLITS)}, found '{split}'")
        kind = _string(path, lineno, obj, "type", required=False)
        if kind is not None and kind not in QUERY_TYPES:
            raise DatasetError(path, lineno, "type", f"must be one of {', '.join(QUERY_TYPES)}, found '{kind}'")
        styles = obj.get("style", [])
        if isinstance(styles, str):
            styles = [styles]
        if not isinstance(styles, list) or not all(isinstance(t, str) and t.strip() for t in styles):
            raise DatasetError(path, lineno, "style", "must be a list of non-empty strings (style tags)")
        queries[qid] = Query(qid, text, lang or detect_lang(text, default="en") or "en", split, lineno, kind != "ooc",
                             tuple(dict.fromkeys(t.strip() for t in styles)), kind)
    if not queries:
        raise DatasetError(path, 0, "-", "no queries")
    return queries


# -- qrels --------------------------------------------------------------------------
def _load_qrels(
    path: Path, header: tuple[str, ...], queries: dict[str, Query], doc_ids: dict[str, str], max_grade: int | None
) -> dict[str, dict[str, int]]:
    """``doc_ids`` maps ids as written in the files to record ids."""
    lines = _read_lines(path)
    if not lines or not lines[0].strip():
        raise DatasetError(path, 1, "header", f"missing header line '{chr(9).join(header)}' (tab-separated)")
    found = tuple(c.strip() for c in lines[0].rstrip("\r").split("\t"))
    if found != header:
        raise DatasetError(path, 1, "header", f"expected '{'<TAB>'.join(header)}', found '{lines[0].replace(chr(9), '<TAB>')}'")
    q_key, d_key, g_key = header
    qrels: dict[str, dict[str, int]] = {}
    seen: dict[tuple[str, str], int] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.rstrip("\r").split("\t")
        if len(cells) != 3:
            raise DatasetError(path, lineno, "-", f"expected 3 tab-separated fields ({', '.join(header)}), found {len(cells)}")
        qid, did, grade_s = (c.strip() for c in cells)
        if qid not in queries:
            raise DatasetError(path, lineno, q_key, f"unknown query '{qid}' (not in queries.jsonl)")
        if did not in doc_ids:
            raise DatasetError(path, lineno, d_key, f"unknown document '{did}' (not in corpus.jsonl)")
        try:
            grade = int(grade_s)
        except ValueError:
            grade = -1
        if grade < 0 or (max_grade is not None and grade > max_grade):
            allowed = f"an integer 0-{max_grade}" if max_grade is not None else "a non-negative integer"
            raise DatasetError(path, lineno, g_key, f"must be {allowed}, found '{grade_s}'")
        if (qid, did) in seen:
            raise DatasetError(path, lineno, d_key, f"duplicate judgement for query '{qid}' and document '{did}' (first on line {seen[qid, did]})")
        seen[qid, did] = lineno
        if grade > 0:
            qrels.setdefault(qid, {})[doc_ids[did]] = grade
    return qrels


# -- corpus -------------------------------------------------------------------------
def _load_native_corpus(path: Path) -> list[Organisation]:
    if not path.is_file():
        raise DatasetError(path, 0, "-", "file not found")
    try:
        return load_records(path).records
    except DatasetError:
        raise
    except CorpusError as exc:
        first, *rest = exc.errors
        raise DatasetError(first.file, first.line, first.field, first.message, rest) from None


def _slugify(source_id: str, taken: set[str]) -> str:
    if _SLUG.match(source_id) and source_id not in taken:
        return source_id
    base = re.sub(r"[^a-z0-9]+", "-", source_id.lower()).strip("-")[:80].strip("-") or "doc"
    slug = f"{base}-{hashlib.sha1(source_id.encode('utf-8')).hexdigest()[:8]}"
    n = 1
    while slug in taken:
        slug, n = f"{base}-{hashlib.sha1(f'{source_id}#{n}'.encode('utf-8')).hexdigest()[:8]}", n + 1
    return slug


_BEIR_FIELD = {"name": "title", "description": "text", "kind": "metadata.kind", "country": "metadata.country",
               "lang": "metadata.lang", "city": "metadata.city", "region": "metadata.region", "sectors": "metadata.sectors"}


def _beir_record(path: Path, lineno: int, obj: dict[str, Any], slug: str) -> Organisation:
    """A BEIR document as an Organisation. Country comes from metadata when it is an ISO code;
    otherwise it stays "" (the schema demands one, so the record is validated with a
    placeholder and the placeholder removed: passage_text and the engine accept "")."""
    title = _string(path, lineno, obj, "title", required=False) or ""
    text = _string(path, lineno, obj, "text", required=False) or ""
    if not text and not title:
        raise DatasetError(path, lineno, "text", "missing or empty (and no title)")
    meta = obj.get("metadata") or {}
    if not isinstance(meta, dict):
        raise DatasetError(path, lineno, "metadata", f"must be an object, found {type(meta).__name__}")
    name = title or " ".join(text.split()[:_NAME_WORDS])
    kind = meta.get("kind") if meta.get("kind") in KINDS else "company"
    country = meta.get("country").strip().upper() if isinstance(meta.get("country"), str) else ""
    data: dict[str, Any] = {"id": slug, "kind": kind, "name": name[:300], "description": (text or title)[:10_000]}
    for key in ("lang", "city", "region", "sectors"):
        if meta.get(key):
            data[key] = meta[key]
    try:
        if country:
            try:
                return Organisation.model_validate({**data, "country": country})
            except ValidationError as exc:
                if not any(e.get("loc", ("",))[0] == "country" for e in exc.errors()):
                    raise
        return Organisation.model_validate({**data, "country": "PT"}).model_copy(update={"country": ""})
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = str(err.get("loc", ("-",))[0])
        raise DatasetError(path, lineno, _BEIR_FIELD.get(loc, loc), err.get("msg", "invalid").removeprefix("Value error, ")) from None


def _load_beir_corpus(path: Path) -> tuple[list[Organisation], dict[str, str]]:
    """Records plus the map from BEIR ``_id`` to record id."""
    records: list[Organisation] = []
    to_slug: dict[str, str] = {}
    first_line: dict[str, int] = {}
    taken: set[str] = set()
    for lineno, obj in _jsonl(path):
        source_id = _string(path, lineno, obj, "_id")
        assert source_id is not None
        if source_id in to_slug:
            raise DatasetError(path, lineno, "_id", f"duplicate id '{source_id}' (first on line {first_line[source_id]})")
        slug = _slugify(source_id, taken)
        records.append(_beir_record(path, lineno, obj, slug))
        taken.add(slug)
        to_slug[source_id], first_line[source_id] = slug, lineno
    return records, to_slug


# -- entry point ----------------------------------------------------------------------
def load_dataset(root: str | Path) -> Dataset:
    """Read and validate a dataset folder; the layout is told by where the qrels are."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(root, 0, "-", "dataset folder not found")
    chats = root / "chats.jsonl"
    chats_path = chats if chats.is_file() else None
    if (root / "qrels.tsv").is_file():
        records = _load_native_corpus(root / "corpus.jsonl")
        queries = _load_queries(root / "queries.jsonl", "id")
        ids = {r.id: r.id for r in records}
        qrels = _load_qrels(root / "qrels.tsv", NATIVE_HEADER, queries, ids, MAX_GRADE)
        return Dataset(root, "native", records, queries, qrels, MAX_GRADE, {}, chats_path)
    if (root / "qrels" / "test.tsv").is_file():
        records, to_slug = _load_beir_corpus(root / "corpus.jsonl")
        queries = _load_queries(root / "queries.jsonl", "_id")
        qrels = _load_qrels(root / "qrels" / "test.tsv", BEIR_HEADER, queries, to_slug, None)
        source_ids = {slug: sid for sid, slug in to_slug.items() if slug != sid}
        return Dataset(root, "beir", records, queries, qrels, 1, source_ids, chats_path)
    raise DatasetError(root / "qrels.tsv", 0, "-", "file not found (nor qrels/test.tsv of the BEIR layout)")
