"""``workbench price-model train``: the TensorFlow price-model pipeline (CNN + RNN).

TensorFlow is imported only when a command runs, so ``workbench --help`` stays fast. Progress
lines (stage timings, per-epoch losses, cache reuse) go to stdout, or to stderr with ``--json`` so
that stdout holds only the JSON result.
"""
from __future__ import annotations

import typer

from workbench.cli import _common
from workbench.errors import WorkbenchError

price_app = typer.Typer(help="TensorFlow price model (CNN + RNN): cached stages, tf.data, ONNX.",
                        no_args_is_help=True)


@price_app.command("train")
def train(
    symbol: str = typer.Argument(..., help="Stored symbol, e.g. ETH/USDT."),
    timeframe: str = typer.Option(..., "--timeframe", help="Candle timeframe, e.g. 1h "
                                  "(resampled from the finest stored one when not stored)."),
    start_date: str = typer.Option(..., "--start-date", help="First day, YYYY-MM-DD (UTC)."),
    end_date: str = typer.Option(..., "--end-date", help="Last day, YYYY-MM-DD (UTC, inclusive)."),
    epochs: int = typer.Option(300, "--epochs",
                               help="Max epochs (EarlyStopping usually ends sooner)."),
    batch_size: int = typer.Option(32, "--batch-size", help="Training batch size."),
    sequence_length: int = typer.Option(120, "--sequence-length", help="Window length in candles."),
    skip_plots: bool = typer.Option(False, "--skip-plots", help="Do not draw the PNG plots."),
    skip_robustness: bool = typer.Option(False, "--skip-robustness",
                                         help="Do not run the input-noise robustness check."),
    skip_onnx: bool = typer.Option(False, "--skip-onnx",
                                   help="Do not export model.onnx (nor check its parity)."),
    force_refresh: bool = typer.Option(False, "--force-refresh",
                                       help="Rebuild the ingestion cache even when it is valid."),
    no_mixed_precision: bool = typer.Option(False, "--no-mixed-precision",
                                            help="On a GPU, keep float32 and XLA auto-jit off."),
    no_xla: bool = typer.Option(False, "--no-xla",
                                help="Do not XLA-compile the train step (Keras' default)."),
    exog_file: str = typer.Option(None, "--exog-file", metavar="PATH",
                                  help="Parquet/CSV of extra features: ts (epoch ms) + numeric "
                                       "columns, joined as of each candle."),
    model_type: str = typer.Option("gru", "--model", help="Registered model type (gru, lstm)."),
    seed: int = typer.Option(42, "--seed", help="Random seed (weights, shuffle, noise)."),
    as_json: bool = _common.JSON_OPTION,
) -> None:
    """Train the Conv1D + GRU next-close model on SYMBOL and write a run directory."""
    from workbench.pricemodel.pipeline import TrainingConfig, run_training_pipeline

    config = TrainingConfig(
        symbol=symbol, timeframe=timeframe, start_date=start_date, end_date=end_date,
        epochs=epochs, batch_size=batch_size, sequence_length=sequence_length,
        skip_plots=skip_plots, skip_robustness=skip_robustness, skip_onnx=skip_onnx,
        force_refresh=force_refresh, mixed_precision=not no_mixed_precision, xla=not no_xla,
        exog_file=exog_file, model_type=model_type, seed=seed, db_path=str(_common.db_path()))

    def log(line: str) -> None:
        typer.echo(line, err=as_json)

    try:
        result = run_training_pipeline(config, log=log)
    except WorkbenchError as exc:
        _common.fail(exc)
    _common.emit(result.to_dict(), as_json, _human)


def _human(payload: dict) -> None:
    typer.echo(f"run {payload['run_id']} completed in {payload['total_s']:.1f} s; "
               f"test RMSE {payload['metrics']['rmse']:.4f}; artifacts in {payload['run_dir']}")


def register(app: typer.Typer) -> None:
    """Add the ``price-model`` command group to the root app."""
    app.add_typer(price_app, name="price-model")
