"""Loads the Lua scripts, one per transition, each with the shared prelude ``_record.lua``.

A script is sent by SHA (EVALSHA); the runner loads it on NOSCRIPT (a restarted or flushed
server), so nothing has to be loaded up front and a ``SCRIPT FLUSH`` costs one extra round trip.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

PRELUDE = "_record.lua"


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    sha: str


def load_scripts(package: str = "conveyor.backends.redis") -> dict[str, Script]:
    """Every ``scripts/<transition>.lua`` of ``package`` (files starting with ``_`` are shared
    parts), with the prelude prepended, by transition name."""
    folder = resources.files(package).joinpath("scripts")
    prelude = folder.joinpath(PRELUDE).read_text(encoding="utf-8")
    scripts = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".lua") or entry.name.startswith("_"):
            continue
        name = entry.name.removesuffix(".lua")
        source = prelude + "\n" + entry.read_text(encoding="utf-8")
        scripts[name] = Script(name, source, hashlib.sha1(source.encode()).hexdigest())
    return scripts
