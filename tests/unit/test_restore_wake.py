"""A restore stops the apps and starts them again, whatever happens: the decisions of
stages.restore.restore_with_apps_stopped, the cluster replaced by stand-ins of the sleep
and restore steps (their own behaviour is tested on the real node, test_data_real)."""

from __future__ import annotations

from typing import Any

import pytest

from paless_deploy.core.errors import DeployFailed
from paless_deploy.stages import restore
from paless_deploy.stages.restore import RestoreRequest, restore_with_apps_stopped


class Steps:
    """Records the steps; `restore_error` and `wake_error` make those steps fail."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, restore_error: Exception | None,
                 wake_error: Exception | None) -> None:
        self.calls: list[str] = []
        self.warned: list[str] = []

        def put_to_sleep(*_: Any, **__: Any) -> list[str]:
            self.calls.append("stop")
            return ["Deployment/web"]

        def restore_into(*_: Any) -> dict:
            self.calls.append("restore")
            if restore_error:
                raise restore_error
            return {"snapshot": "s"}

        def wake(*_: Any) -> list:
            self.calls.append("wake")
            if wake_error:
                raise wake_error
            return []

        monkeypatch.setattr(restore, "put_to_sleep", put_to_sleep)
        monkeypatch.setattr(restore, "wait_stopped", lambda *_: [])
        monkeypatch.setattr(restore, "restore_into", restore_into)
        monkeypatch.setattr(restore, "wake", wake)

    def run(self) -> dict:
        snapshot: Any = type("Snap", (), {"name": "s"})()
        request = RestoreRequest("ns", warn=self.warned.append)
        return restore_with_apps_stopped(None, request, snapshot, None, None,  # type: ignore[arg-type]
                                         lambda: 60.0)


def test_the_apps_start_again_after_a_restore(monkeypatch: pytest.MonkeyPatch) -> None:
    steps = Steps(monkeypatch, restore_error=None, wake_error=None)
    assert steps.run() == {"snapshot": "s", "apps_stopped": ["Deployment/web"]}
    assert steps.calls == ["stop", "restore", "wake"]


def test_a_failed_wake_never_hides_the_restores_error(monkeypatch: pytest.MonkeyPatch) -> None:
    failed = DeployFailed("the dump was refused", "fix it", code="restore-failed")
    steps = Steps(monkeypatch, restore_error=failed,
                  wake_error=DeployFailed("scale refused", "", code="apply-failed"))
    with pytest.raises(DeployFailed) as raised:
        steps.run()
    assert raised.value is failed and steps.calls == ["stop", "restore", "wake"]
    assert len(steps.warned) == 1 and "scale refused" in steps.warned[0]
    assert "wake" in steps.warned[0]
