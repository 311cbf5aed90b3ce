"""The startup checks: is this Redis configured to keep what Conveyor promises?

Run once per backend, on its first call, as a plan (so either runner can do it). Each problem is
logged as a warning, or refused with :class:`ConfigurationError` when the backend is ``strict``.
A server that hides ``CONFIG`` (some managed services) is reported as unchecked, not refused.

Durability modes (the backend's ``durability`` option):

``always``    an acknowledged enqueue survives a crash of the server: needs ``appendonly yes`` and
              ``appendfsync always``. With Redis >= 7.2 every enqueue is also followed by
              ``WAITAOF 1 0 0``, so the reply waits for the local fsync even if the server's
              policy is weaker. Redis 7.0/7.1 have no WAITAOF: there ``appendfsync always`` is
              what makes the reply wait (the server fsyncs before it answers).
``everysec``  up to about a second of acknowledged writes may be lost: needs ``appendonly yes``.
``none``      no persistence expected (caches, tests): nothing is checked but eviction.
"""

from __future__ import annotations

import logging
from typing import Any

from conveyor.backends.redis.plans import Command, Plan
from conveyor.errors import ConfigurationError

log = logging.getLogger("conveyor.backends.redis")
DURABILITY_MODES = ("always", "everysec", "none")


def startup_check(url: str, durability: str, strict: bool) -> Plan[bool]:
    """Returns whether enqueues should be followed by WAITAOF."""
    try:
        info = yield Command(("INFO", "server"))
        config = {}
        for name in ("appendonly", "appendfsync", "maxmemory-policy"):
            config.update(_pairs((yield Command(("CONFIG", "GET", name)))))
    except Exception as exc:  # CONFIG disabled or renamed: say so, do not guess
        if "unknown command" not in str(exc).lower() and "noperm" not in str(exc).lower():
            raise
        log.warning("redis %s: cannot read its configuration (%s); durability unchecked",
                    url, exc)
        return False
    problems = problems_of(config, durability)
    for problem in problems:
        log.warning("redis %s: %s", url, problem)
    if problems and strict:
        raise ConfigurationError(f"redis {url}: " + "; ".join(problems))
    version = tuple(int(p) for p in str(info.get("redis_version", "0.0")).split(".")[:2])
    return durability != "none" and config.get("appendonly") == "yes" and version >= (7, 2)


def problems_of(config: dict[str, str], durability: str) -> list[str]:
    """What in ``config`` (CONFIG GET values) breaks the promises of ``durability``."""
    problems = []
    if durability != "none" and config.get("appendonly") != "yes":
        problems.append("persistence is off (appendonly no): a restart loses queued and "
                        "finished tasks; set appendonly yes")
    elif durability == "always" and config.get("appendfsync") != "always":
        problems.append(f"appendfsync is {config.get('appendfsync')!r}, weaker than the "
                        "configured durability 'always': a crash can lose acknowledged "
                        "enqueues; set appendfsync always")
    policy = config.get("maxmemory-policy")
    if policy is not None and policy != "noeviction":
        problems.append(f"maxmemory-policy is {policy!r}: Redis may evict tasks under memory "
                        "pressure; set maxmemory-policy noeviction")
    return problems


def _pairs(reply: Any) -> dict[str, str]:
    """CONFIG GET's reply, a dict (RESP3 / parsed) or a flat list of name, value."""
    def text(v: Any) -> str:
        return v.decode() if isinstance(v, bytes) else str(v)

    if isinstance(reply, dict):
        return {text(k): text(v) for k, v in reply.items()}
    return {text(reply[i]): text(reply[i + 1]) for i in range(0, len(reply), 2)}
