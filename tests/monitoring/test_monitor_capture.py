"""Reading SageMaker's capture and ground-truth files: every body shape and encoding, windows,
merging by inference id, and clear errors."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pandas as pd
import pytest

from monitoring import capture, monitor

T0 = dt.datetime(2026, 5, 1, 10, 15, tzinfo=dt.timezone.utc)
COLS = ["cabin", "days_to_departure"]


def _write(root, lines, when=T0):
    folder = capture.hour_path(root / "ep" / "AllTraffic", when)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "part.jsonl").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("ctype, body, expected", [
    ("application/json", '{"cabin": "economy", "days_to_departure": 3}', [{"cabin": "economy", "days_to_departure": 3}]),
    ("application/json", '{"instances": [{"cabin": "business", "days_to_departure": 9}, {"cabin": "first", "days_to_departure": 1}]}',
     [{"cabin": "business", "days_to_departure": 9}, {"cabin": "first", "days_to_departure": 1}]),
    ("application/json", '[{"cabin": "economy", "days_to_departure": 5}]', [{"cabin": "economy", "days_to_departure": 5}]),
    ("application/jsonlines", '{"cabin": "economy", "days_to_departure": 5}\n{"cabin": "first", "days_to_departure": 6}',
     [{"cabin": "economy", "days_to_departure": 5}, {"cabin": "first", "days_to_departure": 6}]),
    ("text/csv", "cabin,days_to_departure\neconomy,7", [{"cabin": "economy", "days_to_departure": "7"}]),
    ("text/csv", "economy,7\nbusiness,8", [{"cabin": "economy", "days_to_departure": "7"}, {"cabin": "business", "days_to_departure": "8"}]),
])
def test_every_request_shape_is_read(ctype, body, expected):
    assert capture.parse_records(body, ctype, COLS, "x") == expected


def test_encodings_ids_and_window(tmp_path):
    b64 = base64.b64encode(b'{"cabin": "economy", "days_to_departure": 2}').decode()
    doc = {"captureData": {"endpointInput": {"observedContentType": "application/json", "mode": "INPUT", "data": b64, "encoding": "BASE64"},
                           "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                                              "data": '{"predictions": [{"price_usd": 120.5}]}', "encoding": "JSON"}},
           "eventMetadata": {"eventId": "e1", "inferenceId": "offer-1", "inferenceTime": "2026-05-01T10:15:00Z"}, "eventVersion": "0"}
    two = capture.capture_line("e2", T0 + dt.timedelta(minutes=5), '{"instances": [{"cabin": "first"}, {"cabin": "economy"}]}',
                               '{"predictions": [{"price_usd": 1}, {"price_usd": 2}]}')
    _write(tmp_path, [json.dumps(doc), two])
    cap = capture.read_capture(tmp_path, columns=COLS)
    assert list(cap.events["record_id"]) == ["offer-1", "e2:0", "e2:1"]  # inferenceId wins; multi-record events get :i
    assert list(cap.outputs["price_usd"]) == [120.5, 1, 2]
    assert cap.inputs.loc[0, "days_to_departure"] == 2
    later = capture.read_capture(tmp_path, since="2026-05-01T10:16:00Z")
    assert list(later.events["record_id"]) == ["e2:0", "e2:1"]
    assert capture.read_capture(tmp_path, until="2026-05-01T10:00:00Z").events.empty


def test_bad_files_name_the_file_and_line(tmp_path):
    _write(tmp_path, ['{"captureData": {"endpointInput": {"data": "x", "encoding": "ROT13"}}, "eventMetadata": {"inferenceTime": "2026-05-01T10:15:00Z"}}'])
    with pytest.raises(capture.CaptureError, match=r"part.jsonl:1.*ROT13"):
        capture.read_capture(tmp_path)
    _write(tmp_path, ["not json"])
    with pytest.raises(capture.CaptureError, match=r"part.jsonl:1: not a JSON line"):
        capture.read_capture(tmp_path)


def test_ground_truth_last_delivery_wins_and_anomaly_merge(tmp_path):
    gt = tmp_path / "gt"
    for hour, label in ((11, "0"), (12, "1")):
        folder = capture.hour_path(gt, T0.replace(hour=hour))
        folder.mkdir(parents=True)
        (folder / "l.jsonl").write_text(capture.ground_truth_line("offer-1", label) + "\n")
    assert capture.read_ground_truth(gt).to_dict("records") == [{"record_id": "offer-1", "label": "1"}]
    assert capture.read_ground_truth(gt, until=T0.replace(hour=11, minute=30)).to_dict("records") == [{"record_id": "offer-1", "label": "0"}]
    events = pd.DataFrame({"record_id": ["offer-1", "offer-2", "offer-3"], "event_id": ["a", "b", "c"],
                           "inference_time": pd.to_datetime([T0, T0, T0 + dt.timedelta(hours=80)], utc=True)})
    cap = capture.Captured(inputs=pd.DataFrame(index=range(3)), outputs=pd.DataFrame({"is_anomaly": [True, True, False]}), events=events)
    merged = monitor.merge_ground_truth("anomaly", cap, capture.read_ground_truth(gt), unlabelled_negative=True,
                                        label_horizon=dt.timedelta(hours=72), now=T0 + dt.timedelta(hours=100))
    # offer-2 has no confirmed incident after 72 h: no incident; offer-3 is too recent to know
    assert merged["label"].tolist()[:2] == [1, 0] and pd.isna(merged["label"].iloc[2])
