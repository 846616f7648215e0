"""Fixtures shared by the image builder tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.image import helpers


@pytest.fixture(scope="session")
def static_busybox() -> Path:
    return helpers.static_busybox()
