"""Fixtures of the server tests: an app on a fresh SQLite database (in-process, TestClient), accounts with
keys, and a throwaway PostgreSQL server on loopback (installed by scripts/test-services.sh when missing —
a missing PostgreSQL fails the tests that need it, it never skips them)."""

from __future__ import annotations

import pytest
from serverkit import Api, make_config  # first: it silences a deprecation warning of TestClient's import

from fastapi.testclient import TestClient  # noqa: E402
from perprisk.server import create_app  # noqa: E402
from perprisk.server.testing import PostgresCluster, ServiceMissing  # noqa: E402


@pytest.fixture
def server_config(tmp_path):
    return make_config(f"sqlite:///{tmp_path / 'server.db'}")


@pytest.fixture
def api(server_config):
    with TestClient(create_app(server_config)) as client:
        yield Api(client)


@pytest.fixture
def pair(api):
    """Two funded accounts with opposite 0.5 BTC positions at 100,000 (maker short, taker long)."""
    api.mark("BTCUSDT", "100000")
    maker, mh = api.account("100000")
    taker, th = api.account("20000")
    api.order(mh, side="sell", quantity="0.5", price="100000")
    api.order(th, side="buy", quantity="0.5", price="100000")
    return (maker, mh), (taker, th)


@pytest.fixture(scope="session")
def postgres():
    try:
        cluster = PostgresCluster().start()
    except ServiceMissing as err:
        pytest.fail(f"PostgreSQL is required for these tests and could not be started: {err}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(postgres, request):
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:50]
    return postgres.create_database(name)

