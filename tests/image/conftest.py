"""Fixtures shared by the image builder tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.image import kit


@pytest.fixture(scope="session")
def static_busybox() -> Path:
    return kit.static_busybox()
