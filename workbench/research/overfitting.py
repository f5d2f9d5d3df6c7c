"""Statistics that account for how many things were tried: DSR, PBO and bootstrap intervals.

* :func:`deflated_sharpe` is the Deflated Sharpe Ratio of Bailey & López de Prado (2014), "The
  Deflated Sharpe Ratio: Correcting for Selection Bias, Backtest Overfitting and Non-Normality".
  It is the probability that the true Sharpe ratio of the best of ``n_trials`` strategies exceeds
  the Sharpe ratio the best of ``n_trials`` *worthless* strategies would show by luck
  (:func:`expected_max_sharpe`), given the track length and the returns' skewness and kurtosis.
* :func:`pbo` is the Probability of Backtest Overfitting by combinatorially symmetric
  cross-validation (CSCV) of Bailey, Borwein, López de Prado & Zhu (2015), "The Probability of
  Backtest Overfitting": how often the configuration that is best in-sample ranks below the
  median out of sample.
* :func:`bootstrap_ci` gives moving-block bootstrap confidence intervals (blocks keep the
  returns' serial dependence) for the Sharpe ratio and the hit rate.

All Sharpe ratios here are *per observation* (not annualised), as in both papers.
Pure numpy; the normal distribution is the standard library's :class:`statistics.NormalDist`.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

from workbench.errors import ParameterError

#: the Euler-Mascheroni constant of the expected-maximum formula
EULER_GAMMA = 0.5772156649015329
_N = NormalDist()


def sharpe_per_obs(returns) -> float:
    """Return mean / std (ddof=1) of ``returns``; 0 for a constant series, NaN under 2 values."""
    r = np.asarray(returns, dtype=np.float64)
    if r.size < 2:
        return float("nan")
    sd = r.std(ddof=1)
    return 0.0 if sd == 0 else float(r.mean() / sd)


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Return E[max SR] of ``n_trials`` independent zero-skill trials (the DSR's threshold SR0).

    ``sqrt(V) * ((1 - g) * Z^-1(1 - 1/N) + g * Z^-1(1 - 1/(N e)))`` with ``g`` the
    Euler-Mascheroni constant (the paper's eq. for the expected maximum of N Gaussians).
    One trial has nothing to be selected from: 0.
    """
    if n_trials < 1:
        raise ParameterError(f"n_trials {n_trials} must be >= 1")
    if n_trials == 1:
        return 0.0
    z1 = _N.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _N.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return math.sqrt(max(sharpe_variance, 0.0)) * ((1 - EULER_GAMMA) * z1 + EULER_GAMMA * z2)


def probabilistic_sharpe(sharpe: float, threshold: float, n_obs: int, skew: float,
                         kurtosis: float) -> float:
    """Return PSR: P(true SR > ``threshold``) given an observed per-observation ``sharpe``.

    ``kurtosis`` is the plain (non-excess) kurtosis: 3 for normal returns.
    """
    if n_obs < 2:
        return float("nan")
    denom = 1.0 - skew * sharpe + (kurtosis - 1.0) / 4.0 * sharpe ** 2
    if not denom > 0:
        return float("nan")
    return _N.cdf((sharpe - threshold) * math.sqrt(n_obs - 1) / math.sqrt(denom))


def _moments(r: np.ndarray) -> tuple[float, float]:
    sd = r.std()
    if sd == 0:
        return 0.0, 3.0
    z = (r - r.mean()) / sd
    return float(np.mean(z ** 3)), float(np.mean(z ** 4))


@dataclass(frozen=True)
class DeflatedSharpe:
    """The DSR of a selected strategy and the numbers it was computed from."""

    deflated_sharpe: float  # probability that the best trial's skill is real
    sharpe: float  # per observation
    threshold: float  # expected max SR of n_trials zero-skill trials
    n_trials: int
    n_obs: int
    skew: float
    kurtosis: float

    def to_dict(self) -> dict:
        return asdict(self)


def deflated_sharpe(best_returns, trial_sharpes, n_trials: int | None = None) -> DeflatedSharpe:
    """Return the DSR of the strategy with returns ``best_returns``, selected among trials.

    Parameters
    ----------
    best_returns : per-bar returns of the selected (best) trial.
    trial_sharpes : the per-observation Sharpe ratio of every trial (the selected one included);
        their variance is the V of :func:`expected_max_sharpe`.
    n_trials : N, the number of configurations tried (default: the number of Sharpe ratios);
        count pruned and failed trials too, they were tries.
    """
    r = np.asarray(best_returns, dtype=np.float64)
    srs = np.asarray(trial_sharpes, dtype=np.float64)
    srs = srs[np.isfinite(srs)]
    if r.size < 3 or srs.size < 1:
        raise ParameterError("the DSR needs at least 3 returns and one finite trial Sharpe")
    sr = sharpe_per_obs(r)
    var = float(srs.var(ddof=1)) if srs.size > 1 else 0.0
    n = max(int(n_trials or 0), int(srs.size))
    threshold = expected_max_sharpe(n, var)
    skew, kurt = _moments(r)
    dsr = probabilistic_sharpe(sr, threshold, int(r.size), skew, kurt)
    return DeflatedSharpe(dsr, sr, threshold, n, int(r.size), skew, kurt)


