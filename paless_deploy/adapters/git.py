"""The one door to git: which branch is checked out, which commit is deployed.

Only this module runs git; callers get plain strings (or a ConfigError saying what to set
instead when git cannot tell).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from paless_deploy.core.errors import ConfigError

GIT_TIMEOUT_S = 10


def _git(project_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=project_dir, capture_output=True, text=True,
                          timeout=GIT_TIMEOUT_S, check=False)


def checkout_branch(project_dir: Path) -> str:
    """The branch checked out in `project_dir`; ConfigError when git cannot tell."""
    try:
        out = _git(project_dir, "rev-parse", "--abbrev-ref", "HEAD")
        if out.returncode != 0:  # a fresh repository without commits has no HEAD yet
            out = _git(project_dir, "symbolic-ref", "--short", "HEAD")
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(
            f"Branch mode needs the branch name, and git could not tell it ({exc}).",
            "Set BRANCH_NAME, or pass -n NAMESPACE instead of --namespace-from-branch.",
            code="no-branch") from exc
    branch = out.stdout.strip()
    if out.returncode != 0 or not branch or branch == "HEAD":
        raise ConfigError(
            f"Branch mode needs the branch name, and {project_dir} is "
            + ("on a detached HEAD." if branch == "HEAD" else "not a git checkout."),
            "Set BRANCH_NAME (CI systems set GITHUB_REF_NAME or CI_COMMIT_REF_NAME), "
            "or pass -n NAMESPACE instead of --namespace-from-branch.", code="no-branch")
    return branch


def head_commit(project_dir: Path) -> str | None:
    """`git rev-parse HEAD`; None when there is no git, no checkout or no commit."""
    try:
        out = _git(project_dir, "rev-parse", "HEAD")
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None
