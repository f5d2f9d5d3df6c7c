"""The trade simulator: a signal series in, fills, trades and an equity curve out.

Scope: one instrument, market orders only, one position at a time (long, short or flat, or
long-only). No stop-loss/take-profit, no margin calls, no partial fills, no order book: the
simulator answers "what would this signal series have earned" quickly and exactly. It is fully
vectorised numpy (no numba, so the first call is as fast as the others); nothing loops over
candles, and the only sequential part (fraction-of-equity sizing) is a cumulative product over
position changes.

Conventions (matched to backtesting.py 0.6.6 with ``exclusive_orders=True`` wherever the two
overlap; the parity tests in ``tests/backtest/test_parity.py`` hold them to 1e-9 relative):

* **Signals are actions.** ``+1`` BUY means "be long", ``-1`` SELL means "be short" (``flat``
  when ``long_only``), ``0`` HOLD means "keep what you hold". The target after bar ``i`` is the
  last non-zero signal up to ``i`` (flat before the first one), like a backtesting.py strategy
  that calls ``buy()`` / ``sell()`` (or ``position.close()`` when long-only) on each signal.
* **Fills.** ``fill="next_open"`` (default, backtesting.py's default): a signal decided on bar
  ``i``'s close fills at bar ``i + 1``'s open; a signal on the last bar is never filled.
  ``fill="close"`` (backtesting.py's ``trade_on_close=True``): it fills at bar ``i``'s own close.
  The fill's bar index is the trade's entry/exit bar, as backtesting.py's ``EntryBar``/``ExitBar``.
* **Fees** (backtesting.py's relative ``commission``): each fill pays
  ``fee * |units| * fill_price``; a reversal pays the closing and the opening leg.
* **Slippage** moves every fill against the trader: buys at ``price * (1 + slippage)``, sells at
  ``price * (1 - slippage)`` (vectorbt's ``slippage``). backtesting.py's ``spread`` is applied to
  entries only, so parity holds for ``slippage=0`` only.
* **Sizing.** ``size_mode="fixed"``: ``size`` units per position (backtesting.py's whole-unit
  ``size=N``). ``size_mode="fraction"``: ``size`` is the fraction of equity committed, fractional
  units allowed: ``units = size * equity / (fill_price * (1 + fee))`` with ``equity`` the account
  value right after the previous position is closed (backtesting.py instead floors to whole units).
* **Cash and equity.** Equity at a bar = cash + units x that bar's close; it already contains a
  fill made at that bar. A short adds its proceeds to cash. There is no margin check.
* **The end.** A position still open after the last bar is *marked to market* at the last close
  and reported as an open trade (``is_open``); no exit fee is charged. The final equity is then
  backtesting.py's ``Equity Final`` with ``finalize_trades=False`` and vectorbt's final value.
  (backtesting.py's ``finalize_trades=True`` instead re-fills at the last bar's *open*, a known
  hack of its event loop, which this simulator does not copy.)
* **backtesting.py quirk.** Its strategy's first ``next()`` runs on bar 1, so it never acts on a
  signal of bar 0; with ``trade_on_close`` it never fills the last bar's signal either. Give both
  the same signal series with ``signal[0] == 0`` (and ``signal[-1] == 0`` for ``fill="close"``) to
  compare.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from workbench.errors import ParameterError

FILL_MODES = ("next_open", "close")
SIZE_MODES = ("fixed", "fraction")


@dataclass(frozen=True)
class SimConfig:
    """How to turn signals into trades (see the module docstring for each convention)."""

    fee: float = 0.001  # per fill, fraction of traded value: 0.1% is a typical crypto taker fee
    slippage: float = 0.0
    fill: str = "next_open"  # the honest default: a decision at a close can only fill after it
    long_only: bool = False
    size_mode: str = "fixed"
    size: float = 1.0  # units when fixed, fraction of equity when fraction
    cash: float = 10_000.0

    def __post_init__(self):
        if self.fill not in FILL_MODES:
            raise ParameterError(f"fill {self.fill!r} is not known; known fills: "
                                 f"{', '.join(FILL_MODES)}")
        if self.size_mode not in SIZE_MODES:
            raise ParameterError(f"size mode {self.size_mode!r} is not known; known size modes: "
                                 f"{', '.join(SIZE_MODES)}")
        if not 0 <= self.fee < 0.1:
            raise ParameterError(f"fee {self.fee} must lie in [0, 0.1) (a fraction, 0.001 = 0.1%)")
        if not 0 <= self.slippage < 0.1:
            raise ParameterError(f"slippage {self.slippage} must lie in [0, 0.1) (a fraction)")
        if not self.size > 0 or (self.size_mode == "fraction" and self.size > 1):
            raise ParameterError(f"size {self.size} must be > 0 units (fixed) or in (0, 1] "
                                 "(fraction of equity)")
        if not self.cash > 0:
            raise ParameterError(f"cash {self.cash} must be > 0")


@dataclass
class SimResult:
    """What the simulator returns; arrays are aligned to the input bars.

    Attributes
    ----------
    equity : float64 (n,) account value at each bar's close.
    position : float64 (n,) signed units held at each bar's close.
    fill_idx, fill_units, fill_price, fill_fee : one entry per fill (position change): the bar,
        the signed units traded, the price paid (slippage included) and the fee.
    trades : dict of equal-length arrays, one entry per trade: ``entry_idx, exit_idx (-1 when
        open), size (signed units), entry_price, exit_price (last close when open), entry_fee,
        exit_fee, pnl (net of both fees), return_pct (backtesting.py's ReturnPct), is_open``.
    cash : final cash.
    """

    equity: np.ndarray
    position: np.ndarray
    fill_idx: np.ndarray
    fill_units: np.ndarray
    fill_price: np.ndarray
    fill_fee: np.ndarray
    trades: dict = field(default_factory=dict)
    cash: float = 0.0

    @property
    def final_equity(self) -> float:
        """The account value at the last close (an open position marked to market)."""
        return float(self.equity[-1])


def target_direction(signal: np.ndarray, long_only: bool = False) -> np.ndarray:
    """Return the int8 direction held after each bar: the last non-zero signal (0 before any).

    With ``long_only`` a SELL (-1) means flat (0).
    """
    sig = np.asarray(signal)
    n = sig.shape[0]
    acting = sig != 0
    last = np.where(acting, np.arange(n), -1)
    np.maximum.accumulate(last, out=last)
    wanted = np.maximum(sig, 0) if long_only else sig
    out = wanted.astype(np.int8)[last]
    out[last < 0] = 0
    return out


def _position_changes(signal: np.ndarray, long_only: bool, fill: str,
                      n: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the bars where the held direction changes and the new direction (int8).

    Works on the non-zero signals only: a signal that repeats the current target is no change.
    """
    events = np.flatnonzero(signal)
    wanted = signal[events]
    bad = np.flatnonzero((wanted != 1) & (wanted != -1))
    if bad.size:
        row = int(events[bad[0]])
        raise ParameterError(f"signal row {row} is {signal[row]!r}; signals must be -1 (SELL), "
                             "0 (HOLD) or 1 (BUY)")
    wanted = (np.maximum(wanted, 0) if long_only else wanted).astype(np.int8)
    previous = np.empty_like(wanted)
    previous[:1] = 0
    previous[1:] = wanted[:-1]
    keep = wanted != previous
    bars, direction = events[keep], wanted[keep]
    if fill == "next_open":
        bars = bars + 1
        if bars.size and bars[-1] >= n:  # decided on the last bar: there is no next open
            bars, direction = bars[:-1], direction[:-1]
    return bars, direction


def _check_inputs(open_: np.ndarray, close: np.ndarray, signal: np.ndarray) -> None:
    n = close.shape[0]
    if n == 0:
        raise ParameterError("cannot simulate an empty candle series")
    if open_.shape[0] != n or signal.shape[0] != n:
        raise ParameterError(f"open ({open_.shape[0]}), close ({n}) and signal "
                             f"({signal.shape[0]}) must have the same length")


def _entry_price(price, direction, cfg: SimConfig):
    """The price an entry in ``direction`` pays: slippage against the trader."""
    return price * (1.0 + cfg.slippage * direction)


def _exit_price(price, direction, cfg: SimConfig):
    """The price the exit of a position in ``direction`` gets: slippage against the trader."""
    return price * (1.0 - cfg.slippage * direction)


def _growth(direction, entry, exit_, cfg: SimConfig):
    """Factor by which a fraction-sized position (entry to exit, both fees) grows flat equity."""
    d = direction
    return 1.0 + d * cfg.size * (exit_ * (1.0 - d * cfg.fee) - entry * (1.0 + d * cfg.fee)) \
        / (entry * (1.0 + cfg.fee))


def _fraction_size(direction, entry, flat_equity, cfg: SimConfig):
    """Units of a fraction-sized position: ``size`` of flat equity, fee included."""
    return direction * cfg.size * flat_equity / (entry * (1.0 + cfg.fee))


def fill_costs(price, traded, cfg: SimConfig):
    """Return ``(fill_price, fee)`` of trading ``traded`` units (signed) at ``price``.

    The one fill rule of the simulator and its incremental twin :class:`SimStepper`: slippage
    moves the price against the trade, the fee is ``fee * |units| * fill_price``. Works on
    scalars and arrays alike.
    """
    fill_px = price * (1.0 + cfg.slippage * np.sign(traded))
    return fill_px, cfg.fee * np.abs(traded) * fill_px


def _fraction_units(direction: np.ndarray, price: np.ndarray, cfg: SimConfig) -> np.ndarray:
    """Units of each position under fraction-of-equity sizing, by a product over changes.

    With flat equity ``F_j`` before opening position ``j`` (direction ``d``, entry ``e``, exit
    ``x``), ``F_{j+1} = F_j * (1 + d f (x (1 - d fee) - e (1 + d fee)) / (e (1 + fee)))``.
    """
    if price.size == 0:  # no fill, no position: nothing to size
        return np.zeros(0)
    d = direction.astype(np.float64)
    entry = _entry_price(price, d, cfg)
    exit_ = np.empty_like(price)
    exit_[:-1] = _exit_price(price[1:], d[:-1], cfg)
    exit_[-1] = np.nan  # the last position is never closed by a later fill
    growth = _growth(d, entry, exit_, cfg)
    flat_equity = np.empty_like(price)
    flat_equity[0] = cfg.cash
    np.cumprod(growth[:-1], out=flat_equity[1:])
    flat_equity[1:] *= cfg.cash
    return _fraction_size(d, entry, flat_equity, cfg)


def trades_from_fills(direction, units, idx, fill_px, fees, close, cfg) -> dict:
    """Pair each opening fill with the next fill (its exit) into trade records."""
    opened = np.flatnonzero(direction != 0)
    size = units[opened]
    has_exit = opened + 1 < idx.shape[0]
    nxt = np.minimum(opened + 1, idx.shape[0] - 1)
    entry_price = fill_px[opened]
    exit_price = np.where(has_exit, fill_px[nxt], close[-1])
    # The fee of a reversal fill covers two legs; each trade carries its own leg's fee.
    entry_fee = cfg.fee * np.abs(size) * entry_price
    exit_fee = np.where(has_exit, cfg.fee * np.abs(size) * exit_price, 0.0)
    commissions = entry_fee + exit_fee
    return {
        "entry_idx": idx[opened],
        "exit_idx": np.where(has_exit, idx[nxt], -1),
        "size": size,
        "entry_price": entry_price,
        "exit_price": exit_price,
        "entry_fee": entry_fee,
        "exit_fee": exit_fee,
        "pnl": size * (exit_price - entry_price) - commissions,
        "return_pct": np.sign(size) * (exit_price / entry_price - 1.0)
        - commissions / (np.abs(size) * entry_price),
        "is_open": ~has_exit,
    }


def simulate(open_, close, signal, config: SimConfig | None = None) -> SimResult:
    """Simulate trading ``signal`` on candles with the given opens and closes.

    Parameters
    ----------
    open_, close : float64 arrays (n,) of candle opens and closes.
    signal : int array (n,) in {-1, 0, 1}, the action decided at each bar's close.
    config : the conventions to use; ``SimConfig()`` when ``None``.

    Returns
    -------
    SimResult

    Raises
    ------
    ParameterError
        When lengths differ, the series is empty or a signal is not -1, 0 or 1.
    """
    cfg = config or SimConfig()
    open_ = np.asarray(open_, dtype=np.float64)
    close = np.asarray(close, dtype=np.float64)
    signal = np.asarray(signal)
    _check_inputs(open_, close, signal)
    n = close.shape[0]
    idx, direction = _position_changes(signal, cfg.long_only, cfg.fill, n)
    price = (close if cfg.fill == "close" else open_)[idx]
    if cfg.size_mode == "fixed":
        units = direction * float(cfg.size)
    else:
        units = _fraction_units(direction, price, cfg)
    traded = np.diff(units, prepend=0.0)
    fill_px, fees = fill_costs(price, traded, cfg)
    cash = cfg.cash + np.cumsum(-traded * fill_px - fees)
    equity, position = _dense_curves(idx, units, cash, close, cfg.cash)
    return SimResult(equity=equity, position=position, fill_idx=idx, fill_units=traded,
                     fill_price=fill_px, fill_fee=fees,
                     trades=trades_from_fills(direction, units, idx, fill_px, fees, close, cfg),
                     cash=float(cash[-1]) if cash.size else float(cfg.cash))


def _dense_curves(idx, units, cash, close, initial_cash):
    """Spread the per-fill units and cash over the bars: both are constant between fills."""
    n = close.shape[0]
    first = int(idx[0]) if idx.size else n
    lengths = np.empty(idx.shape[0] + 1, dtype=np.int64)
    lengths[0] = first
    lengths[1:] = np.diff(idx, append=n)
    position = np.repeat(np.concatenate([[0.0], units]), lengths)
    equity = np.repeat(np.concatenate([[float(initial_cash)], cash]), lengths)
    equity += position * close
    return equity, position


class SimStepper:
    """The simulator one bar at a time: the same fill rules, sizing and cash arithmetic as
    :func:`simulate`, for callers that see bars as they close (a live session's PnL, the paper
    broker).

    Feed :meth:`on_bar` each bar with the signal decided at its close. The equity after each
    call, the fills and :meth:`result` are bit-identical to :func:`simulate` over the same bars
    and signals: both call the same helpers (:func:`fill_costs`, the fraction-sizing growth) in
    the same order, and cash is the initial cash plus a running sum of fill cash flows exactly
    as the vectorised ``cumsum`` adds them.
    """

    def __init__(self, config: SimConfig | None = None):
        self.cfg = config or SimConfig()
        self.units, self.held, self.target = 0.0, 0, 0
        self.fills, self.fees, self.bar = 0, 0.0, 0
        self.equity, self.last_close = float(self.cfg.cash), None
        self._flows = 0.0  # sum of fill cash flows, in fill order (the simulator's cumsum)
        self._entry, self._growth = None, None  # fraction sizing: last entry, growth product
        self.fill_rows: list[tuple] = []  # (bar, direction, units after, traded, price, fee)
        self.equity_curve: list[float] = []
        self.positions: list[float] = []

    @property
    def cash(self) -> float:
        """Cash now: initial cash plus every fill's cash flow."""
        return self.cfg.cash + self._flows

    def _units(self, direction: int, price: float) -> float:
        cfg = self.cfg
        if cfg.size_mode == "fixed":
            return direction * float(cfg.size)
        d = float(direction)
        flat = cfg.cash
        if self.fills:  # the previous position closes here: its growth joins the product
            g = _growth(float(self.held), self._entry, _exit_price(price, float(self.held), cfg),
                        cfg)
            self._growth = g if self.fills == 1 else self._growth * g
            flat = self._growth * cfg.cash
        self._entry = _entry_price(price, d, cfg)
        return _fraction_size(d, self._entry, flat, cfg)

    def _fill(self, direction: int, price: float) -> None:
        units = self._units(direction, price)
        traded = units - self.units
        px, fee = fill_costs(price, traded, self.cfg)
        self._flows += -traded * px - fee
        self.fill_rows.append((self.bar, direction, units, traded, float(px), float(fee)))
        self.units, self.held = units, direction
        self.fills += 1
        self.fees += float(fee)

    def on_bar(self, open_: float, close: float, signal: int) -> float:
        """Process one closed bar and the signal decided at its close; return the equity."""
        if signal not in (-1, 0, 1):
            raise ParameterError(f"signal at bar {self.bar} is {signal!r}; signals must be -1 "
                                 "(SELL), 0 (HOLD) or 1 (BUY)")
        next_open = self.cfg.fill == "next_open"
        if next_open and self.target != self.held:
            self._fill(self.target, open_)
        if signal:
            self.target = max(signal, 0) if self.cfg.long_only else int(signal)
        if not next_open and self.target != self.held:
            self._fill(self.target, close)
        self.equity = self.cash + self.units * close
        self.last_close = close
        self.equity_curve.append(self.equity)
        self.positions.append(self.units)
        self.bar += 1
        return self.equity

    def result(self) -> SimResult:
        """The bars so far as :func:`simulate` reports them (equal to it, bit for bit)."""
        if not self.bar:
            raise ParameterError("no bar has been simulated yet")
        rows = self.fill_rows
        idx = np.array([r[0] for r in rows], dtype=np.int64)
        direction = np.array([r[1] for r in rows], dtype=np.int8)
        units, traded, px, fee = (np.array([r[k] for r in rows], dtype=np.float64)
                                  for k in (2, 3, 4, 5))
        return SimResult(equity=np.array(self.equity_curve), position=np.array(self.positions),
                         fill_idx=idx, fill_units=traded, fill_price=px, fill_fee=fee,
                         trades=trades_from_fills(direction, units, idx, px, fee,
                                                  np.array([self.last_close]), self.cfg),
                         cash=float(self.cash))

    def summary(self) -> dict:
        """Equity, return, fills, fees and the position held."""
        return {"equity": self.equity, "return_pct": (self.equity / self.cfg.cash - 1.0) * 100,
                "fills": self.fills, "fees": self.fees, "position": self.units}
