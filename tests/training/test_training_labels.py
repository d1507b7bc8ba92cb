"""How the anomaly model reads the incident feed: label statuses, the threshold on partial labels,
and the honest precision of the Evaluate step (small hand-made frames, known answers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.metrics import incident_label_metrics
from core.labels import CLEARED, INCIDENT, OPEN, UNREVIEWED, read_feed, write_feed
from training.anomaly import choose_threshold

T0 = pd.Timestamp("2026-03-01T10:00:00Z")


def _feed(tmp_path, as_of):
    verdicts = pd.DataFrame({
        "offer_id": ["a", "b", "c", "c", "late"],
        "event_id": ["e1", "e2", "e3", "e3", "e5"],
        "search_time": [T0, T0, T0, T0, T0],
        "confirmed_at": [T0 + pd.Timedelta(hours=5), T0 + pd.Timedelta(hours=9), T0 + pd.Timedelta(hours=1),
                         T0 + pd.Timedelta(days=2), T0 + pd.Timedelta(days=9)],
        "is_incident": [True, False, True, False, True],  # c: confirmed, later cleared on review
        "source": ["alert_review", "alert_review", "partner", "alert_review", "social_media"],
    })
    return read_feed(write_feed(verdicts, tmp_path / "feed", as_of=as_of))


def test_statuses_follow_the_latest_verdict_and_the_review_window(tmp_path):
    feed = _feed(tmp_path, as_of=T0 + pd.Timedelta(days=8))
    offers = pd.DataFrame({
        "offer_id": ["a", "b", "c", "d", "e", "late"],
        "event_time": [T0, T0, T0, T0, T0 + pd.Timedelta(days=3), T0],
    })
    status = feed.status(offers)
    # d: quoted 8 days before as_of, no verdict: unreviewed; e: its window is still open;
    # late: its verdict came after as_of, so at that time it was unreviewed
    assert status.tolist() == [INCIDENT, CLEARED, CLEARED, UNREVIEWED, OPEN, UNREVIEWED]
    assert feed.review_window_days == 7


def test_a_verdict_counts_before_its_window_closes(tmp_path):
    feed = _feed(tmp_path, as_of=T0 + pd.Timedelta(days=1))
    status = feed.status(pd.DataFrame({"offer_id": ["a", "b", "d"], "event_time": [T0, T0, T0]}))
    assert status.tolist() == [INCIDENT, CLEARED, OPEN]


def test_feed_without_offer_columns_is_refused(tmp_path):
    feed = _feed(tmp_path, as_of=T0 + pd.Timedelta(days=8))
    with pytest.raises(ValueError, match="event_time"):
        feed.status(pd.DataFrame({"offer_id": ["a"]}))


def test_threshold_ignores_cuts_whose_flags_nobody_reviewed():
    # 10 confirmed glitches score highest; 1000 normal offers below, 1 % of them reviewed; one of
    # those is wrongly confirmed (a mislabel) with a normal offer's score
    rng = np.random.default_rng(0)
    scores = np.r_[np.linspace(0.9, 1.0, 10), rng.uniform(0.0, 0.5, 1000)]
    y = np.r_[np.ones(10, bool), np.zeros(1000, bool)]
    reviewed = np.r_[np.ones(10, bool), np.zeros(1000, bool)]
    reviewed[10:20] = True  # ten reviewed normal offers, cleared with low scores...
    scores[10:20] = np.linspace(0.0, 0.1, 10)
    wrong = 20  # ...and one wrongly confirmed, scored like half the normal offers
    reviewed[wrong], y[wrong], scores[wrong] = True, True, 0.25
    plain = choose_threshold(scores, y, 0.9, z=0.0, reviewed=reviewed)  # precision over reviewed rows only
    honest = choose_threshold(scores, y, 0.9, z=0.0, reviewed=reviewed, min_reviewed_share=0.8)
    assert plain["threshold"] <= scores[wrong]  # chases the mislabel: floods the analysts with alerts
    assert honest["threshold"] == pytest.approx(0.9) and honest["recall"] == pytest.approx(10 / 11)
    assert honest["reviewed_share"] == 1.0 and honest["target_met"]


def test_threshold_with_complete_labels_is_unchanged():
    scores = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    y = np.array([True, True, False, False, False])
    assert choose_threshold(scores, y, 0.9, z=0.0)["threshold"] == 0.8
    with pytest.raises(ValueError, match="reviewed"):
        choose_threshold(scores, y, 0.9, reviewed=np.array([False, True, True, True, True]))


def test_precision_counts_reviewed_flags_and_is_unknown_when_few_are():
    status = np.array([INCIDENT] * 8 + [CLEARED] + [UNREVIEWED] + [OPEN] * 2 + [CLEARED] * 5 + [UNREVIEWED] * 3)
    flags = np.array([True] * 12 + [False] * 8)
    m = incident_label_metrics(status, flags, threshold=0.5, min_reviewed_share=0.8)
    assert m["flags_by_label"] == {"incident": 8, "cleared": 1, "unreviewed": 1, "open": 2}
    assert m["precision"]["value"] == pytest.approx(8 / 9)  # the unreviewed flag is not a false alarm...
    assert m["precision_if_unreviewed_false"]["value"] == pytest.approx(8 / 10)  # ...except in the lower bound
    assert m["reviewed_share_of_flags"]["value"] == pytest.approx(9 / 10)
    assert m["recall"]["value"] == 1.0 and m["n_flagged"]["value"] == 12
    many_unreviewed = incident_label_metrics(status, np.ones(20, bool), 0.5, 0.8)  # 4 of 18 closed flags unreviewed
    assert many_unreviewed["reviewed_share_of_flags"]["value"] == pytest.approx(14 / 18)
    assert many_unreviewed["precision"]["value"] is None and many_unreviewed["f1"]["value"] is None
    assert many_unreviewed["precision_reviewed"]["value"] == pytest.approx(8 / 14)
