"""Is the model any good? Baselines, walk-forward folds, sweeps and overfitting-aware statistics.

==============  ==================================================================================
baselines.py    flat, buy & hold, last-move persistence, SMA(20/50) crossover and random entries
                at the model's trade frequency; the verdict sentence
folds.py        walk-forward fold index ranges (rolling or expanding, purge, embargo): pure
evaluate.py     ``evaluate``: one fresh run per fold, its out-of-sample backtest, baselines beside
sweep.py        ``sweep``: Optuna proposes, Ray runs the trials, DuckDB keeps them
overfitting.py  Deflated Sharpe Ratio, PBO by CSCV, bootstrap confidence intervals
==============  ==================================================================================

This package sits above ``backtest`` and ``train`` and calls them through their public functions.
"""
