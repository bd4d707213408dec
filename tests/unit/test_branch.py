"""Branch mode: namespace names from branches (properties) and where the branch comes from.

The namespace must be a DNS-1123 label of at most 63 characters and stable.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paless_deploy.adapters.git import checkout_branch
from paless_deploy.core.configuration.branch import branch_namespace, current_branch
from paless_deploy.core.errors import ConfigError

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
names = st.text(min_size=0, max_size=120)


@given(project=names, branch=names)
def test_always_a_valid_label(project: str, branch: str) -> None:
    namespace = branch_namespace(project, branch)
    assert DNS_LABEL.match(namespace), namespace
    assert len(namespace) <= 63


@given(project=names, branch=names)
def test_stable(project: str, branch: str) -> None:
    assert branch_namespace(project, branch) == branch_namespace(project, branch)


long_slugs = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-/", min_size=70,
                     max_size=100).filter(lambda t: sum(c.isalnum() for c in t) > 60)


@given(a=long_slugs, b=long_slugs)
def test_truncated_names_keep_branches_apart(a: str, b: str) -> None:
    if a != b:
        assert branch_namespace("paless", a) != branch_namespace("paless", b)


def test_examples() -> None:
    assert branch_namespace("paless", "main") == "paless-main"
    assert branch_namespace("Paless_App", "feature/JIRA-12_login") == \
        "paless-app-feature-jira-12-login"
    long = branch_namespace("paless", "feature/" + "x" * 100)
    assert len(long) == 63 and re.search(r"-[0-9a-f]{6}$", long)
    assert long.startswith("paless-feature-xxx")


def test_branch_from_ci_variables_in_order(tmp_path: Path) -> None:
    environ = {"GITHUB_REF_NAME": "ref", "BRANCH_NAME": "jenkins", "GITHUB_HEAD_REF": ""}
    assert current_branch(environ, tmp_path) == "ref"
    assert current_branch({**environ, "GITHUB_HEAD_REF": "pr"}, tmp_path) == "pr"
    assert current_branch({"CI_COMMIT_REF_NAME": "gl", "BRANCH_NAME": "j"}, tmp_path) == "gl"


def test_branch_from_git(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", "-b", "feature/x", str(tmp_path)], check=True)
    assert current_branch({}, tmp_path, checkout_branch) == "feature/x"


def test_no_branch_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a git checkout") as info:
        current_branch({}, tmp_path, checkout_branch)
    assert "BRANCH_NAME" in info.value.hint
