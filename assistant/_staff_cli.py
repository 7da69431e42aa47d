"""`cpc staff add|list|disable|enable|passwd`: named accounts for the staff console.

The password is asked twice at a terminal, or read as one line from standard input when that
is not a terminal (``printf '%s\\n' "$PW" | cpc staff add ana --role staff``): never from the
command line, where other local accounts could read it in the process list.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from . import _accounts as accounts


def _password(prompt_twice: bool = True) -> str:
    if not sys.stdin.isatty():
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    first = getpass.getpass("Password: ")
    if prompt_twice and getpass.getpass("Password again: ") != first:
        raise accounts.AccountError("password", "the two passwords differ")
    return first


def _store(args: argparse.Namespace):
    from ._state import open_state_store
    from .cli import settings_from_args

    settings = settings_from_args(args)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return open_state_store(settings)


def _cli_actor() -> str:
    """Who ran the command, for the audit log: the local account name."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:
        return "cli"


def audit_cli(settings, action: str, target: str = "", **detail) -> None:
    """An audit entry for a command that changed records (`cpc ingest`, `cpc delete`), by the
    local account that ran it. Never fails the command: a state store it cannot reach is reported."""
    from ._state import open_state_store

    try:
        store = open_state_store(settings)
        try:
            store.audit(_cli_actor(), "admin", "cli", action, target, {k: v for k, v in detail.items() if v is not None})
        finally:
            store.close()
    except Exception as exc:
        print(f"warning: not written to the audit log: {exc}", file=sys.stderr)


def cmd_staff(args: argparse.Namespace) -> int:
    try:
        if args.staff_command == "list":
            return _list(args)
        name = args.name if args.staff_command != "add" else accounts.check_name(args.name)
        if args.staff_command == "add":
            role = accounts.check_role(args.role)
            hashed = accounts.hash_password(_password())
        elif args.staff_command == "passwd":
            hashed = accounts.hash_password(_password())
    except accounts.AccountError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    store = _store(args)
    try:
        if args.staff_command == "add":
            try:
                store.add_account(name, role, hashed)
            except accounts.AccountExists:
                print(f"error: there is already an account named '{name}' (cpc staff passwd {name} sets a new password)",
                      file=sys.stderr)
                return 2
            store.audit(_cli_actor(), "admin", "cli", "account.add", name, {"role": role})
            print(f"added {role} '{name}': sign in at /staff")
            return 0
        changes = {"disable": {"disabled": True}, "enable": {"disabled": False}}.get(args.staff_command)
        if changes is None:  # passwd
            changes = {"password_hash": hashed}
        if store.update_account(name, **changes) is None:
            print(f"error: no account named '{name}'", file=sys.stderr)
            return 2
        store.audit(_cli_actor(), "admin", "cli", "account.change", name,
                    {"disabled": changes["disabled"]} if "disabled" in changes else {"password": True})
        done = {"disable": "disabled (and signed out everywhere)", "enable": "enabled",
                "passwd": "has a new password (and is signed out everywhere)"}[args.staff_command]
        print(f"'{name}' {done}")
        return 0
    finally:
        store.close()


def _list(args: argparse.Namespace) -> int:
    import time

    store = _store(args)
    try:
        rows = store.accounts()
    finally:
        store.close()
    if not rows:
        print("no staff accounts: add one with `cpc staff add NAME --role admin`")
        return 0
    for a in rows:
        since = time.strftime("%Y-%m-%d", time.gmtime(a["created"]))
        print(f"{a['name']:<24} {a['role']:<7} {'disabled' if a['disabled'] else 'active':<9} since {since}")
    return 0


def add_commands(sub, common) -> None:
    st = sub.add_parser("staff", help="named accounts for the staff console").add_subparsers(dest="staff_command", required=True)
    add = st.add_parser("add", parents=[common], help="add an account (password asked, or one line on stdin)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=accounts.ROLES,
                     help="viewer: reads; staff: also works leads; admin: also accounts, ingest, re-index, audit log")
    st.add_parser("list", parents=[common], help="list the accounts")
    for command, text in (("disable", "disable an account and end its sessions"), ("enable", "enable a disabled account"),
                          ("passwd", "set a new password (asked, or one line on stdin) and end its sessions")):
        one = st.add_parser(command, parents=[common], help=text)
        one.add_argument("name")
    for parser in st.choices.values():
        parser.set_defaults(func=cmd_staff)
