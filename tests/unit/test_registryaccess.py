"""Docker's rules for speaking to a registry, on the facts `docker info` and DNS give."""

from __future__ import annotations

import pytest

from paless_deploy.core.images.registryaccess import (
    DaemonRegistryConfig,
    hostname_of,
    is_insecure,
    literal_address,
    parse_challenge,
)

DEFAULT = DaemonRegistryConfig()
# What this machine's engine reports: 127.0.0.0/8 only, and one registry listed by name.
INFO = DaemonRegistryConfig.from_info({
    "InsecureRegistryCIDRs": ["127.0.0.0/8", "10.20.0.0/16"],
    "IndexConfigs": {"docker.io": {"Secure": True, "Official": True},
                     "192.168.1.20:5000": {"Secure": False}},
})


@pytest.mark.parametrize(("host", "addresses", "daemon", "insecure"), [
    ("localhost:5000", ["127.0.0.1", "::1"], DEFAULT, True),
    ("127.0.0.1:5000", ["127.0.0.1"], INFO, True),
    ("laptop.lan:5000", ["127.0.1.1"], INFO, True),  # a name resolving to loopback
    ("192.168.1.20:5000", ["192.168.1.20"], INFO, True),  # listed by name
    ("192.168.1.21:5000", ["192.168.1.21"], INFO, False),
    ("registry.internal:5000", ["10.20.3.4"], INFO, True),  # inside an insecure CIDR
    ("[::1]:5000", ["::1"], INFO, False),  # this engine lists no IPv6 range
    ("[::1]:5000", ["::1"], DEFAULT, True),
    ("ghcr.io", [], INFO, False),  # unresolvable: secure, as Docker assumes
    ("docker.io", ["127.0.0.1"], INFO, False),  # the name's own entry wins
])
def test_is_insecure_as_docker_decides(host: str, addresses: list[str],
                                       daemon: DaemonRegistryConfig, insecure: bool) -> None:
    assert is_insecure(host, addresses, daemon) is insecure


def test_daemon_config_from_info_and_without_an_engine() -> None:
    assert INFO.known and INFO.secure_by_name["192.168.1.20:5000"] is False
    assert not DaemonRegistryConfig.from_info(None).known
    assert DaemonRegistryConfig.from_info(None).insecure_cidrs == ("127.0.0.0/8", "::1/128")


@pytest.mark.parametrize(("host", "name", "literal"), [
    ("registry:5000", "registry", None), ("[::1]:5000", "::1", "::1"),
    ("10.0.0.1", "10.0.0.1", "10.0.0.1"), ("::1", "::1", "::1"),
])
def test_host_parts(host: str, name: str, literal: str | None) -> None:
    assert hostname_of(host) == name
    assert literal_address(host) == literal


def test_parse_challenges() -> None:
    bearer = parse_challenge('Bearer realm="https://auth.example.com/token",'
                             'service="registry.example.com",scope="repository:a/b:pull"')
    assert bearer is not None and bearer.scheme == "bearer"
    assert bearer.realm == "https://auth.example.com/token"
    assert bearer.params["service"] == "registry.example.com"
    assert bearer.params["scope"] == "repository:a/b:pull"
    basic = parse_challenge('Basic realm="paless-test"')
    assert basic is not None and (basic.scheme, basic.realm) == ("basic", "paless-test")
    assert parse_challenge("") is None and parse_challenge(None) is None
