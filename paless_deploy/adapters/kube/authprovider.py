"""A legacy `auth-provider` user's Authorization header (gcp, oidc, azure), from the
`kubernetes` package's loader, which knows how to refresh their tokens.

It runs as a process of its own (`python -m paless_deploy.adapters.kube.authprovider KUBECONFIG
[CONTEXT]`), started by `kubeconfig.auth_provider_header`: the loader may run the
provider's `cmd-path` or call its token endpoint and wait forever, and a process (with
whatever it started) can be stopped when the run's --timeout is up, where a thread
cannot. It prints one JSON object: {"header": ...} or {"error": ...}, never the token in
an error.
"""

from __future__ import annotations

import json
import sys


def header(kubeconfig: str, context: str | None) -> str:
    """The header, or ValueError with the loader's first line of complaint."""
    from kubernetes import client, config

    cfg = client.Configuration()
    try:
        config.load_kube_config(config_file=kubeconfig, context=context,
                                client_configuration=cfg)
    except Exception as exc:  # noqa: BLE001 - the user's file, the provider: said, not raised
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ValueError(detail) from None
    return cfg.get_api_key_with_prefix("BearerToken") or ""


def main(argv: list[str]) -> int:
    try:
        answer = {"header": header(argv[0], argv[1] if len(argv) > 1 and argv[1] else None)}
    except ValueError as exc:
        answer = {"error": str(exc)}
    sys.stdout.write(json.dumps(answer))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
