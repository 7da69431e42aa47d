"""Packages on top of the assistant plug in here, without the assistant importing them.

Each names, in the ``cpc.extensions`` entry-point group (pyproject.toml), a module with any of:

* ``mount(app, settings)``: add its routes to the app (the chat connectors' webhooks);
* ``add_commands(subparsers, common)``: add `cpc` subcommands (``cpc telegram``, ``cpc eval``).

They are found in the installed package's metadata when the app is built, and when the command
line is for a command that is not built in (or for ``cpc --help``), so the import direction stays
corpus -> index -> assistant -> connectors, eval on top. After changing the group in
pyproject.toml, reinstall (``pip install -e . --no-deps``) to refresh it.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from types import ModuleType

GROUP = "cpc.extensions"
log = logging.getLogger("cpc.api")


def extensions() -> list[ModuleType]:
    """The registered extensions, by name; one that cannot be imported (its extra is not
    installed) is left out with a warning."""
    found = []
    registered = sorted(entry_points(group=GROUP), key=lambda e: e.name)
    if not registered:
        log.warning("no %s entry points in the installed metadata: no chat connectors, no `cpc eval`;"
                    " reinstall (pip install -e . --no-deps --no-build-isolation)", GROUP)
    for ep in registered:
        try:
            found.append(ep.load())
        except ImportError as exc:
            log.warning("extension %s not loaded: %s", ep.name, exc)
    return found


def mount_extensions(app, settings) -> None:
    for ext in extensions():
        mount = getattr(ext, "mount", None)
        if mount is not None:
            mount(app, settings)


def add_extension_commands(subparsers, common) -> None:
    for ext in extensions():
        add = getattr(ext, "add_commands", None)
        if add is not None:
            add(subparsers, common)
