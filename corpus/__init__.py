"""Organisation records: schema, importers, taxonomy and the shipped corpus."""

from pathlib import Path

from ._lang import SUPPORTED as SUPPORTED_LANGS, detect_lang, has_han, warm_langdetect
from ._lexicon import Lexicon, Place, default_lexicon
from ._loaders import CorpusError, LoadResult, RecordError, jsonl_lines, load_records
from ._matcher import TermMatcher, fold
from ._schema import KINDS, MAX_LANGUAGES, Organisation, Translation
from ._taxonomy import Sector, Taxonomy, default_taxonomy
from ._value_chain import ROLES, Link, ValueChain, default_value_chain

DATA_DIR = Path(__file__).parent / "data"
DEFAULT_CORPUS = DATA_DIR / "organisations.jsonl"

__all__ = [
    "DATA_DIR", "DEFAULT_CORPUS", "KINDS", "MAX_LANGUAGES", "SUPPORTED_LANGS", "CorpusError", "Lexicon",
    "LoadResult", "Organisation", "Place", "RecordError", "Sector", "Taxonomy", "Translation",
    "TermMatcher", "default_lexicon", "default_taxonomy", "ROLES", "Link", "ValueChain", "default_value_chain", "detect_lang",
    "fold", "has_han", "jsonl_lines", "load_records", "warm_langdetect",
]

from ._store import STORED, RecordStore, bodies_hash, corpus_hash, lines_hash, open_sqlite, record_json, write_transaction  # noqa: E402

__all__ += ["STORED", "RecordStore", "bodies_hash", "corpus_hash", "lines_hash", "open_sqlite", "record_json", "write_transaction"]
