"""``workbench exchange-sim``: serve recorded candles as a local exchange (Binance formats).

``workbench exchange-sim --data FILE --symbol S --timeframe TF --port P [--speed max|Nx]
[--faults drop,duplicate,reorder,disconnect,429] [--start-index N] [--seed N]`` serves the
candles of FILE (any layout ``workbench ingest`` reads) on 127.0.0.1 until interrupted. It prints
one line ``listening on http://127.0.0.1:<port>`` first (``--port 0`` picks a free port), so a
script can read the URL to pass as ``workbench live --source exchange --exchange-url URL``.
"""
from __future__ import annotations

import asyncio

import typer

from workbench.cli import _common
from workbench.errors import WorkbenchError


def exchange_sim(
    data: str = typer.Option(..., "--data", metavar="FILE", help="Candle file to serve."),
    symbol: str = typer.Option(..., "--symbol", help="Unified symbol, e.g. ETH/USDT."),
    timeframe: str = typer.Option(..., "--timeframe", help="Timeframe of the file, e.g. 1m."),
    port: int = typer.Option(8765, "--port", help="TCP port on 127.0.0.1 (0: any free port)."),
    speed: str = typer.Option("max", "--speed", help="Sim clock pace: max or Nx real time."),
    faults: str = typer.Option("", "--faults",
                               help="Comma list of drop, duplicate, reorder, disconnect, 429."),
    start_index: int = typer.Option(None, "--start-index",
                                    help="First candle not closed at start (default: half)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the fault generator."),
) -> None:
    """Serve a candle file as a local exchange until interrupted (Ctrl-C)."""
    from workbench.data.ingest import read_candles, validate_candles
    from workbench.exchange.sim import ExchangeSim, ExchangeSimConfig, parse_faults, urls
    from workbench.live.session import parse_speed

    try:
        candles, _ = validate_candles(read_candles(data), timeframe, data)
        sim = ExchangeSim(candles, ExchangeSimConfig(
            symbol, timeframe, parse_speed(speed), parse_faults(faults), start_index, seed,
            port=port))
    except WorkbenchError as exc:
        _common.fail(exc)

    def ready(bound: int) -> None:
        typer.echo(f"listening on {urls(bound)}  ({symbol} {timeframe}, {candles.height} "
                   f"candles, live from row {sim.start_index}, faults: "
                   f"{','.join(sorted(sim.cfg.faults)) or 'none'})")

    try:
        asyncio.run(sim.serve(ready))
    except KeyboardInterrupt:
        typer.echo("stopped", err=True)
    except OSError as exc:  # the port is taken, say
        typer.secho(f"error: cannot serve on 127.0.0.1:{port} ({exc})", fg=typer.colors.RED,
                    err=True)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    """Add ``workbench exchange-sim`` to the root app."""
    app.command("exchange-sim")(exchange_sim)
