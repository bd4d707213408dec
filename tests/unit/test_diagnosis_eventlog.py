"""diagnosis.eventlog: whose event, when, and what it said, in both event shapes."""

from __future__ import annotations

from paless_deploy.core.diagnosis import eventlog

POD = {"kind": "Pod", "metadata": {"name": "web-1", "uid": "u1"}}


def test_about_matches_uid_first_then_kind_and_name_and_sorts_oldest_first():
    events = [
        {"involvedObject": {"kind": "Pod", "name": "web-1", "uid": "u1"}, "reason": "B",
         "lastTimestamp": "2026-01-01T00:00:02Z"},
        {"involvedObject": {"kind": "Pod", "name": "web-1", "uid": "old"}, "reason": "Old"},
        {"regarding": {"kind": "Pod", "name": "web-1"}, "reason": "A", "note": "new shape",
         "eventTime": "2026-01-01T00:00:01Z"},
        {"involvedObject": {"kind": "Pod", "name": "web-2"}, "reason": "Other"},
    ]
    mine = eventlog.about(POD, events)
    assert [e["reason"] for e in mine] == ["A", "B"]
    assert eventlog.message(mine[0]) == "new shape"


def test_timestamps_and_series():
    event = {"eventTime": "2026-01-01T00:00:01Z",
             "series": {"lastObservedTime": "2026-01-01T00:05:00Z"}}
    assert eventlog.first_seen(event) == "2026-01-01T00:00:01Z"
    assert eventlog.last_seen(event) == "2026-01-01T00:05:00Z"
    assert eventlog.parse_time("not a time") is None and eventlog.parse_time(None) is None


def test_unique_messages_newest_first_without_the_recorder_prefix():
    events = [{"reason": "FailedMount", "message": "a"},
              {"reason": "FailedMount", "message": "(combined from similar events): b"},
              {"reason": "FailedMount", "message": "b"},
              {"message": "c"}]
    assert eventlog.unique_messages(events) == ("c", "FailedMount: b", "FailedMount: a")
    assert eventlog.unique_messages(events, limit=1) == ("c",)
