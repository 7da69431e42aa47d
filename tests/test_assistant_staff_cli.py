"""`cpc staff` as an operator runs it: a real process, the password on stdin, the state file on disk."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO


def cpc(data_dir, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "CPC_ADMIN_TOKEN": ""}
    return subprocess.run([sys.executable, "-m", "assistant.cli", "staff", *args, "--data-dir", str(data_dir)],
                          input=stdin, capture_output=True, text=True, env=env, timeout=120)


def test_add_list_disable_enable_passwd(tmp_path):
    from assistant import _accounts as accounts
    from assistant._state import SQLiteStateStore

    data = tmp_path / "var"
    assert "no staff accounts" in cpc(data, "list").stdout
    added = cpc(data, "add", "ana", "--role", "staff", stdin="correct horse battery\n")
    assert added.returncode == 0 and "added staff 'ana'" in added.stdout, added.stderr
    assert "correct horse" not in added.stdout + added.stderr
    again = cpc(data, "add", "ana", "--role", "admin", stdin="another long password\n")
    assert again.returncode == 2 and "already an account" in again.stderr
    assert cpc(data, "add", "bo", "--role", "admin", stdin="short\n").returncode == 2
    assert cpc(data, "add", "bo", "--role", "boss", stdin="long enough password\n").returncode == 2  # argparse: not a role
    assert cpc(data, "add", "token", "--role", "admin", stdin="long enough password\n").returncode == 2
    assert cpc(data, "add", "-bad name", "--role", "admin", stdin="long enough password\n").returncode == 2
    listed = cpc(data, "list").stdout.split()
    assert listed[:3] == ["ana", "staff", "active"]
    assert cpc(data, "disable", "ana").returncode == 0 and cpc(data, "list").stdout.split()[2] == "disabled"
    assert cpc(data, "disable", "nobody").returncode == 2
    assert cpc(data, "enable", "ana").returncode == 0
    assert cpc(data, "passwd", "ana", stdin="a brand new password\n").returncode == 0
    store = SQLiteStateStore(data / "state.sqlite")
    try:
        account = store.account("ana")
        assert account["password_hash"].startswith("$argon2id$") and "brand new" not in account["password_hash"]
        assert accounts.verify(account, "a brand new password") and not accounts.verify(account, "correct horse battery")
        audited = [(e["action"], e["target"], e["via"]) for e in store.audit_entries()][::-1]
        assert audited == [("account.add", "ana", "cli"), ("account.change", "ana", "cli"), ("account.change", "ana", "cli"),
                           ("account.change", "ana", "cli")]
        assert store.audit_entries()[0]["actor"].startswith("cli")
    finally:
        store.close()


def test_cli_ingest_and_delete_are_audited_with_the_local_account(shipped_data_dir, tmp_path):
    import getpass
    import shutil

    from assistant._state import SQLiteStateStore
    from conftest import DATA

    data = tmp_path / "var"
    shutil.copytree(shipped_data_dir, data)
    env = {**os.environ, "PYTHONPATH": str(REPO), "CPC_DATA_DIR": str(data)}
    run = lambda *args: subprocess.run([sys.executable, "-m", "assistant.cli", *args], capture_output=True, text=True,  # noqa: E731
                                       env=env, timeout=300)
    ingested = run("ingest", str(DATA / "fictional.jsonl"))
    assert ingested.returncode == 0, ingested.stderr
    one = next(line for line in (DATA / "fictional.jsonl").read_text(encoding="utf-8").splitlines() if line.strip())
    org_id = __import__("json").loads(one)["id"]
    assert run("delete", org_id).returncode == 0
    store = SQLiteStateStore(data / "state.sqlite")
    try:
        entries = store.audit_entries()
    finally:
        store.close()
    assert [(e["action"], e["via"]) for e in entries[:2]] == [("record.delete", "cli"), ("records.ingest", "cli")]
    assert entries[0]["target"] == org_id and entries[1]["detail"]["imported"] == 6
    assert entries[0]["actor"] == f"cli:{getpass.getuser()}"
