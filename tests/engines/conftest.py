"""Three more Docker engines, each in its own network namespace, for the whole session."""

from __future__ import annotations

import pytest

from tests.support.engines import engine_hosts


@pytest.fixture(scope="session")
def engines(docker_client, busybox_box, tmp_path_factory):
    """Three :class:`~tests.support.engines.EngineHost` s with the busybox box loaded."""
    with engine_hosts(3, tmp_path_factory.mktemp("engines"), [busybox_box], docker_client) as hosts:
        yield hosts


@pytest.fixture
def engine_endpoints(engines):
    return [host.endpoint() for host in engines]
