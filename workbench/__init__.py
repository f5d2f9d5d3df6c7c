"""The quant research workbench.

Notebooks are thin; each drives these modules:

=========================  ==================================================================
notebook                   modules
=========================  ==================================================================
00_control_panel.ipynb     ui.panel → live.session, train.lock, backtest.engine, train.runs
01_data.ipynb              data.ingest, data.store, data.resample, features.indicators,
                           features.pivots, ui.plots, ui.tables
02_train.ipynb             train.runs, train.module, train.callbacks, ui.charts
03_live_session.ipynb      live.session, live.coordinator, live.feed, live.modes,
                           ui.live_chart, ui.plots
04_backtest.ipynb          backtest.engine, backtest.simulate, backtest.stats,
                           backtest.lookahead, ui.plots, ui.tables
05_price_model.ipynb       pricemodel.pipeline and its stages, ui.plots
06_ledger.ipynb            live.ledger, live.ledger_report, ui.ledger_page
=========================  ==================================================================

See ``docs/architecture.md`` for the data path and the contracts between the parts.
"""
__version__ = "0.1.0"
