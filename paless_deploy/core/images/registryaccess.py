"""How Docker speaks to a registry: plain HTTP or TLS, and how a 401 is answered.

Pure rules over facts the adapters read (the daemon's `RegistryConfig`, a host's
addresses, a `WWW-Authenticate` header), so the tool asks a registry exactly as the
engine that pushes to it does: an insecure registry (listed by name, or resolving into
one of the daemon's insecure CIDRs, loopback among them) is tried over HTTPS without
verification, then plain HTTP; any other over HTTPS, verified, with the CAs of Docker's
`certs.d/<host>` directory.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

# What dockerd treats as insecure when nothing else is known (its built-in default).
DEFAULT_INSECURE_CIDRS: tuple[str, ...] = ("127.0.0.0/8", "::1/128")


@dataclass(frozen=True)
class DaemonRegistryConfig:
    """The engine's `docker info` RegistryConfig: insecure CIDRs and per-name security."""

    insecure_cidrs: tuple[str, ...] = DEFAULT_INSECURE_CIDRS
    secure_by_name: Mapping[str, bool] = field(default_factory=dict)  # IndexConfigs
    known: bool = False  # False: the engine did not answer; the defaults above apply

    @classmethod
    def from_info(cls, registry_config: Mapping[str, object] | None) -> DaemonRegistryConfig:
        """From `docker info`'s `RegistryConfig` (None: the engine is not reachable)."""
        if not registry_config:
            return cls()
        cidrs = registry_config.get("InsecureRegistryCIDRs") or []
        indexes = registry_config.get("IndexConfigs") or {}
        secure: dict[str, bool] = {}
        if isinstance(indexes, Mapping):
            for name, index in indexes.items():
                if isinstance(index, Mapping):
                    secure[str(name)] = bool(index.get("Secure", True))
        return cls(tuple(str(c) for c in cidrs) if isinstance(cidrs, list) else (),
                   secure, known=True)


def hostname_of(host: str) -> str:
    """`registry:5000` -> `registry`, `[::1]:5000` -> `::1`, `10.0.0.1` -> `10.0.0.1`."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def is_insecure(host: str, addresses: Sequence[str], daemon: DaemonRegistryConfig) -> bool:
    """Docker's `isSecureIndex`, inverted: True when the engine speaks to `host` (host[:port]
    as written in image names) without verifying TLS, falling back to plain HTTP.

    A name the daemon lists (`insecure-registries: ["host:port"]`) decides by itself;
    otherwise any of the host's addresses (`addresses`: what it resolves to, or the literal
    IP) inside an insecure CIDR (127.0.0.0/8 by default) makes it insecure.
    """
    if host in daemon.secure_by_name:
        return not daemon.secure_by_name[host]
    networks = []
    for cidr in daemon.insecure_cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr, strict=False))
        except ValueError:
            continue
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            continue
        if any(ip.version == net.version and ip in net for net in networks):
            return True
    return False


def literal_address(host: str) -> str | None:
    """The IP address a host names literally (no lookup needed), else None."""
    name = hostname_of(host)
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return None


# -- authentication ------------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    """One `WWW-Authenticate` challenge: `Basic realm=...` or `Bearer realm=...,service=...`."""

    scheme: str  # "basic" or "bearer" (lower-cased)
    params: Mapping[str, str]

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


_PARAM = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


def parse_challenge(header: str | None) -> Challenge | None:
    """The first challenge of a `WWW-Authenticate` header (None when there is none)."""
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    for match in _PARAM.finditer(rest):
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", value or "")
    return Challenge(scheme.lower(), params)


def pull_scope(repository: str) -> str:
    """The token scope a read of `repository` needs."""
    return f"repository:{repository}:pull"
