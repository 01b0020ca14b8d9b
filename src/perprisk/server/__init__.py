"""The live paper exchange: the engine behind a REST + WebSocket API and a web dashboard (``perprisk serve``).

A thin interface layer: parsing, authentication, rate limits and JSON views.  Every rule is the engine's,
reached through one writer (:mod:`perprisk.server.service`).  Needs the ``server`` extras: fastapi, uvicorn,
and psycopg for PostgreSQL.
"""

from __future__ import annotations

from perprisk.server.config import ServerConfig, default_markets, load_config

__all__ = ["ServerConfig", "create_app", "default_markets", "load_config"]


def create_app(config: ServerConfig, service=None):  # noqa: ANN001, ANN201 - imported lazily (fastapi)
    from perprisk.server.app import create_app as _create_app

    return _create_app(config, service)
