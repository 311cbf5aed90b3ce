"""Task ids: UUIDv7 strings, ordered by creation time."""

from __future__ import annotations

import re
import time
import uuid

import pytest

from conveyor import ids
from conveyor.ids import new_task_id

UUID_TEXT = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_format_is_a_version_7_rfc_4122_uuid() -> None:
    for _ in range(1000):
        text = new_task_id()
        assert UUID_TEXT.match(text), text
        value = uuid.UUID(text)
        assert value.version == 7
        assert value.variant == uuid.RFC_4122
        assert str(value) == text


def test_the_timestamp_is_the_creation_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid.UUID(new_task_id())
    after = time.time_ns() // 1_000_000
    assert before <= value.int >> 80 <= after


def test_ids_are_unique() -> None:
    made = [new_task_id() for _ in range(20_000)]
    assert len(set(made)) == len(made)


def test_ids_sort_by_creation_time(monkeypatch: pytest.MonkeyPatch) -> None:
    millis = iter(range(1_700_000_000_000, 1_700_000_000_000 + 500))
    monkeypatch.setattr(ids.time, "time_ns", lambda: next(millis) * 1_000_000)
    made = [new_task_id() for _ in range(500)]
    assert sorted(made) == made
    assert [uuid.UUID(m).int >> 80 for m in made] == list(
        range(1_700_000_000_000, 1_700_000_000_500)
    )
