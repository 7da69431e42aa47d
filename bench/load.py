"""Load test: concurrent clients mixing search and chat in pt, zh and en for a fixed time.

Starts `cpc serve` on a loopback port over a data folder (or targets --url), with rate limits
off (they would turn the load into intended 429s), and runs --clients asyncio clients for
--seconds. Half the turns are searches; the others are chat conversations: a request, then
follow-ups ("mais", "更多", "more") in its language. Reports requests per second, p50/p99
latency overall and per route, errors (any non-2xx, no answer, or a body that is not a JSON
object), the server's resident memory at start, before and after the measured run, and where the
CPU went meanwhile: the server's (per process) and this client's, per request and in cores, and
what the rest of the machine took (other work on a shared machine makes a run's figures low). The
clients speak HTTP through a minimal keep-alive client (--client httpx: httpx's AsyncClient, which
costs about five times the CPU a request, taken from the cores the server needs). "Before" is taken after a warm-up with the
same clients (--warm-up seconds), once the server has its worker threads and caches: growth
from there is what sustained load adds, which is what a leak would show as.

With --abuse it measures what one abusive client does to everyone else: --clients normal
clients (15 by default here), each from its own address (X-Forwarded-For; the started server
trusts it from 127.0.0.1) and at most one request every --interval seconds, run first alone and
then beside one client (or --abusers clients, each from its own address) that sends
maximum-length Chinese chat messages as fast as its limits allow (--abuser-per-minute, pausing
for Retry-After when refused). Rate limits are on, at the
server's defaults. It reports the normal clients' search p50 without and with the abuser and the
ratio; --pairs repeats the pair and quotes medians.

    python bench/load.py                       # 16 clients, 60 s, a server on the shipped corpus
    python bench/load.py --seconds 10 --clients 4 --data-dir var
    python bench/load.py --url http://127.0.0.1:8000 --json
    python bench/load.py --workers 2 --threads 1 --seconds 20 --data-dir var   # `cpc serve --workers 2`
    python bench/load.py --abuse --seconds 30 --pairs 2
    python bench/load.py --abuse --abusers 10 --seconds 30   # ten addresses at once (the encoder's global ceiling)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from _server import process_tree, start_server  # bench/ is on sys.path when a script here runs

REPO = Path(__file__).resolve().parents[1]
MORE = {"pt": "mais", "zh": "更多", "en": "more"}


def samples() -> dict[str, list[str]]:
    by_lang: dict[str, list[str]] = {}
    for line in (REPO / "index/data/query_samples.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            if row.get("lang") in MORE:
                by_lang.setdefault(row["lang"], []).append(row["text"])
    return by_lang


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else 0.0


def cpu_seconds(pid: int | None) -> dict[int, float] | None:
    """CPU time (user + system, all threads) each of the server's processes has used so far; None
    when it is not our child (--url)."""
    if pid is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for member in process_tree(pid):
        fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        used[member] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime (fields 14 and 15 of proc(5))
    return used


def machine_busy_seconds() -> float:
    """CPU time all the machine's cores have spent busy (not idle, not waiting for the disk) since boot."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # up to steal; less idle, iowait


