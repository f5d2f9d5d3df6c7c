"""Seed 000's concurrency audit: batch training, per-candle training and inference on one model.

The original bug: batch training and per-candle training updated the same weights at once and
crashed with "one of the variables needed for gradient computation has been modified by an
inplace operation" (a tensor version mismatch). :func:`run_stress` runs, on one model and for a
given time,

* batch training ("Train Model", :func:`workbench.live.batch.start_batch_training`) in one thread;
* a live session in mode ``every_candle`` (one step per candle) in another;
* inference (``ModelHandle.predict``) in a third;

and returns a report: every exception of any thread, whether the weights are finite, and the
audit of published snapshots. The model is wrapped in :class:`AuditedHandle`, whose ``publish``
records, for each version, a checksum of the published weights, whether the trainer's weights
equalled them (a torn copy would not) and whether the training lock was held, plus the
prediction of that version on a fixed probe window. The inference thread predicts on the probe
window between random windows; each probe result must equal, bit for bit, the recorded
prediction of the version it reports, so every probe prediction is proven to come from a
complete published version. ``bench/live.py`` runs it for 60 s, the tests for a few seconds.
"""
from __future__ import annotations

import hashlib
import time
import traceback
from dataclasses import dataclass

import numpy as np
import torch

from workbench.features.windows import gather_windows
from workbench.jobs import CallableJob
from workbench.live.modes import TrainingMode
from workbench.train.handle import ModelHandle


