"""The deployment's URL: where a pipeline's "View deployment" link points.

Read from the rendered Ingress objects (scheme from their TLS section, then host and
path), else from PALESS_BASE_DOMAIN. A wildcard host (`*.{namespace}.{domain}`, branch
mode) gets a tenant as its first label, because the app reads the tenant from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from paless_deploy.core.apitypes import ApiObject
from paless_deploy.core.manifests import labels
from paless_deploy.core.manifests.objects import nested

_SAFE_PATH = re.compile(r"^/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$")


def deployment_url(objects: Iterable[ApiObject], *, namespace: str, tenant: str,
                   base_domain: str | None = None) -> str | None:
    """`scheme://host/path` of the first Ingress rule with a host, None when there is none.

    An Ingress annotated `paless.io/url` names its URL itself (trees whose rules cannot
    tell, e.g. a host-less rule behind a load balancer). Ingresses of the `web` component
    come first, then by name. `https` when a TLS entry covers the host. A wildcard host's
    `*` becomes `tenant`. Without any usable Ingress, `http://{tenant}.{namespace}.
    {base_domain}/` when a base domain is configured.
    """
    ingresses = sorted((o for o in objects if o.get("kind") == "Ingress"), key=_rank)
    for ingress in ingresses:
        explicit = str(nested(ingress, "metadata", "annotations", labels.URL) or "").strip()
        if explicit:
            return explicit
        for rule in nested(ingress, "spec", "rules") or []:
            host = str((rule or {}).get("host") or "").strip()
            if not host:
                continue
            paths = nested(rule, "http", "paths") or [{}]
            path = str((paths[0] or {}).get("path") or "/")
            scheme = "https" if _tls_covers(ingress, host) else "http"
            return f"{scheme}://{_concrete(host, tenant)}{_url_path(path)}"
    if base_domain:
        return f"http://{tenant}.{namespace}.{base_domain}/"
    return None


def _rank(ingress: ApiObject) -> tuple[int, str]:
    component = nested(ingress, "metadata", "labels", labels.COMPONENT)
    return (0 if component == "web" else 1, str(nested(ingress, "metadata", "name") or ""))


def _tls_covers(ingress: ApiObject, host: str) -> bool:
    for entry in nested(ingress, "spec", "tls") or []:
        hosts = [str(h) for h in (entry or {}).get("hosts") or []]
        if not hosts:  # the controller's default certificate serves every host
            return True
        if any(_host_matches(pattern, host) for pattern in hosts):
            return True
    return False


def _host_matches(pattern: str, host: str) -> bool:
    if pattern == host:
        return True
    if pattern.startswith("*."):
        suffix = pattern[1:]
        if host.startswith("*."):  # the rule's wildcard under the certificate's wildcard
            return host[1:] == suffix
        return host.endswith(suffix) and "." not in host[: -len(suffix)]
    return False


def _concrete(host: str, tenant: str) -> str:
    return f"{tenant}.{host[2:]}" if host.startswith("*.") else host


def _url_path(path: str) -> str:
    """The rule's path when it is a plain URL path; `/` for regular expressions and the like."""
    return path if _SAFE_PATH.match(path) else "/"