def own_cpu_seconds() -> float:
    """CPU time this load client has used (user + system, all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def rss_bytes(pid: int | None, url: str) -> int:
    """Resident memory of the server (all its processes): /proc when it is our child, else its /metrics."""
    if pid is not None:
        total = 0
        for member in process_tree(pid):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        return total
    key = os.environ.get("CPC_ADMIN_TOKEN")  # /metrics wants the staff key unless CPC_METRICS_PUBLIC is set
    text = httpx.get(url + "/metrics", timeout=10, headers={"Authorization": f"Bearer {key}"} if key else {}).text
    m = re.search(r"^process_resident_memory_bytes ([0-9.e+]+)$", text, re.M)
    return int(float(m.group(1))) if m else 0


@dataclass
class Tally:
    latency: dict[str, list[float]] = field(default_factory=dict)  # route -> seconds
    errors: list[str] = field(default_factory=list)
    throttled: int = 0

    def add(self, route: str, seconds: float, status: int | None, note: str = "") -> None:
        self.latency.setdefault(route, []).append(seconds)
        if status == 429:
            self.throttled += 1
        if status is None or not 200 <= status < 300:
            self.errors.append(f"{route} {status} {note}"[:300])


def address(n: int) -> str:
    """The address client ``n`` claims in X-Forwarded-For (a documentation network, one per client)."""
    return f"198.51.{n // 250}.{n % 250 + 1}"


class LeanHTTP:
    """One keep-alive HTTP/1.1 connection speaking just what the load needs: a JSON POST, the
    status line, Content-Length (or chunks) and the body. httpx's AsyncClient spent about 2 ms of
    CPU a request here, a tenth of the server's, on the same two cores the server needs; this
    spends a fraction of that, so the figures measure the server. Every answer is still checked:
    its status, and that its body is a JSON object."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, timeout: float = 120):
        parts = httpx.URL(url)
        self.host, self.port, self.timeout = parts.host, parts.port or 80, timeout
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.head = f"Host: {self.host}:{self.port}\r\nContent-Type: application/json\r\n{extra}"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, route: str, body: dict) -> tuple[int, dict | None, str]:
        """(status, the JSON object answered or None, the body's start for an error note)."""
        data = json.dumps(body, ensure_ascii=False).encode()
        request = f"POST {route} HTTP/1.1\r\n{self.head}Content-Length: {len(data)}\r\n\r\n".encode() + data
        return await asyncio.wait_for(self._exchange(request), self.timeout)

    async def _exchange(self, request: bytes) -> tuple[int, dict | None, str]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        try:
            self.writer.write(request)
            head = await self.reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            fields = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
            if "content-length" in fields:
                raw = await self.reader.readexactly(int(fields["content-length"]))
            elif fields.get("transfer-encoding", "").lower() == "chunked":
                raw = b""
                while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                    raw += (await self.reader.readexactly(size + 2))[:-2]
                await self.reader.readuntil(b"\r\n")
            else:
                raise ValueError(f"an answer without a length: {lines[0]}")
            if fields.get("connection", "").lower() == "close":
                await self.close()
        except BaseException:
            await self.close()  # the connection is in an unknown state: the next request opens another
            raise
        text = raw.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        return status, parsed if isinstance(parsed, dict) else None, text[:200]

    async def close(self) -> None:
        writer, self.reader, self.writer = self.writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass


