#!/usr/bin/env bash
# Compatibility shim for the former bash deploy script: runs paless-deploy with the same
# arguments (`all` when there are none, as the old script did); exit codes pass through.
set -euo pipefail

if [[ $# -eq 0 ]]; then
    set -- all
fi

if command -v paless-deploy >/dev/null 2>&1; then
    exec paless-deploy "$@"
fi

# Not installed: run the package from this checkout.
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="${repo}${PYTHONPATH:+:${PYTHONPATH}}"
exec python3 -m paless_deploy "$@"
