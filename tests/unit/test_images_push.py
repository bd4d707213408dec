"""Push error handling without a registry: classification, retries, one paragraph each.

A fake API client replays recorded push streams of the Docker engine.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from paless_deploy.adapters import docker as images
from paless_deploy.adapters.registry import check_registry
from paless_deploy.core.errors import BuildError
from paless_deploy.core.reporting.progress import NullProgress

OK_STREAM: list[dict[str, Any]] = [
    {"status": "The push refers to repository [localhost:5000/paless-web]"},
    {"status": "Pushing", "progressDetail": {"current": 512, "total": 1024}, "id": "abc"},
    {"status": "Pushed", "progressDetail": {}, "id": "abc"},
    {"progressDetail": {}, "aux": {"Tag": "t1", "Digest": "sha256:feed", "Size": 528}},
]


class FakeAPI:
    """Replays one stream per push call."""

    def __init__(self, *streams: list[dict[str, Any]]) -> None:
        self.streams = list(streams)
        self.calls = 0

    def push(self, repository: str, tag: str, stream: bool, decode: bool) -> Any:
        self.calls += 1
        return iter(self.streams.pop(0))


def error(message: str) -> list[dict[str, Any]]:
    return [{"errorDetail": {"message": message}, "error": message}]


def push(api: FakeAPI) -> str | None:
    return images.push_image(api, "localhost:5000", "localhost:5000/paless-web:t1", "web",
                             NullProgress(), threading.Event())


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "PUSH_RETRY_INITIAL_S", 0.01)


def test_push_returns_digest() -> None:
    assert push(FakeAPI(OK_STREAM)) == "sha256:feed"


def test_transient_errors_are_retried() -> None:
    api = FakeAPI(error("received unexpected HTTP status: 503 Service Unavailable"),
                  error("connection reset by peer"), OK_STREAM)
    assert push(api) == "sha256:feed"
    assert api.calls == 3


def test_transient_errors_give_up_after_attempts() -> None:
    api = FakeAPI(*[error("EOF")] * images.PUSH_ATTEMPTS)
    with pytest.raises(BuildError) as info:
        push(api)
    assert info.value.code == "push-failed" and info.value.exit_code == 3
    assert f"{images.PUSH_ATTEMPTS} attempts" in info.value.message


@pytest.mark.parametrize(("message", "code"), [
    ("unauthorized: authentication required", "registry-auth"),
    ("denied: requested access to the resource is denied", "registry-auth"),
    ("Get \"https://r:5000/v2/\": http: server gave HTTP response to HTTPS client",
     "registry-insecure"),
    ("dial tcp 127.0.0.1:5000: connect: connection refused", "registry-unreachable"),
    ("manifest invalid", "push-failed"),
])
def test_non_transient_errors_are_not_retried(message: str, code: str) -> None:
    api = FakeAPI(error(message), OK_STREAM)
    with pytest.raises(BuildError) as info:
        push(api)
    assert info.value.code == code and api.calls == 1
    assert info.value.hint  # every paragraph says the fix


def test_auth_refusal_names_docker_login() -> None:
    with pytest.raises(BuildError) as info:
        push(FakeAPI(error("unauthorized: authentication required")))
    assert "docker login localhost:5000" in info.value.hint


def test_unreachable_registry_paragraph() -> None:
    with pytest.raises(BuildError) as info:
        check_registry("127.0.0.1:9", timeout=2)
    assert info.value.code == "registry-unreachable"
    assert "127.0.0.1:9" in info.value.message and "curl http://127.0.0.1:9/v2/" in info.value.hint
