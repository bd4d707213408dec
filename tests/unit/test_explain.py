"""explain: one troubleshooting body, in a panel on a terminal and as plain text in logs."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from paless_deploy.core.diagnosis.findings import Finding, Policy
from paless_deploy.core.diagnosis.pods import diagnose_pod
from paless_deploy.ui.explain import finding_text, render_finding

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "recorded"


def crash_finding(**policy) -> Finding:
    doc = json.loads((RECORDED / "crash-loop.json").read_text())
    (pod,) = [o for o in doc["items"] if o["kind"] == "Pod"]
    (f,) = diagnose_pod(pod, doc["events"], Policy(**policy),
                        datetime(2030, 1, 1, tzinfo=UTC), logs="line 1\nfatal: db down\n")
    return f


def test_plain_text_has_cause_evidence_fix_and_commands():
    f = crash_finding(allowed_restarts=0)
    text = finding_text(f)
    lines = text.splitlines()
    assert lines[0].startswith(f"crash-loop {f.resource} (CrashLoopBackOff)")
    assert f"  cause: {f.message}" in lines
    assert "    log: fatal: db down" in lines
    assert f"  fix: {f.hint}" in lines
    assert all(f"    {c}" in lines for c in f.commands)
    assert "\x1b[" not in text and "tolerated" not in lines[0]


def test_tolerated_findings_say_so():
    assert "[tolerated until the deadline]" in finding_text(crash_finding()).splitlines()[0]


def test_plain_text_is_deterministic():
    assert finding_text(crash_finding()) == finding_text(crash_finding())


def test_panel_shows_every_part():
    f = crash_finding(allowed_restarts=0)
    out = io.StringIO()
    render_finding(f, Console(file=out, width=200, no_color=True, force_terminal=False))
    text = out.getvalue()
    assert f.resource in text.splitlines()[0]
    for part in ("cause:", "evidence:", "fix:", "look further:", "log: fatal: db down",
                 f.commands[0]):
        assert part in text


def test_the_spinner_counts_the_elapsed_time_and_says_why(monkeypatch):
    from paless_deploy.core.configuration.context import ConsoleSettings
    from paless_deploy.ui import view as view_module

    now = [100.0]
    monkeypatch.setattr(view_module.time, "monotonic", lambda: now[0])
    view = view_module.DeployView(ConsoleSettings(color=False, terminal=True))
    view.rollout_started(1)
    view.waiting["Deployment/web"] = "pod web-1: not scheduled (Insufficient cpu)"
    out = io.StringIO()
    console = Console(file=out, width=200, no_color=True)
    console.print(view_module._Waiting(view))
    now[0] += 7
    console.print(view_module._Waiting(view))
    first, second = out.getvalue().splitlines()
    assert "0s" in first and "7s" in second
    assert "Deployment/web (pod web-1: not scheduled (Insufficient cpu))" in second


def test_a_lock_wait_spins_until_the_lock_is_taken(monkeypatch):
    from paless_deploy.core.configuration.context import ConsoleSettings
    from paless_deploy.ui import view as view_module

    now = [50.0]
    monkeypatch.setattr(view_module.time, "monotonic", lambda: now[0])
    view = view_module.DeployView(ConsoleSettings(color=False, terminal=True))
    with view:
        view.waiting_on("Lease/paless-deploy", "another deploy holds it")
        assert view._status is not None
        now[0] += 12
        out = io.StringIO()
        Console(file=out, width=200, no_color=True).print(view_module._Waiting(view))
        assert "lock" in out.getvalue() and "12s" in out.getvalue()
        assert "Lease/paless-deploy (another deploy holds it)" in out.getvalue()
        view.waiting_done()
        assert view.waiting == {}
