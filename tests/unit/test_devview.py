"""dev's output: changes and outcomes on stderr, logs `[app/container]` on stdout, never a
configured secret."""

from __future__ import annotations

import pytest

from paless_deploy.core.configuration.context import ConsoleSettings
from paless_deploy.core.errors import BuildError
from paless_deploy.core.plan.devloop import Change
from paless_deploy.ui.devview import DevView

PLAIN = ConsoleSettings(color=False, terminal=False)


def test_lines_say_what_a_change_calls_for(capsys: pytest.CaptureFixture[str]) -> None:
    view = DevView(PLAIN)
    view.change(Change(("web/app.py", "k8s/x.yaml"), ("web",), render=True))
    view.ready(["web"], 2.04, 2.31)
    view.log_line("web", "web", "listening on :8000\n")
    out, err = capsys.readouterr()
    assert "change: web/app.py, k8s/x.yaml -> rebuild web; render and apply" in err
    assert "ready: web rolled out in 2.0s (edit to Ready 2.3s)" in err
    assert out == "[web/web] listening on :8000\n"


def test_logs_go_to_stderr_with_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    DevView(PLAIN, json_output=True).log_line("worker", "rclone", "mounted")
    out, err = capsys.readouterr()
    assert out == "" and "[worker/rclone] mounted" in err


def test_secret_values_never_shown(capsys: pytest.CaptureFixture[str]) -> None:
    view = DevView(PLAIN, secrets=["s3cret-minio-pass"])
    view.failed(BuildError("Building web failed at `RUN echo s3cret-minio-pass`.", "Fix it."))
    view.note("nothing secret here")
    _, err = capsys.readouterr()
    assert "s3cret-minio-pass" not in err and "nothing secret here" in err
    assert "fix it and save" in err


def test_json_output_adds_one_event_line_per_event(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    view = DevView(PLAIN, json_output=True, secrets=["s3cret-minio-pass"])
    view.change(Change(("src/app.py",), ("web",)))
    view.event("sync-failed", "sync into web pod w-1: tar failed", app="web",
               error="s3cret-minio-pass in the output")
    view.ready(["web"], 2.0, 2.5)
    out, err = capsys.readouterr()
    events = [json.loads(line) for line in err.splitlines() if line.startswith('{"event"')]
    assert out == "" and [e["event"] for e in events] == ["change", "sync-failed", "ready"]
    assert events[0]["paths"] == ["src/app.py"] and events[2]["edit_to_ready_s"] == 2.5
    assert events[1]["app"] == "web" and "s3cret" not in err  # scrubbed there too
    assert "sync into web pod w-1: tar failed" in err  # and the line a person reads


def test_without_json_output_events_are_lines_only(capsys: pytest.CaptureFixture[str]) -> None:
    DevView(PLAIN).event("synced", "synced: web: 1 file(s)", app="web")
    _, err = capsys.readouterr()
    assert "synced: web: 1 file(s)" in err and '{"event"' not in err