async def client_loop(n: int, url: str, until: float, texts: dict[str, list[str]], tally: Tally,
                      interval: float = 0.0, forwarded: str | None = None, lean: bool = True) -> None:
    """One user: searches, and conversations with follow-ups; each request starts at least
    ``interval`` s after the previous one started. ``lean``: over LeanHTTP, else httpx."""
    rng = random.Random(n)
    langs = sorted(texts)
    headers = {"X-Forwarded-For": forwarded} if forwarded else None
    async with contextlib.AsyncExitStack() as stack:
        if lean:
            http = LeanHTTP(url, headers)
            stack.push_async_callback(http.close)
            send = http.post
        else:
            client = await stack.enter_async_context(httpx.AsyncClient(base_url=url, timeout=120, headers=headers))

            async def send(route: str, body: dict) -> tuple[int, dict | None, str]:
                r = await client.post(route, json=body)
                try:
                    parsed = r.json()
                except ValueError:
                    parsed = None
                return r.status_code, parsed if isinstance(parsed, dict) else None, r.text[:200]

        async def call(route: str, body: dict) -> dict | None:
            t0 = time.perf_counter()
            try:
                status, answer, text = await send(route, body)
            except (httpx.HTTPError, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as exc:
                tally.add(route, time.perf_counter() - t0, None, repr(exc))
                return None
            took = time.perf_counter() - t0
            if 200 <= status < 300 and answer is None:
                tally.add(route, took, None, "not a JSON object: " + text)
                return None
            tally.add(route, took, status, text)
            if interval > took:
                await asyncio.sleep(min(interval - took, max(0.0, until - time.monotonic())))
            return answer if status == 200 else None

        while time.monotonic() < until:
            lang = rng.choice(langs)
            query = rng.choice(texts[lang])
            if rng.random() < 0.5:
                await call("/api/v1/search", {"query": query, "limit": 10})
                continue
            reply = await call("/api/v1/chat", {"text": query, "channel": "web"})  # the server issues the session
            for _ in range(rng.randint(1, 2)):
                if reply is None or time.monotonic() >= until:
                    break
                reply = await call("/api/v1/chat", {"session_id": reply["session_id"], "text": MORE[lang], "channel": "web"})


async def run_load(url: str, clients: int, seconds: float, texts: dict[str, list[str]],
                   lean: bool = True) -> tuple[Tally, float]:
    tally = Tally()
    start = time.monotonic()
    await asyncio.gather(*(client_loop(n, url, start + seconds, texts, tally, lean=lean) for n in range(clients)))
    return tally, time.monotonic() - start


# -- abuse mode ---------------------------------------------------------------------------------
CHAT_MAX = 2000  # the chat API's longest message (assistant/_schemas.py)
ABUSER = "203.0.113.66"


def searchable(texts: list[str]) -> list[str]:
    """The requests the assistant takes as a search (not "details", "contact", "help" ...), so
    every abusive message costs an encode."""
    sys.path.insert(0, str(REPO))
    from assistant import _intents as intents

    moves = (intents.CONTACT, intents.DETAILS, intents.HELP, intents.CLEAR_FILTERS)
    return [t for t in texts if not any(m.search(t) for m in moves)]


def longest_chinese(pool: list[str], n: int) -> str:
    """A maximum-length Chinese message, different each time (so no cache could help)."""
    rng = random.Random(n)
    out = ""
    while len(out) < CHAT_MAX:
        out += rng.choice(pool) + "，"
    return out[:CHAT_MAX]


@dataclass
class AbuserTally:
    sent: int = 0
    answered: int = 0
    throttled: int = 0
    failed: int = 0
    intents: dict[str, int] = field(default_factory=dict)  # of the answered messages: "search" means searched


def abuser_address(n: int) -> str:
    """Abuser ``n``'s address (another documentation network than the normal clients')."""
    return ABUSER if n == 0 else f"203.0.113.{(66 + n) % 250 + 1}"


async def abuser_loop(url: str, until: float, texts: dict[str, list[str]], per_minute: float,
                      tally: AbuserTally, who: int = 0) -> None:
    """Sends a maximum-length Chinese chat message every 60/per_minute s without waiting for
    answers (as a flood does); a 429 pauses the sending for its Retry-After."""
    paused_until = 0.0
    tasks: list[asyncio.Task] = []
    pool = searchable(texts["zh"])
    async with httpx.AsyncClient(base_url=url, timeout=120, headers={"X-Forwarded-For": abuser_address(who)},
                                 limits=httpx.Limits(max_connections=None)) as http:

        async def send(n: int) -> None:
            nonlocal paused_until
            try:
                r = await http.post("/api/v1/chat", json={"session_id": f"abuse-{who}-{n}",
                                                         "text": longest_chinese(pool, n + 100_000 * who)})
            except httpx.HTTPError:
                tally.failed += 1
                return
            if r.status_code == 429:
                tally.throttled += 1
                paused_until = max(paused_until, time.monotonic() + float(r.headers.get("retry-after", "1")))
            elif r.status_code == 200:
                tally.answered += 1
                intent = r.json().get("intent", "?")
                tally.intents[intent] = tally.intents.get(intent, 0) + 1
            else:
                tally.failed += 1

        n = 0
        while time.monotonic() < until:
            now = time.monotonic()
            if now < paused_until:
                await asyncio.sleep(min(paused_until, until) - now)
                continue
            tasks.append(asyncio.create_task(send(n)))
            tally.sent += 1
            n += 1
            await asyncio.sleep(60.0 / per_minute)
        await asyncio.gather(*tasks)


async def run_abuse(url: str, clients: int, seconds: float, texts: dict[str, list[str]], interval: float,
                    abuser_per_minute: float | None, abusers: int = 1) -> tuple[Tally, AbuserTally | None]:
    """Normal clients for ``seconds``, with ``abusers`` abusive clients (each from its own address)
    beside them unless ``abuser_per_minute`` is None; their counts are summed."""
    tally, abuser = Tally(), AbuserTally() if abuser_per_minute else None
    until = time.monotonic() + seconds
    loops = [client_loop(n, url, until, texts, tally, interval, address(n)) for n in range(clients)]
    if abuser is not None:
        loops += [abuser_loop(url, until, texts, abuser_per_minute, abuser, who) for who in range(abusers)]
    await asyncio.gather(*loops)
    return tally, abuser


def settle(url: str, limit: float = 600) -> float:
    """Wait until a search answers within a second (work the abuser left queued is done);
    the seconds it took."""
    start = time.monotonic()
    with httpx.Client(base_url=url, timeout=limit, headers={"X-Forwarded-For": address(10_100)}) as http:
        while time.monotonic() - start < limit:
            t0 = time.monotonic()
            http.post("/api/v1/search", json={"query": "moldes"})
            if time.monotonic() - t0 < 1.0:
                break
            time.sleep(1)
    return time.monotonic() - start


def search_p50_ms(tally: Tally) -> float:
    values = tally.latency.get("/api/v1/search", [])
    return round(statistics.median(values) * 1000, 1) if values else 0.0


def abuse_report(pairs: list[tuple[Tally, Tally, AbuserTally]], clients: int, seconds: float) -> dict:
    rows = []
    for alone, beside, abuser in pairs:
        without, with_ = search_p50_ms(alone), search_p50_ms(beside)
        rows.append({
            "search_p50_without_ms": without, "search_p50_with_ms": with_,
            "ratio": round(with_ / without, 2) if without else None,
            "searches_without": len(alone.latency.get("/api/v1/search", [])),
            "searches_with": len(beside.latency.get("/api/v1/search", [])),
            "search_p99_with_ms": round(pct(beside.latency.get("/api/v1/search", []), 0.99) * 1000, 1),
            "errors_without": len(alone.errors), "errors_with": len(beside.errors),
            "abuser": {"sent": abuser.sent, "answered": abuser.answered, "throttled_429": abuser.throttled,
                       "failed": abuser.failed, "intents": abuser.intents},
        })
    med = lambda key: round(statistics.median(r[key] for r in rows), 1)  # noqa: E731
    without, with_ = med("search_p50_without_ms"), med("search_p50_with_ms")
    return {
        "mode": "abuse", "normal_clients": clients, "seconds": seconds, "pairs": rows,
        "search_p50_without_ms": without, "search_p50_with_ms": with_,
        "ratio": round(with_ / without, 2) if without else None,
        "errors": sum(r["errors_without"] + r["errors_with"] for r in rows),
        "first_errors": [e for alone, beside, _ in pairs for e in alone.errors + beside.errors][:5],
    }


def main_abuse(args: argparse.Namespace, texts: dict[str, list[str]]) -> int:
    proc = None
    tmp = tempfile.TemporaryDirectory(prefix="cpc-load-")
    url = args.url
    if not url:  # limits at their defaults; bench clients are all local, so believe their X-Forwarded-For
        proc, url = start_server(args.data_dir or Path(tmp.name) / "var", Path(tmp.name) / "serve.log",
                                 limits=True, args=("--forwarded-allow-ips", "127.0.0.1"))
    clients = args.clients if args.clients is not None else 15
    pairs = []
    try:
        warm_up(url, texts, forwarded=True)
        if args.warm_up > 0:
            asyncio.run(run_abuse(url, clients, args.warm_up, texts, args.interval, None))
        for _ in range(args.pairs):
            settle(url)  # what an earlier abuser left queued must not count against "alone"
            alone, _ = asyncio.run(run_abuse(url, clients, args.seconds, texts, args.interval, None))
            beside, abuser = asyncio.run(run_abuse(url, clients, args.seconds, texts, args.interval,
                                                   args.abuser_per_minute, args.abusers))
            pairs.append((alone, beside, abuser))
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=30)
        tmp.cleanup()
    out = abuse_report(pairs, clients, args.seconds)
    out["abusers"] = args.abusers
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(f"{clients} normal clients (one request every {args.interval} s at most), {args.abusers} abuser(s), "
              f"{args.seconds} s per run, against {url}")
        for i, r in enumerate(out["pairs"], 1):
            a = r["abuser"]
            print(f"  pair {i}: search p50 {r['search_p50_without_ms']} ms alone, {r['search_p50_with_ms']} ms beside "
                  f"the abuser (x{r['ratio']}; p99 {r['search_p99_with_ms']} ms); abuser sent {a['sent']}, "
                  f"answered {a['answered']} {a['intents']}, refused {a['throttled_429']}, failed {a['failed']}")
        print(f"  medians: {out['search_p50_without_ms']} ms alone, {out['search_p50_with_ms']} ms with the abuser, "
              f"ratio {out['ratio']}; errors of normal clients {out['errors']}")
        for e in out["first_errors"]:
            print(f"  error: {e}")
    return 0 if not out["errors"] else 1


