"""Walk-forward fold ranges: no training label reaches a row the test window reads (property)."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.errors import ParameterError
from workbench.research.folds import fold_ranges, min_purge


@settings(max_examples=300, deadline=None)
@given(n_rows=st.integers(50, 5000), folds=st.integers(1, 6), window=st.integers(2, 40),
       horizon=st.integers(1, 5), extra=st.integers(0, 10), embargo=st.integers(0, 20),
       scheme=st.sampled_from(["rolling", "expanding"]), frac=st.floats(0.1, 1.0))
def test_no_training_label_overlaps_the_test_inputs(n_rows, folds, window, horizon, extra,
                                                   embargo, scheme, frac):
    purge = min_purge(window, horizon) + extra
    try:
        base = fold_ranges(n_rows, folds, purge=purge, embargo=embargo, scheme=scheme)
    except ParameterError:
        return  # too few rows for these folds: refused, never wrong
    train_size = max(1, int(base[0].train_end * frac))
    out = fold_ranges(n_rows, folds, purge=purge, embargo=embargo, scheme=scheme,
                      train_size=train_size)
    assert len(out) == folds and out[-1].test_end == n_rows
    for f in out:
        assert 0 <= f.train_start < f.train_end <= f.test_start < f.test_end <= n_rows
        last_label_row = f.train_end - 1 + horizon
        first_test_input = f.test_start - window + 1
        assert last_label_row < first_test_input
        for g in out[f.index + 1:]:  # later test windows start after this one and its embargo
            assert g.test_start >= f.test_end + embargo
    sizes = [f.train_end - f.train_start for f in out]
    if scheme == "rolling":
        assert set(sizes) == {train_size}
    else:
        assert len({f.train_start for f in out}) == 1 and sizes == sorted(sizes)


def test_three_rolling_folds_by_hand():
    out = fold_ranges(1000, 3, test_size=100, train_size=500, purge=10)
    assert [(f.train_start, f.train_end, f.test_start, f.test_end) for f in out] == [
        (190, 690, 700, 800), (290, 790, 800, 900), (390, 890, 900, 1000)]


def test_refusals_name_the_parameter():
    with pytest.raises(ParameterError, match="scheme 'sliding'"):
        fold_ranges(1000, 3, scheme="sliding")
    with pytest.raises(ParameterError, match="train_size 900 does not fit"):
        fold_ranges(1000, 3, test_size=100, train_size=900)
    with pytest.raises(ParameterError, match="too few"):
        fold_ranges(3, 3)