def weights_checksum(model: torch.nn.Module) -> str:
    """Return a blake2b digest of every parameter and buffer of ``model``, in state order."""
    digest = hashlib.blake2b(digest_size=16)
    for name, value in model.state_dict().items():
        digest.update(name.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class AuditedHandle(ModelHandle):
    """A :class:`ModelHandle` whose every published version is recorded and checked.

    ``records[version] = (checksum, probe_probs, probe_candle)``; ``violations`` lists the
    versions published without the training lock held or from weights that changed while they
    were being copied.
    """

    def set_probe(self, window: np.ndarray) -> None:
        """Fix the probe window (1, N, 8) and record version 0."""
        self.probe = np.ascontiguousarray(window, dtype=np.float32)
        self.records: dict[int, tuple] = {}
        self.violations: list[str] = []
        self._audit(self.version, self._snapshot.model)

    def _audit(self, version: int, frozen: torch.nn.Module) -> None:
        with torch.inference_mode():
            logits, candle = frozen(torch.as_tensor(self.probe))
        probs = torch.softmax(logits.float(), 1).numpy()
        self.records[version] = (weights_checksum(frozen), probs, candle.float().numpy())

    def publish(self, model=None) -> int:
        """Publish (with the lock held, as every caller must) and record the new version."""
        held = self.lock.locked()
        version = super().publish(model)
        frozen = self._snapshot.model
        if not held:
            self.violations.append(f"version {version} published without the training lock")
        if weights_checksum(self.model) != weights_checksum(frozen):
            self.violations.append(f"version {version}: trainer weights changed during publish")
        self._audit(version, frozen)
        return version


@dataclass
class StressConfig:
    """Duration and sizes of a stress run (tiny by default; the bench uses the defaults' model)."""

    duration_s: float = 3.0
    symbol: str = "ETH/USDT"
    timeframe: str = "1m"
    batch_size: int = 32
    max_windows: int = 2000
    lock_timeout: float = 60.0


def _guarded(name: str, errors: list, fn) -> CallableJob:
    """A job running ``fn`` whose exception, with its traceback, lands in ``errors``."""
    def report(exc: Exception) -> None:
        errors.append({"thread": name, "error": repr(exc),
                       "traceback": traceback.format_exc()[-2000:]})
    return CallableJob(f"stress-{name}", fn, on_error=report)


def _batch_thread(handle, store, cfg: StressConfig, deadline: float, out: dict):
    from workbench.live.batch import start_batch_training

    overrides = {"training.num_epochs": 1000, "training.batch_size": cfg.batch_size,
                 "data.max_windows": cfg.max_windows, "callbacks.early_stopping.enabled": False,
                 "callbacks.tensorboard": False, "callbacks.progress": False,
                 "callbacks.lr_scheduler.enabled": False}
    run = start_batch_training(handle, store, cfg.symbol, cfg.timeframe, overrides=overrides)
    out["run_id"] = run.run_id
    while time.monotonic() < deadline and not run.done():
        time.sleep(0.05)
    run.stop()
    record = run.wait(600)
    out.update(status=record.get("status"), global_step=record.get("global_step"))


def _session_thread(handle, store, cfg: StressConfig, deadline: float, out: dict, errors: list):
    from workbench.live.session import LiveSession, SessionConfig

    frame = store.read_ohlcv(cfg.symbol, cfg.timeframe)
    ts = frame["ts"].to_numpy()
    out.update(candles=0, steps=0, sessions=0, errors=0, lock_waits=0)
    first = handle.window
    while time.monotonic() < deadline:
        session = LiveSession(handle, store, cfg.symbol, cfg.timeframe, TrainingMode.EVERY_CANDLE,
                              int(ts[first]), int(ts[-1]),
                              config=SessionConfig(lock_timeout=cfg.lock_timeout,
                                                   session_id=f"stress-{out['sessions']}"))
        session.add_update_hook(lambda s, info: time.monotonic() > deadline and s.feed.stop())
        stats = session.run()
        for key, name in (("candles", "candles"), ("steps", "training_steps"),
                          ("errors", "errors"), ("lock_waits", "lock_waits")):
            out[key] += stats[name]
        errors.extend({"thread": "session", "error": e["error"]} for e in stats["recent_errors"])
        out["sessions"] += 1


def _inference_thread(handle, windows: np.ndarray, deadline: float, out: dict):
    rng = np.random.default_rng(0)
    out.update(predictions=0, probes=0, probe_mismatches=[], versions=set())
    while time.monotonic() < deadline:
        probe = out["predictions"] % 2 == 0
        x = handle.probe if probe else windows[rng.integers(0, len(windows), size=8)]
        pred = handle.predict(x)
        out["predictions"] += 1
        out["versions"].add(pred.model_version)
        if not np.isfinite(pred.action_probs).all():
            out["probe_mismatches"].append(f"non-finite prediction at v{pred.model_version}")
        if probe:
            out["probes"] += 1
            record = _record_of(handle, pred.model_version)
            if record is None or not (np.array_equal(record[1], pred.action_probs)
                                      and np.array_equal(record[2], pred.candle)):
                diff = (None if record is None
                        else float(np.abs(record[1] - pred.action_probs).max()))
                out["probe_mismatches"].append(f"version {pred.model_version} (max diff {diff})")


def _record_of(handle, version: int, timeout: float = 10.0):
    """The audit record of ``version``; its publisher writes it just after swapping it in."""
    end = time.monotonic() + timeout
    while (record := handle.records.get(version)) is None and time.monotonic() < end:
        time.sleep(0.0005)
    return record


def run_stress(config, store, cfg: StressConfig | None = None) -> dict:
    """Run the three threads on one fresh :class:`AuditedHandle` of ``config``; return a report.

    ``config`` is a :class:`~workbench.train.config.TrainConfig` (its model section is used);
    ``store`` must hold ``cfg.symbol``/``cfg.timeframe``. The report's ``ok`` is True when no
    thread raised, the weights are finite, no publish violated the audit and every probe
    prediction matched its version's record.
    """
    cfg = cfg or StressConfig()
    torch.set_num_threads(1)
    handle = AuditedHandle.from_config(config)
    series = store.read_ohlcv(cfg.symbol, cfg.timeframe)
    from workbench.features.windows import candle_features

    feats = candle_features(*series.select("open", "high", "low", "close", "volume")
                            .to_numpy().T)
    rows = np.arange(handle.window - 1, min(len(feats), handle.window + 255))
    windows, _ = gather_windows(feats, rows, handle.window)
    handle.set_probe(windows[:1])
    errors: list = []
    parts = {"batch": {}, "session": {}, "inference": {}}
    t0 = time.monotonic()
    deadline = t0 + cfg.duration_s
    jobs = [_guarded("batch", errors,
                     lambda: _batch_thread(handle, store, cfg, deadline, parts["batch"])),
            _guarded("session", errors,
                     lambda: _session_thread(handle, store, cfg, deadline, parts["session"],
                                             errors)),
            _guarded("inference", errors,
                     lambda: _inference_thread(handle, windows, deadline, parts["inference"]))]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join()
    return _report(handle, parts, errors, time.monotonic() - t0)


def _report(handle: AuditedHandle, parts: dict, errors: list, elapsed: float) -> dict:
    finite = all(bool(torch.isfinite(p).all()) for p in handle.model.parameters())
    snap_finite = all(bool(torch.isfinite(v).all()) for v in
                      handle.state_dict_snapshot().values() if v.is_floating_point())
    inf = parts["inference"]
    inf["versions_seen"] = len(inf.pop("versions", ()))
    ok = (not errors and finite and snap_finite and not handle.violations
          and not inf.get("probe_mismatches") and inf.get("probes", 0) > 0
          and parts["session"].get("errors", 1) == 0)
    return {"ok": ok, "elapsed_s": round(elapsed, 3), "errors": errors,
            "weights_finite": finite and snap_finite, "violations": handle.violations,
            "versions_published": handle.version, "lock": handle.lock.stats(),
            "lock_sessions": {s: handle.lock.stats(s) for s in handle.lock.sessions()},
            **parts}
