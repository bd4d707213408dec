"""The real node's containerd mirrors: docker.io, ghcr.io and registry.k8s.io served by the
sandbox registry, so pods pull the manifests' image names unchanged (`postgres:18.1` is
127.0.0.1:5000/library/postgres:18.1). The registry's own names are nodeconfig's."""

from __future__ import annotations

from paless_sandbox.layout import HOSTS_DIR, REGISTRY_ADDR
from paless_sandbox.nodeconfig import write_if_changed

# upstream -> whether its images sit under a path prefix in the sandbox registry (docker.io's
# are at the registry's root, as library/NAME and ORG/NAME)
MIRRORED = {"docker.io": False, "ghcr.io": True, "registry.k8s.io": True}


def mirror_hosts_toml(upstream: str, prefixed: bool) -> str:
    """containerd's hosts.toml sending pulls of `upstream` to the sandbox registry."""
    host = f"http://{REGISTRY_ADDR}/v2/{upstream}" if prefixed else f"http://{REGISTRY_ADDR}"
    override = "  override_path = true\n" if prefixed else ""
    return (f"# written by scripts/sandbox (paless_sandbox.realstack): {upstream} from the "
            f"sandbox registry\nserver = \"http://{REGISTRY_ADDR}\"\n\n[host.\"{host}\"]\n"
            f"  capabilities = [\"pull\", \"resolve\"]\n{override}")


def write_mirrors() -> list[str]:
    """Write the mirrors' hosts.toml files (containerd reads them at each pull: no restart);
    the upstreams whose file changed."""
    return [upstream for upstream, prefixed in MIRRORED.items()
            if write_if_changed(HOSTS_DIR / upstream / "hosts.toml",
                                mirror_hosts_toml(upstream, prefixed))]