def _cscv_blocks(n_rows: int, n_blocks: int) -> list[np.ndarray]:
    if n_blocks < 2 or n_blocks % 2:
        raise ParameterError(f"CSCV needs an even number of blocks >= 2, got {n_blocks}")
    if n_rows < 2 * n_blocks:
        raise ParameterError(f"CSCV with {n_blocks} blocks needs at least {2 * n_blocks} "
                             f"observations, got {n_rows}")
    return np.array_split(np.arange(n_rows), n_blocks)


def _sharpe_columns(m: np.ndarray) -> np.ndarray:
    sd = m.std(axis=0, ddof=1)
    return np.where(sd > 0, m.mean(axis=0) / np.where(sd > 0, sd, 1.0), 0.0)


@dataclass(frozen=True)
class PBOResult:
    """The CSCV outcome: the PBO and the logits it counts."""

    pbo: float  # share of splits whose in-sample best ranks at or below the OOS median
    logits: np.ndarray  # one per split: log(w / (1 - w)) of the relative OOS rank w
    n_splits: int


def pbo(returns, n_blocks: int = 10) -> PBOResult:
    """Return the Probability of Backtest Overfitting of a (T, N) matrix of trial returns.

    The T rows (time) are cut into ``n_blocks`` contiguous blocks; every choice of half the
    blocks is an in-sample set and the rest its out-of-sample set. For each, the trial with the
    best in-sample Sharpe is ranked out of sample; ``w = rank / (N + 1)`` and the split counts as
    overfit when the logit ``log(w / (1 - w)) <= 0`` (best in-sample, at most median OOS).
    """
    m = np.asarray(returns, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] < 2:
        raise ParameterError(f"PBO needs a (T, N) matrix with N >= 2 trials, got {m.shape}")
    if not np.isfinite(m).all():
        raise ParameterError("PBO: the return matrix holds non-finite values")
    blocks = _cscv_blocks(m.shape[0], n_blocks)
    logits = []
    for chosen in itertools.combinations(range(n_blocks), n_blocks // 2):
        is_rows = np.concatenate([blocks[i] for i in chosen])
        oos_rows = np.concatenate([blocks[i] for i in range(n_blocks) if i not in chosen])
        best = int(np.argmax(_sharpe_columns(m[is_rows])))
        oos = _sharpe_columns(m[oos_rows])
        rank = 1 + np.sum(oos < oos[best]) + 0.5 * (np.sum(oos == oos[best]) - 1)
        w = rank / (m.shape[1] + 1)
        logits.append(math.log(w / (1 - w)))
    arr = np.asarray(logits)
    return PBOResult(float(np.mean(arr <= 0)), arr, int(arr.size))


def _block_indices(n: int, block: int, rng: np.random.Generator) -> np.ndarray:
    starts = rng.integers(0, n - block + 1, size=-(-n // block))
    return (starts[:, None] + np.arange(block)).ravel()[:n]


def bootstrap_ci(values, statistic, *, draws: int = 1000, block: int = 20, level: float = 0.95,
                 seed: int = 0) -> tuple[float, float]:
    """Return the ``level`` percentile interval of ``statistic`` under a moving-block bootstrap.

    Blocks of ``block`` consecutive values are resampled with replacement, which keeps the
    serial dependence of bar returns that an i.i.d. bootstrap would destroy.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2:
        return float("nan"), float("nan")
    block = max(1, min(block, v.size))
    rng = np.random.default_rng(seed)
    stats = np.array([statistic(v[_block_indices(v.size, block, rng)]) for _ in range(draws)])
    stats = stats[np.isfinite(stats)]
    if stats.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(stats, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def hit_rate(returns) -> float:
    """Share of non-zero returns that are positive (NaN when every return is zero)."""
    r = np.asarray(returns, dtype=np.float64)
    moved = r[r != 0]
    return float(np.mean(moved > 0)) if moved.size else float("nan")


def return_intervals(returns, *, draws: int = 1000, seed: int = 0) -> dict:
    """Return the Sharpe (per bar) and hit rate of ``returns`` with their bootstrap 95 % CIs."""
    return {"sharpe": sharpe_per_obs(returns),
            "sharpe_ci": bootstrap_ci(returns, sharpe_per_obs, draws=draws, seed=seed),
            "hit_rate": hit_rate(returns),
            "hit_rate_ci": bootstrap_ci(returns, hit_rate, draws=draws, seed=seed)}


def luck_sentence(dsr: float, n_trials: int) -> str:
    """Say in words, as a sentence, how likely the best of ``n_trials`` is luck (1 - DSR)."""
    tries = f"{n_trials} {'try' if n_trials == 1 else 'tries'}"
    if not math.isfinite(dsr):
        return f"After {tries}, the chance the best result is luck cannot be estimated."
    return f"After {tries}, the chance this best result is luck is {1 - dsr:.0%}."
