"""The scripts: one Lua file per transition, each with its header; loaded by SHA and reloaded
after the server forgot them."""

from __future__ import annotations

import re
from importlib import resources

import redis

from backends.support import claim_one, enqueue, new_task
from conveyor.backends.base import transition_names
from conveyor.backends.redis import keys
from conveyor.backends.redis.backend import SCRIPTS, RedisBackend


def test_one_script_per_transition() -> None:
    """And ``offer``, which moves no task: a waiting worker's offer to take one (handoff.py)."""
    assert sorted(SCRIPTS) == sorted([*transition_names(), "offer"])


def test_every_script_has_a_header_of_keys_argv_and_returns() -> None:
    folder = resources.files("conveyor.backends.redis").joinpath("scripts")
    for name in SCRIPTS:
        text = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
        header = "\n".join(line for line in text.splitlines() if line.startswith("--"))
        assert "Returns:" in header, name
        uses_keys = re.search(r"KEYS\[|key_of\(|#KEYS", text.split("\n\n", 1)[-1])
        assert not uses_keys or "KEYS[" in header, f"{name}.lua: KEYS not documented"
        assert "ARGV" in header or "ARGV" not in text, f"{name}.lua: ARGV not documented"


def test_no_script_builds_a_key() -> None:
    """Every key arrives in KEYS (Redis Cluster): no script names a key itself."""
    folder = resources.files("conveyor.backends.redis").joinpath("scripts")
    for entry in folder.iterdir():
        code = "\n".join(
            line for line in entry.read_text(encoding="utf-8").splitlines()
            if not line.lstrip().startswith("--")
        )
        assert "conveyor:" not in code, entry.name


def test_noscript_after_script_flush_is_reloaded(backend: RedisBackend, raw: redis.Redis) -> None:
    enqueue(backend, new_task())
    raw.script_flush()
    assert raw.script_exists(SCRIPTS["claim"].sha) == [False]
    claimed = claim_one(backend)
    assert raw.script_exists(SCRIPTS["claim"].sha) == [True]
    assert claimed.attempts == 1


def test_ids_are_stored_compactly_and_read_back() -> None:
    for task_id in ["0190f6a4-5e2b-7c1d-8e9f-0a1b2c3d4e5f", "sync-1", "", "x" * 15, "x" * 16,
                    "é" * 8, "0190F6A4-5E2B-7C1D-8E9F-0A1B2C3D4E5F"]:
        stored = keys.encode_id(task_id)
        assert keys.decode_id(stored) == task_id
    assert len(keys.encode_id("0190f6a4-5e2b-7c1d-8e9f-0a1b2c3d4e5f")) == 16


def test_queue_names_with_braces_are_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="braces"):
        keys.queue_keys("a{b}")


def test_keys_of_a_queue_share_one_hash_tag() -> None:
    tags = {re.search(r"\{(.*?)\}", key).group(1) for key in keys.queue_keys("email")}  # type: ignore[union-attr]
    assert tags == {"email"}
