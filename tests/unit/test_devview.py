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
