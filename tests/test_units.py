"""Readable and ISO-8601 forms of times, durations and numbers."""
from __future__ import annotations

from datetime import timedelta

from workbench import units


def test_iso_forms_are_exact_and_utc():
    assert units.iso_duration(timedelta(days=2, hours=3, minutes=15)) == "P2DT3H15M"
    assert units.iso_duration(timedelta(0)) == "PT0S"
    assert units.iso_duration(timedelta(seconds=90.5)) == "PT1M30.5S"
    assert units.iso_duration(timedelta(days=-1)) == "-P1D"
    assert units.iso_duration(None) is None


def test_human_forms_spell_out_units():
    assert units.human_duration(timedelta(hours=6, minutes=34)) == "6 h 34 min"
    assert units.human_duration(timedelta(days=1, minutes=59)) == "1 d 59 min"
    assert units.human_duration(timedelta(seconds=45)) == "45 s"
    assert units.human_time(1_748_736_000_000) == "2025-06-01 00:00 UTC"
    assert units.human_percent(0.1234, fraction=True) == "12.34 %"
    assert units.human_number(float("nan")) == "n/a" and units.human_number(float("inf")) == "∞"
    assert units.human_number(10512.8, unit="$") == "10,512.80 $"
    assert units.finite_or_none(float("nan")) is None and units.finite_or_none(1.5) == 1.5
