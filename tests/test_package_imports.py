"""The packages depend one way: corpus -> index -> assistant -> connectors, eval on top.

Every module's imports are read (ast, module level and inside functions): none may import a
later package, nor another package's private module (``_x``); what one package offers the
others is in its ``__init__``. The assistant reaches connectors and eval only through the
``cpc.extensions`` entry points, which the installed metadata must list.
"""

from __future__ import annotations

import ast
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

from conftest import REPO

ORDER = ["corpus", "index", "assistant", "connectors", "eval"]


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of every absolute import in a module, ``from X import y`` as X.y too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def violations(root: Path) -> list[str]:
    bad = []
    for package in ORDER:
        for path in sorted((root / package).rglob("*.py")):
            where = path.relative_to(root)
            for line, name in imported(path):
                parts = name.split(".")
                if parts[0] not in ORDER or parts[0] == package:
                    continue
                if ORDER.index(parts[0]) > ORDER.index(package):
                    bad.append(f"{where}:{line}: {package} imports {name}, a package that depends on it")
                elif any(p.startswith("_") and not p.startswith("__") for p in parts[1:]):
                    bad.append(f"{where}:{line}: imports {name}, private to {parts[0]}")
    return bad


def test_no_package_imports_a_later_one_or_another_ones_private_modules():
    assert violations(REPO) == []


def test_the_check_sees_both_kinds_of_violation(tmp_path):
    """The same check on a made-up tree holding one of each (and nothing it should flag)."""
    for package in ORDER:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "index" / "ok.py").write_text("from corpus import load_records\nimport numpy\nfrom . import _x\n")
    (tmp_path / "assistant" / "app.py").write_text("def f():\n    from connectors import mount\n")
    (tmp_path / "eval" / "run.py").write_text("from assistant._state import StateStore\nfrom assistant import _limits\n")
    assert violations(tmp_path) == [
        "assistant/app.py:2: assistant imports connectors, a package that depends on it",
        "assistant/app.py:2: assistant imports connectors.mount, a package that depends on it",
        "eval/run.py:1: imports assistant._state, private to assistant",
        "eval/run.py:1: imports assistant._state.StateStore, private to assistant",
        "eval/run.py:2: imports assistant._limits, private to assistant",
    ]


def test_the_installed_metadata_lists_the_extensions_in_pyproject():
    """Stale metadata would leave the connectors' routes and `cpc eval` silently out:
    reinstall with `pip install -e . --no-deps --no-build-isolation` after changing the group."""
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["cpc.extensions"]
    installed = {ep.name: ep.value for ep in entry_points(group="cpc.extensions")}
    assert installed == declared
