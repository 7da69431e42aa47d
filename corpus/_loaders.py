"""Read organisation records from JSONL or CSV, with errors that name file, line and field.

All-or-nothing by default: one invalid record stops the import. With ``skip_invalid`` the
valid records come back together with what was skipped and why.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from pydantic import ValidationError

from ._schema import Organisation

_CSV_LIST_FIELDS = ("sectors", "sources")
_I18N_COLUMNS = ("name", "description")


@dataclass(frozen=True)
class RecordError:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class CorpusError(ValueError):
    """Invalid input; ``errors`` lists every problem found."""

    def __init__(self, errors: list[RecordError]):
        self.errors = errors
        head = "; ".join(str(e) for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"{len(errors)} invalid record(s): {head}{more}")


@dataclass
class LoadResult:
    records: list[Organisation]
    skipped: list[RecordError] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the line each record starts on
    source: str = "-"

    def error(self, position: int, field: str, message: str) -> CorpusError:
        """A problem found after loading (e.g. by the index) about ``records[position]``, by line."""
        line = self.lines[position] if position < len(self.lines) else position + 1
        return CorpusError([RecordError(self.source, line, field, message)])


# JSON text may hold U+0085, U+2028 and U+2029 raw inside strings, and str.splitlines() splits on
# them (and on other characters JSON allows only escaped): a JSON-lines file is split on line feeds
# and carriage returns alone.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def jsonl_lines(text: str) -> list[str]:
    """The lines of a JSON-lines text, never splitting a string value."""
    return _LINE_BREAK.split(text)


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")  # tolerates a BOM
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise CorpusError([RecordError(str(path), line, "-", "not valid UTF-8")]) from None


def _validation_errors(file: str, line: int, exc: ValidationError) -> list[RecordError]:
    out = []
    for err in exc.errors():
        parts = [str(p) for p in err.get("loc", ())]
        named = (err.get("ctx") or {}).get("field")  # a check over a whole record names its field here
        if named and named != "-" and parts[-1:] != [named]:
            parts.append(str(named))
        loc = ".".join(parts) or "-"
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        out.append(RecordError(file, line, loc, msg))
    return out


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    for lineno, line in enumerate(jsonl_lines(text), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield lineno, RecordError(str(path), lineno, "-", f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        except RecursionError:
            yield lineno, RecordError(str(path), lineno, "-", "JSON nested too deeply")
            continue
        except ValueError:  # Python refuses to turn more than 4,300 digits into an int (CVE-2020-10735)
            yield lineno, RecordError(str(path), lineno, "-", "a number with more than 4,300 digits")
            continue
        if not isinstance(obj, dict):
            yield lineno, RecordError(str(path), lineno, "-", "a line must hold one JSON object")
            continue
        yield lineno, obj


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any] | RecordError]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        yield 1, RecordError(str(path), 1, "-", f"not valid CSV ({exc})")
        return
    if not fieldnames:
        return
    header = [h.strip() for h in fieldnames]
    reader.fieldnames = header
    start_line: int | None = 2
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:  # e.g. a field over the csv module's size limit; the reader goes on
            line = start_line or reader.line_num
            yield line, RecordError(str(path), line, "-", f"not valid CSV ({exc})")
            start_line = None  # where the next record starts is unknown: use where it ends
            continue
        lineno, start_line = start_line or reader.line_num, reader.line_num + 1
        if None in row:  # more cells than header columns
            yield lineno, RecordError(str(path), lineno, "-", f"{len(header) + len(row[None])} cells but the header has {len(header)} columns")
            continue
        rec: dict[str, Any] = {}
        i18n: dict[str, dict[str, str]] = {}
        for key, value in row.items():
            value = (value or "").strip()
            if not value:
                continue
            base, _, lang = key.rpartition("_")
            if base in _I18N_COLUMNS and len(lang) == 2:
                i18n.setdefault(lang, {})[base] = value
            elif key in _CSV_LIST_FIELDS:
                rec[key] = [v.strip() for v in value.replace("|", ";").split(";") if v.strip()]
            else:
                rec[key] = value
        if i18n:
            rec["i18n"] = i18n
        yield lineno, rec


def load_records(path: str | Path, *, skip_invalid: bool = False) -> LoadResult:
    """Parse and validate a .jsonl or .csv file of organisations."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError([RecordError(str(path), 0, "-", "file not found")])
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".csv", ".ndjson"):
        raise CorpusError([RecordError(str(path), 0, "-", "unsupported file type: use .jsonl or .csv")])
    text = _read_text(path)
    rows = _csv_rows(path, text) if suffix == ".csv" else _jsonl_rows(path, text)
    records: list[Organisation] = []
    lines: list[int] = []
    errors: list[RecordError] = []
    seen: dict[str, int] = {}
    for lineno, row in rows:
        if isinstance(row, RecordError):
            errors.append(row)
            continue
        try:
            rec = Organisation.model_validate(row)
        except ValidationError as exc:
            errors.extend(_validation_errors(str(path), lineno, exc))
            continue
        except RecursionError:
            errors.append(RecordError(str(path), lineno, "-", "JSON nested too deeply"))
            continue
        if rec.id in seen:
            errors.append(RecordError(str(path), lineno, "id", f"duplicate id '{rec.id}' (first on line {seen[rec.id]})"))
            continue
        seen[rec.id] = lineno
        records.append(rec)
        lines.append(lineno)
    if errors and not skip_invalid:
        raise CorpusError(errors)
    return LoadResult(records, errors, lines, str(path))