def warm_up(url: str, texts: dict[str, list[str]], forwarded: bool = False) -> None:
    """One search and one conversation per language: loads the tokenisers' dictionaries.
    With ``forwarded``, each language's requests come from an address of their own (none of
    the measured clients' budgets is spent)."""
    with httpx.Client(base_url=url, timeout=120) as http:
        for n, (lang, pool) in enumerate(texts.items()):
            headers = {"X-Forwarded-For": address(10_000 + n)} if forwarded else None
            for text in pool[:3]:
                http.post("/api/v1/search", json={"query": text}, headers=headers).raise_for_status()
            first = http.post("/api/v1/chat", json={"text": pool[0]}, headers=headers)
            first.raise_for_status()
            http.post("/api/v1/chat", json={"session_id": first.json()["session_id"], "text": MORE[lang]},
                      headers=headers).raise_for_status()


def report(tally: Tally, elapsed: float, clients: int, rss: tuple[int, int, int]) -> dict:
    every = [s for values in tally.latency.values() for s in values]
    ms = lambda s: round(s * 1000, 1)  # noqa: E731
    out = {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "requests": len(every),
        "rps": round(len(every) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": ms(statistics.median(every)) if every else 0.0,
        "p99_ms": ms(pct(every, 0.99)),
        "errors": len(tally.errors),
        "throttled_429": tally.throttled,
        "routes": {route: {"requests": len(v), "p50_ms": ms(statistics.median(v)), "p99_ms": ms(pct(v, 0.99))}
                   for route, v in sorted(tally.latency.items())},
        "rss_start_mb": round(rss[0] / 2**20, 1),
        "rss_before_mb": round(rss[1] / 2**20, 1),
        "rss_after_mb": round(rss[2] / 2**20, 1),
        "rss_growth_pct": round(100 * (rss[2] - rss[1]) / rss[1], 1) if rss[1] else None,
        "first_errors": tally.errors[:5],
    }
    return out


def cpu_split(before: tuple, after: tuple, requests: int, elapsed: float) -> dict:
    """Where the measured run's CPU went: the server's processes and this client, per request and
    in cores kept busy (on a machine of few cores the client's share is taken from the server),
    and what everything else on the machine took meanwhile (a shared machine's other work, which
    makes a run's figures low). Per server process (the parent first, then its workers): a worker
    far busier than another shows connections spread unevenly. ``before`` and ``after`` are
    (cpu_seconds, own_cpu_seconds, machine_busy_seconds)."""
    per_process = None
    if before[0] is not None and after[0] is not None:
        per_process = [after[0][p] - before[0].get(p, 0.0) for p in after[0]]
    server = sum(per_process) if per_process is not None else None
    client = after[1] - before[1]
    machine = after[2] - before[2]
    per = lambda s: round(1000 * s / requests, 2) if requests and s is not None else None  # noqa: E731
    cores = lambda s: round(s / elapsed, 2) if elapsed and s is not None else None  # noqa: E731
    return {"server_cpu_ms_per_request": per(server), "client_cpu_ms_per_request": per(client),
            "server_cores": cores(server), "client_cores": cores(client), "machine_cores": os.cpu_count(),
            "server_cores_per_process": [cores(s) for s in per_process] if per_process is not None else None,
            "other_cores": cores(max(0.0, machine - client - server)) if server is not None else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", help="target a running server instead of starting one (use its /metrics for memory)")
    ap.add_argument("--data-dir", type=Path, help="data folder for the started server (default: a temp folder)")
    ap.add_argument("--workers", type=int, default=1, help="worker processes of the started server (cpc serve --workers)")
    ap.add_argument("--threads", type=int, help="encoder threads per worker of the started server (CPC_THREADS)")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--clients", type=int, help="concurrent clients (16; 15 normal ones with --abuse)")
    ap.add_argument("--warm-up", type=float, default=5, help="seconds of unmeasured load before 'before'")
    ap.add_argument("--client", choices=("lean", "httpx"), default="lean",
                    help="the clients' HTTP: a minimal keep-alive client (default), or httpx's AsyncClient (costs more CPU)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--abuse", action="store_true", help="normal clients alone, then beside one abusive client")
    ap.add_argument("--pairs", type=int, default=1, help="with --abuse: runs of the pair (medians are reported)")
    ap.add_argument("--interval", type=float, default=1.0,
                    help="with --abuse: least seconds between one normal client's requests")
    ap.add_argument("--abusers", type=int, default=1,
                    help="with --abuse: abusive clients, each from its own address (10: many addresses at once)")
    ap.add_argument("--abuser-per-minute", type=float, default=120,
                    help="with --abuse: the abuser's sending rate (the default request limit)")
    args = ap.parse_args()
    texts = samples()
    if args.abuse:
        return main_abuse(args, texts)
    args.clients = args.clients if args.clients is not None else 16

    proc = None
    tmp = tempfile.TemporaryDirectory(prefix="cpc-load-")
    url = args.url
    if not url:
        env = {"CPC_THREADS": str(args.threads)} if args.threads else None
        proc, url = start_server(args.data_dir or Path(tmp.name) / "var", Path(tmp.name) / "serve.log", env=env,
                                 workers=args.workers)
    pid = proc.pid if proc else None
    try:
        rss_start = rss_bytes(pid, url)
        warm_up(url, texts)
        if args.warm_up > 0:
            asyncio.run(run_load(url, args.clients, args.warm_up, texts, args.client == "lean"))
        rss_before = rss_bytes(pid, url)
        cpu_before = (cpu_seconds(pid), own_cpu_seconds(), machine_busy_seconds())
        tally, elapsed = asyncio.run(run_load(url, args.clients, args.seconds, texts, args.client == "lean"))
        cpu_after = (cpu_seconds(pid), own_cpu_seconds(), machine_busy_seconds())
        rss_after = rss_bytes(pid, url)
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=30)
        tmp.cleanup()

    out = report(tally, elapsed, args.clients, (rss_start, rss_before, rss_after))
    out.update(cpu_split(cpu_before, cpu_after, out["requests"], elapsed))
    out.update(workers=args.workers if not args.url else None, threads=args.threads, client=args.client)
    if args.json:
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(f"{out['clients']} clients for {out['seconds']} s against {url}"
              + (f" ({args.workers} worker(s), {args.threads or 'default'} thread(s))" if not args.url else "")
              + f", {args.client} client")
        print(f"  {out['requests']} requests, {out['rps']} req/s, p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms")
        for route, r in out["routes"].items():
            print(f"  {route:<16} {r['requests']:>6} requests  p50 {r['p50_ms']:>8} ms  p99 {r['p99_ms']:>8} ms")
        print(f"  errors {out['errors']} (429: {out['throttled_429']})")
        if out["server_cpu_ms_per_request"] is not None:
            print(f"  CPU per request: server {out['server_cpu_ms_per_request']} ms, this client "
                  f"{out['client_cpu_ms_per_request']} ms; cores busy: server {out['server_cores']}, "
                  f"client {out['client_cores']} (of {out['machine_cores']}); per server process "
                  f"{out['server_cores_per_process']}; everything else on the machine {out['other_cores']}")
        else:
            print(f"  CPU per request: this client {out['client_cpu_ms_per_request']} ms ({out['client_cores']} cores)")
        print(f"  server RSS: {out['rss_start_mb']} MB at start, {out['rss_before_mb']} MB after the warm-up, "
              f"{out['rss_after_mb']} MB after the load ({out['rss_growth_pct']}%)")
        for e in out["first_errors"]:
            print(f"  error: {e}")
    return 0 if not out["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
