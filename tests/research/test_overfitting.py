"""DSR, PBO and bootstrap intervals: the papers' numbers and their behaviour on simulated trials."""
from __future__ import annotations

import math

import numpy as np
import pytest

from workbench.errors import ParameterError
from workbench.research import overfitting as of


def test_dsr_matches_the_papers_numerical_example():
    # Bailey & Lopez de Prado (2014), section "A numerical example": 5 years of daily returns
    # (T = 1250), N = 100 trials whose annualised Sharpe ratios have variance 1/2, the selected
    # strategy's annualised SR 2.5, skewness -3, kurtosis 10: SR0 ~ 0.1132, DSR ~ 0.9004.
    threshold = of.expected_max_sharpe(100, 0.5 / 250)
    assert threshold == pytest.approx(0.1132, abs=5e-4)
    dsr = of.probabilistic_sharpe(2.5 / math.sqrt(250), threshold, 1250, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=1e-3)


def test_expected_max_sharpe_grows_with_trials_and_is_zero_for_one():
    assert of.expected_max_sharpe(1, 1.0) == 0.0
    values = [of.expected_max_sharpe(n, 1.0) for n in (2, 10, 100, 1000)]
    assert values == sorted(values) and values[-1] > 3.0


def _noise_trials(rng, n_obs=500, n_trials=20):
    return rng.normal(0.0, 0.01, size=(n_obs, n_trials))


def test_best_noise_trial_dsr_rejects_at_about_the_nominal_rate():
    rng = np.random.default_rng(7)
    rejections = 0
    experiments = 300
    for _ in range(experiments):
        m = _noise_trials(rng)
        srs = np.array([of.sharpe_per_obs(m[:, j]) for j in range(m.shape[1])])
        best = int(np.argmax(srs))
        rejections += of.deflated_sharpe(m[:, best], srs).deflated_sharpe > 0.95
    rate = rejections / experiments
    assert rate < 0.12, rate  # nominal 5 %; the un-deflated PSR would reject far more often


def test_undeflated_psr_of_the_best_noise_trial_rejects_much_more_often():
    rng = np.random.default_rng(7)
    hits = 0
    for _ in range(200):
        m = _noise_trials(rng)
        srs = np.array([of.sharpe_per_obs(m[:, j]) for j in range(m.shape[1])])
        r = m[:, int(np.argmax(srs))]
        hits += of.probabilistic_sharpe(srs.max(), 0.0, r.size, 0.0, 3.0) > 0.95
    assert hits / 200 > 0.4


def test_pbo_of_pure_noise_is_near_one_half():
    rng = np.random.default_rng(3)
    values = [of.pbo(_noise_trials(rng, 400, 16), n_blocks=8).pbo for _ in range(20)]
    assert 0.35 < float(np.mean(values)) < 0.65


def test_pbo_falls_toward_zero_with_one_truly_better_strategy():
    rng = np.random.default_rng(3)
    m = _noise_trials(rng, 400, 16)
    m[:, 5] += 0.004  # a real edge: 0.4 per-bar Sharpe
    result = of.pbo(m, n_blocks=8)
    assert result.pbo < 0.05 and result.n_splits == 70
    assert np.all(np.isfinite(result.logits))


def test_pbo_refuses_odd_blocks_and_short_series():
    m = np.zeros((50, 3))
    with pytest.raises(ParameterError, match="even number"):
        of.pbo(m, n_blocks=5)
    with pytest.raises(ParameterError, match="at least 40"):
        of.pbo(m[:30], n_blocks=20)
    with pytest.raises(ParameterError, match="N >= 2"):
        of.pbo(m[:, :1])


def test_bootstrap_ci_covers_the_truth_and_narrows_with_length():
    rng = np.random.default_rng(1)
    short = rng.normal(0.1, 1.0, 300)
    long_ = rng.normal(0.1, 1.0, 3000)
    lo_s, hi_s = of.bootstrap_ci(short, of.sharpe_per_obs, draws=300, seed=0)
    lo_l, hi_l = of.bootstrap_ci(long_, of.sharpe_per_obs, draws=300, seed=0)
    assert lo_l < 0.1 < hi_l
    assert hi_l - lo_l < hi_s - lo_s
    out = of.return_intervals(long_, draws=200)
    assert out["hit_rate_ci"][0] < out["hit_rate"] < out["hit_rate_ci"][1]


def test_luck_sentence_says_it_in_words():
    assert of.luck_sentence(0.9, 40) == ("After 40 tries, the chance this best result is luck "
                                         "is 10%.")
    assert of.luck_sentence(0.5, 1).startswith("After 1 try,")
    assert "cannot be estimated" in of.luck_sentence(float("nan"), 3)
