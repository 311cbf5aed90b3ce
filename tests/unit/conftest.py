"""Unit-test fixtures: an app on a private in-memory SQLite store (no mock broker)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conveyor import Conveyor


@pytest.fixture
def app() -> Iterator[Conveyor]:
    application = Conveyor("sqlite://:memory:")
    yield application
    application.close()
