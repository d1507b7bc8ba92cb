"""The replay's alarm rule (``Replay.alarm_rule``): which datapoints raise the alarm, on small
hand-made monitor records (no world, no pipeline)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pipelines.replay import Replay, ReplayOptions

DAY = dt.date(2026, 3, 5)


def _replay(tmp_path: Path) -> Replay:
    return Replay(ReplayOptions(seed=1, start_date=dt.date(2026, 3, 2), days=10, out=tmp_path))


def _dq(features=(), feed=(), judged=("price_level_MXN", "searches_2d")):
    """``feed``: "metric:direction" violations; the other ``judged`` metrics have an in-band datapoint."""
    bad = dict(v.split(":") for v in feed)
    checks = [{"metric": m, "z": 1.0, "violation": bad.get(m)} for m in sorted(set(judged) | set(bad))]
    return {"records": 2500, "violations": len(features), "features": list(features), "feed": {"checks": checks, "violations": list(feed)}}


def _window(start, labelled, mae_violation=False, robust_violation=False, judged_mae=True):
    return {"start": start, "labelled": labelled, "mae": 5.0, "rmse": 10.0 if judged_mae else None, "r2": 0.9,
            "trimmed_mae": 4.0, "robust_judged": labelled >= 20, "robust_violation": robust_violation,
            "violations": ["mae"] if mae_violation else []}  # fmt: skip


def test_a_search_volume_datapoint_alarms_alone_a_price_level_needs_two_days(tmp_path):
    r = _replay(tmp_path)
    yesterday = DAY - dt.timedelta(days=1)
    assert r.alarm_rule(yesterday, _dq(feed=["price_level_MXN:high"]), {"windows": []})[0] is False
    raised, reasons = r.alarm_rule(DAY, _dq(feed=["price_level_MXN:high"]), {"windows": []})
    assert raised and "price_level_MXN:high" in reasons[0]
    r = _replay(tmp_path)
    raised, reasons = r.alarm_rule(DAY, _dq(feed=["searches_2d:low"]), {"windows": []})
    assert raised and "searches_2d:low" in reasons[0]
    r = _replay(tmp_path)
    r.alarm_rule(yesterday, _dq(feed=["price_level_MXN:high"]), {"windows": []})
    assert r.alarm_rule(DAY, _dq(feed=["price_level_MXN:low"]), {"windows": []})[0] is False  # not the same direction
    # a day with no datapoint (no MXN search) is skipped: the next violating datapoint raises the alarm
    r = _replay(tmp_path)
    r.alarm_rule(DAY - dt.timedelta(days=2), _dq(feed=["price_level_MXN:high"]), {"windows": []})
    assert r.alarm_rule(yesterday, _dq(judged=("searches_2d",)), {"windows": []})[0] is False
    raised, reasons = r.alarm_rule(DAY, _dq(feed=["price_level_MXN:high"]), {"windows": []})
    assert raised and "price_level_MXN:high" in reasons[0]
    r = _replay(tmp_path)
    r.alarm_rule(yesterday, _dq(feed=["price_level_MXN:high"]), {"windows": []})
    assert r.alarm_rule(DAY, _dq(), {"windows": []})[0] is False  # an in-band datapoint between: no alarm


def test_the_trimmed_mae_judges_a_window_of_twenty_labels_on_its_own_day(tmp_path):
    r = _replay(tmp_path)
    onset, before = DAY.isoformat(), (DAY - dt.timedelta(days=1)).isoformat()
    # evening of the onset: yesterday's window fine, today's (23 labels, MAE not judged yet) over the robust bound
    assert r.alarm_rule(DAY, _dq(), {"windows": [_window(before, 90), _window(onset, 23, robust_violation=True, judged_mae=False)]})[0] is False
    nxt = (DAY + dt.timedelta(days=1)).isoformat()
    raised, reasons = r.alarm_rule(DAY + dt.timedelta(days=1), _dq(), {"windows": [
        _window(onset, 92, robust_violation=True), _window(nxt, 30, robust_violation=True, judged_mae=False)]})  # fmt: skip
    assert raised and "trimmed_mae" in reasons[0]
    # a window with too few labels for either metric is not judged
    r = _replay(tmp_path)
    w = _window(onset, 12, robust_violation=False, judged_mae=False) | {"robust_judged": False}
    r.alarm_rule(DAY, _dq(), {"windows": [w]})
    assert onset not in r.bad_windows
