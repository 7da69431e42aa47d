"""Search evaluation: labelled datasets (native or BEIR layout) and bitext alignment checks.

    from eval import load_dataset, evaluate_dataset, write_report
    result = evaluate_dataset(load_dataset("eval/data/dev").select("test"))
    result.to_json()   # the same object as `cpc eval --data eval/data/dev --split test --json`

Metrics come from ranx (``evaluate_rankings`` takes plain rankings, so it can be checked
without embeddings). Conversations in chats.jsonl run through the real assistant (``run_chats``).
"""

from ._bitext import PUBLISHED, SETS as BITEXT_SETS, external_dir, run_bitext
from ._dataset import Dataset, DatasetError, Query, load_dataset
from ._metrics import METRICS, evaluate_rankings, query_groups, score_rankings, summarise
from ._run import (
    CONFIGS, DEFAULT_CONFIG, EvalError, EvalResult, RunConfig, build_engine, evaluate_dataset,
    parse_configs,
)
from ._chats import load_chats, run_chats
from ._report import format_table, write_report

__all__ = [
    "BITEXT_SETS", "CONFIGS", "DEFAULT_CONFIG", "METRICS", "PUBLISHED", "Dataset", "DatasetError", "EvalError",
    "EvalResult", "Query", "RunConfig", "build_engine", "evaluate_dataset", "evaluate_rankings", "external_dir",
    "format_table", "load_dataset", "parse_configs", "query_groups", "load_chats", "run_bitext",
    "run_chats", "score_rankings", "summarise", "write_report",
]
