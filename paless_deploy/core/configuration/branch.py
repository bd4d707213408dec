"""Branch mode: one namespace per branch, `{PROJECT_NAME}-{branch slug}`.

Names are valid DNS-1123 labels of at most 63 characters; a long name is cut and
gets a short hash of the full name, so two long branches never share a namespace.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from pathlib import Path

from paless_deploy.core.errors import ConfigError

BRANCH_VARIABLES: tuple[str, ...] = (
    "GITHUB_HEAD_REF",  # pull requests on GitHub Actions
    "GITHUB_REF_NAME",
    "CI_COMMIT_REF_NAME",  # GitLab
    "BRANCH_NAME",  # Jenkins and others
)
MAX_NAMESPACE = 63
HASH_LENGTH = 6


def slugify(text: str) -> str:
    """Lower-case letters and digits, every other run of characters a single '-'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def branch_namespace(project_name: str, branch: str) -> str:
    """The namespace of a branch: DNS-1123 label, at most 63 chars, stable."""
    parts = [p for p in (slugify(project_name), slugify(branch)) if p]
    name = "-".join(parts)
    digest = hashlib.sha256(f"{project_name}\0{branch}".encode()).hexdigest()[:HASH_LENGTH]
    if not name:
        return f"branch-{digest}"
    if len(name) <= MAX_NAMESPACE:
        return name
    head = name[: MAX_NAMESPACE - HASH_LENGTH - 1].rstrip("-")
    return f"{head}-{digest}"


def current_branch(environ: Mapping[str, str], project_dir: Path,
                   read_checkout: Callable[[Path], str] | None = None) -> str:
    """The branch being deployed: CI variables first, else the checkout (`read_checkout`,
    the git adapter's, asked only when no variable names it)."""
    for variable in BRANCH_VARIABLES:
        value = environ.get(variable, "").strip()
        if value:
            return value
    if read_checkout is None:
        raise ConfigError(
            "Branch mode needs the branch name, and no CI variable names it.",
            "Set BRANCH_NAME (CI systems set GITHUB_REF_NAME or CI_COMMIT_REF_NAME), "
            "or pass -n NAMESPACE instead of --namespace-from-branch.", code="no-branch")
    return read_checkout(project_dir)
