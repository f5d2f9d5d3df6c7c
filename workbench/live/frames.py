"""Packed frame storage for the coordinator: per-frame columns and key indexes.

Frames live as rows of preallocated numpy columns used as a ring (about 70 bytes a frame), never
as Python objects; :class:`~workbench.live.coordinator.InferenceFrameReference` objects are built
from a row on demand. Matching a candle or a pivot to its frames is O(frames matched): small hash
rings keyed by target ts and by window-end row link the frames of one key through an int32 column
(an intrusive linked list).
"""
from __future__ import annotations

import numpy as np


def pow2_capacity(n: int) -> int:
    """Return the smallest power of two >= n (at least 16): ring sizes index with a bit mask."""
    return 1 << max(4, int(n - 1).bit_length())


class KeyIndex:
    """Frames grouped by an int64 key: a hash ring of heads plus a per-frame link column.

    ``head[b]`` is the newest frame id of the key stored in ``keys[b]``; the frame's link is the
    distance back to the previous frame of the same key (0 = none). A bucket is free when its head
    was evicted (id < oldest live id) or when ``dead(key)`` says its key can never be asked for
    again. A collision with a live key doubles the ring and re-inserts the live frames.
    """

    __slots__ = ("keys", "head", "mask", "divisor")

    def __init__(self, size: int, divisor: int = 1):
        self.divisor = divisor
        self._alloc(size)

    def _alloc(self, size: int) -> None:
        size = pow2_capacity(size)
        self.keys = np.full(size, -1, dtype=np.int64)
        self.head = np.full(size, -1, dtype=np.int64)
        self.mask = size - 1

    def bucket(self, key: int) -> int:
        return (key // self.divisor) & self.mask

    def insert(self, fid: int, key: int, links: np.ndarray, slot: int, oldest: int,
               dead_below: int) -> bool:
        """Link frame ``fid`` under ``key``; return False on a collision (caller rebuilds)."""
        b = (key // self.divisor) & self.mask
        k, h = int(self.keys[b]), int(self.head[b])
        if k == key and h >= oldest:
            links[slot] = fid - h
        elif h < oldest or k < dead_below or k == key:
            links[slot] = 0
            self.keys[b] = key
        else:
            return False
        self.head[b] = fid
        return True

    def lookup(self, key: int, links: np.ndarray, mask: int, oldest: int) -> list[int]:
        """Return the live frame ids of ``key`` in registration order."""
        b = (key // self.divisor) & self.mask
        if int(self.keys[b]) != key:
            return []
        fid, out = int(self.head[b]), []
        while fid >= oldest:
            out.append(fid)
            step = int(links[fid & mask])
            if step == 0:
                break
            fid -= step
        out.reverse()
        return out


class FrameColumns:
    """The packed per-frame columns (one row per live frame, addressed by ``id & mask``)."""

    SPEC = {"pred_ts": (np.int64, ()), "target_ts": (np.int64, ()), "end_row": (np.int32, ()),
            "window": (np.int32, ()), "action": (np.int8, ()), "candle": (np.float32, (4,)),
            "confidence": (np.float32, ()), "version": (np.int64, ()),
            "link_target": (np.int32, ()), "link_end": (np.int32, ()), "flags": (np.uint8, ()),
            "pivot": (np.int8, ()), "pivot_ts": (np.int64, ())}

    def __init__(self, capacity: int):
        self.capacity = pow2_capacity(capacity)
        self.mask = self.capacity - 1
        for name, (dtype, shape) in self.SPEC.items():
            setattr(self, name, np.zeros((self.capacity, *shape), dtype=dtype))

    def grown(self, oldest: int, next_id: int) -> "FrameColumns":
        """Return columns of twice the capacity holding the live frames at their new slots."""
        new = FrameColumns(self.capacity * 2)
        ids = np.arange(oldest, next_id, dtype=np.int64)
        for name in self.SPEC:
            getattr(new, name)[ids & new.mask] = getattr(self, name)[ids & self.mask]
        return new

    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in self.SPEC)
