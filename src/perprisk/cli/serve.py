"""``perprisk serve``: the live paper exchange (FastAPI + uvicorn), loopback by default."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer

from perprisk.errors import ValidationError


def serve_command(
    host: Optional[str] = typer.Option(None, help="Address to listen on (default 127.0.0.1: loopback only)."),
    port: Optional[int] = typer.Option(None, help="Port (default 8000; 0 picks a free one)."),
    db: Optional[str] = typer.Option(None, help="sqlite:///PATH (default sqlite:///perprisk.db) or postgresql://..."),
    feed: Optional[str] = typer.Option(None, help="none | synthetic | a candle FILE replayed as marks."),
    feed_symbol: Optional[str] = typer.Option(None, help="Market the replayed file prices (default BTCUSDT)."),
    feed_speed: Optional[float] = typer.Option(
        None, help="Replay: times real time (60 = a 1-minute candle per second); synthetic: ticks per second."),
    feed_start: Optional[str] = typer.Option(None, help="Replay from this time (ms or ISO 8601, UTC)."),
    feed_paused: bool = typer.Option(False, "--feed-paused", help="Start with the feed paused (admin API starts it)."),
    feed_loop: bool = typer.Option(False, "--feed-loop", help="Replay the file again when it ends."),
    funding_interval: Optional[float] = typer.Option(
        None, help="Settle funding every N seconds from premium samples (default: off)."),
    insurance_seed: Optional[str] = typer.Option(None, help="Seed the insurance fund with this much USDT (new journal)."),
    snapshot_every: Optional[int] = typer.Option(None, help="Snapshot the engine every N commands (default 10000)."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file with these settings (flags override)."),
    access_log: bool = typer.Option(False, "--access-log", help="Log every HTTP request."),
    log_level: str = typer.Option("info", help="debug | info | warning | error"),
) -> None:
    """Run the live paper exchange: REST + WebSocket API, dashboard at /, OpenAPI at /docs.

    The admin key comes from the PERPRISK_ADMIN_KEY environment variable (or admin_key in --config)."""
    from decimal import Decimal, InvalidOperation

    try:
        import uvicorn

        from perprisk.server import create_app, load_config
    except ImportError as err:
        typer.echo(f"perprisk serve needs the server extras ({err.name} missing): "
                   "pip install fastapi uvicorn 'psycopg[binary]'", err=True)
        raise typer.Exit(2) from None
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        seed = None
        if insurance_seed is not None:
            try:
                seed = Decimal(insurance_seed)
            except InvalidOperation:
                raise ValidationError("insurance_seed", f"not a decimal number: {insurance_seed!r}") from None
        settings = load_config(
            config, host=host, port=port, db=db, feed=feed, feed_symbol=feed_symbol, feed_speed=feed_speed,
            feed_start=feed_start, feed_paused=feed_paused or None, feed_loop=feed_loop or None,
            funding_interval_seconds=funding_interval, insurance_seed=seed, snapshot_every=snapshot_every,
            access_log=access_log or None, log_level=log_level,
        )
        app = create_app(settings)
    except ValidationError as err:
        typer.echo(f"error: {err.field}: {err.message}", err=True)
        raise typer.Exit(2) from None
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level.lower(),
                access_log=settings.access_log, lifespan="on", ws_max_size=65536)


from perprisk.cli import app  # noqa: E402  (perprisk.cli imports this module after defining app)

app.command("serve")(serve_command)
