"""Image references and registry addresses as Docker reads them (core/imageref)."""

from __future__ import annotations

import pytest
from docker.auth import resolve_repository_name
from docker.utils import parse_repository_tag
from hypothesis import given
from hypothesis import strategies as st

from paless_deploy.core.errors import ConfigError
from paless_deploy.core.images.imageref import (
    has_tag_or_digest,
    image_registry_host,
    in_registry,
    in_repository,
    parse_image,
    parse_registry,
    parse_registry_lenient,
    same_registry,
)

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(("text", "domain", "path", "tag", "digest"), [
    ("web", "", "web", None, None),
    ("postgres:16", "", "postgres", "16", None),
    ("library/redis:7.2-alpine", "", "library/redis", "7.2-alpine", None),
    ("localhost:5000/paless-web:latest", "localhost:5000", "paless-web", "latest", None),
    ("127.0.0.1:5000/team/paless-web", "127.0.0.1:5000", "team/paless-web", None, None),
    ("[::1]:5000/paless-web:abc", "[::1]:5000", "paless-web", "abc", None),
    ("localhost/x", "localhost", "x", None, None),
    ("Registry/x", "Registry", "x", None, None),
    (f"ghcr.io/a/b@{DIGEST}", "ghcr.io", "a/b", None, DIGEST),
    (f"ghcr.io/a/b:1@{DIGEST}", "ghcr.io", "a/b", "1", DIGEST),
    ("minio/minio:RELEASE.2024-01-01T00-00-00Z", "", "minio/minio",
     "RELEASE.2024-01-01T00-00-00Z", None),
])
def test_parse(text: str, domain: str, path: str, tag: str | None, digest: str | None) -> None:
    ref = parse_image(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    assert str(ref) == text


@pytest.mark.parametrize("text", ["", "Web", "web:", "web::1", "a b", " web", "web@sha256:xy",
                                  "host:5000/", "http://host/x", "a//b", "-web"])
def test_not_references(text: str) -> None:
    with pytest.raises(ValueError):
        parse_image(text)


def test_pinned_and_floating() -> None:
    assert not has_tag_or_digest("web") and not has_tag_or_digest("host:5000/web")
    assert has_tag_or_digest("web:1") and has_tag_or_digest(f"web@{DIGEST}")
    assert parse_image("x:latest").floating and parse_image("x").floating
    assert not parse_image(f"x:latest@{DIGEST}").floating


def test_registry_host() -> None:
    assert image_registry_host("postgres:16") == "docker.io"
    assert image_registry_host("localhost:5000/x:1") == "localhost:5000"
    assert image_registry_host("ghcr.io/a/b") == "ghcr.io"


components = st.from_regex(r"[a-z0-9]{1,5}(?:[-_.][a-z0-9]{1,4})?", fullmatch=True)
names = st.lists(components, min_size=1, max_size=3).map("/".join)
domains = st.sampled_from(["", "localhost:5000", "registry.example.com", "10.1.2.3:5000",
                           "Reg.example"])
tags = st.one_of(st.none(), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}", fullmatch=True))


@given(domains, names, tags)
def test_agrees_with_the_docker_sdk(domain: str, name: str, tag: str | None) -> None:
    """Where the SDK's (looser) parsers answer, they agree with ours."""
    text = (f"{domain}/{name}" if domain else name) + (f":{tag}" if tag else "")
    ref = parse_image(text)
    repository, sdk_tag = parse_repository_tag(text)
    assert (repository, sdk_tag) == (ref.repository, ref.tag)
    index, remote = resolve_repository_name(repository)
    assert index == ("docker.io" if not ref.domain else ref.domain.lower()) or \
        index == ref.domain
    assert remote == ref.path


@pytest.mark.parametrize(("text", "host", "prefix"), [
    ("localhost:5000", "localhost:5000", ""), ("registry.example.com/team/", "registry.example.com",
                                                "team"), ("[::1]:5000", "[::1]:5000", "")])
def test_registry_addresses(text: str, host: str, prefix: str) -> None:
    reg = parse_registry(text)
    assert (reg.host, reg.prefix) == (host, prefix)


@pytest.mark.parametrize(("text", "words"), [
    ("http://127.0.0.1:5000", "scheme"), ("host:5000 x", "not a registry"),
    ("127.0.0.1:5000/MyOrg", "not a registry"), ("", "not a registry")])
def test_bad_registry_addresses(text: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words) as info:
        parse_registry(text)
    assert info.value.hint and info.value.exit_code == 2


def test_same_registry_across_loopback_spellings() -> None:
    assert same_registry("localhost:5000", "127.0.0.1:5000")
    assert same_registry("[::1]:5000", "localhost:5000")
    assert not same_registry("localhost:5000", "localhost:5001")
    assert not same_registry("registry.example:5000", "localhost:5000")
    assert same_registry("Registry.Example", "registry.example")


def test_in_repository() -> None:
    assert in_repository("127.0.0.1:5000/paless-web:latest", "localhost:5000", "paless-web")
    assert in_repository(f"localhost:5000/paless-web@{DIGEST}", "localhost:5000", "paless-web")
    assert in_repository("localhost:5000/team/paless-web", "localhost:5000/team", "paless-web")
    assert not in_repository("localhost:5000/paless-web2:1", "localhost:5000", "paless-web")
    assert not in_repository("paless-web:1", "localhost:5000", "paless-web")


@pytest.mark.parametrize(("image", "registry", "inside"), [
    ("localhost:5000/paless-web:1", "127.0.0.1:5000", True),  # another spelling of the host
    ("127.0.0.1:5000/team/web:1", "localhost:5000/team", True),
    ("127.0.0.1:5000/other/web:1", "localhost:5000/team", False),  # outside the prefix
    ("registry.example:5000/web:1", "localhost:5000", False),
    ("redis:7", "localhost:5000", False),  # Docker Hub
    ("NOT a reference", "localhost:5000", False),
])
def test_an_image_is_in_a_registry_by_host_spelling_and_path_prefix(image: str, registry: str,
                                                                     inside: bool) -> None:
    parsed = parse_registry_lenient(registry)
    assert parsed is not None and in_registry(image, parsed) is inside


def test_image_names_within_the_distribution_spec_before_any_build():
    from paless_deploy.core.errors import ConfigError
    from paless_deploy.core.images.imageref import MAX_NAME, check_image_name

    check_image_name("web", "the directory web/", "localhost:5000/paless-web", "0123abcd")
    app = "a" * 240
    with pytest.raises(ConfigError) as caught:
        check_image_name(app, f"the directory {app}/", f"localhost:5000/paless-{app}")
    error = caught.value
    assert error.code == "bad-image-name" and error.exit_code == 2
    assert "is 262 characters long; image names may be at most 255" in error.message
    assert f"to at most {MAX_NAME - 22} characters" in error.hint
    long_prefix = "registry.example.com/" + "team/" * 50 + "p-"
    with pytest.raises(ConfigError) as caught:
        check_image_name("web", "the directory web/", long_prefix + "web")
    assert caught.value.hint.startswith("Shorten REGISTRY's path or PROJECT_NAME")
    with pytest.raises(ConfigError, match="is not a repository name"):
        check_image_name("web", "the directory web/", "localhost:5000/Team/paless-web")
    with pytest.raises(ConfigError, match="is not a tag"):
        check_image_name("web", "the directory web/", "localhost:5000/paless-web", "t" * 129)
