"""Env files read strictly, with the shell habits of the old script named (core/envfile)."""

from __future__ import annotations

from pathlib import Path

import pytest

from paless_deploy.core.errors import ConfigError
from paless_deploy.stages.project import load_config


@pytest.fixture
def project(tmp_path: Path) -> Path:
    overlay = tmp_path / "k8s" / "overlays" / "dev"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text("resources: []\n")
    return tmp_path


def load(project: Path, text: str | bytes, environ: dict | None = None, *more: str):
    path = project / "paless.env"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    files = [path]
    for i, extra in enumerate(more):
        other = project / f"extra{i}.env"
        other.write_text(extra)
        files.append(other)
    return load_config(project, files, {}, environ or {}, validate=False)


@pytest.mark.parametrize(("text", "line", "why"), [
    ("PROJECT_NAME=paless\nthis is not an assignment\n", 2, "not KEY=value"),
    ('PROJECT_NAME="unterminated\nREGISTRY=x\n', 1, "unterminated quote"),
])
def test_a_syntax_error_is_exit_2_naming_file_and_line(project, text, line, why):
    with pytest.raises(ConfigError) as info:
        load(project, text)
    assert f"paless.env:{line}" in info.value.message and why in info.value.message
    assert info.value.exit_code == 2 and "KEY=value" in info.value.hint


def test_bom_and_crlf_are_read_as_a_shell_would(project):
    config = load(project, b"\xef\xbb\xbfPALESS_NAMESPACE=from-bom\r\nOVERLAY=dev\r\n")
    assert config.namespace == "from-bom" and config.value("OVERLAY") == "dev"
    assert config.source("PALESS_NAMESPACE") == "paless.env:1"


def test_binary_files_and_directories_are_named_for_what_they_are(project, tmp_path):
    with pytest.raises(ConfigError, match="not a text file"):
        load(project, b"\x00\x01\x02PK")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load(project, b"PROJECT_NAME=\xff\xfe\n")
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(project, [tmp_path], {}, {}, validate=False)


def test_braced_references_are_expanded_like_the_shell_did(project):
    config = load(project, "INGRESS_HOST=paless.example\nPAPERLESS_URL=https://${INGRESS_HOST}\n"
                           "MINIO_BUCKET=${BUCKET_PREFIX:-docs}-media\n"
                           "PAPERLESS_TIME_ZONE=${TZ}\n",
                  {"TZ": "Europe/Berlin"})
    assert config.value("PAPERLESS_URL") == "https://paless.example"
    assert config.value("MINIO_BUCKET") == "docs-media"
    assert config.value("PAPERLESS_TIME_ZONE") == "Europe/Berlin"
    assert config.warnings == ()


def test_a_later_file_sees_the_earlier_files_values(project):
    config = load(project, "DOMAIN=example.org\n", None, "INGRESS_HOST=paless.${DOMAIN}\n")
    assert config.value("INGRESS_HOST") == "paless.example.org"


def test_commands_are_never_run_and_say_so_without_the_value(project):
    secret = "s3cr3t-value-xyz"
    config = load(project, "PAPERLESS_SECRET_KEY=$(openssl rand -hex 32)\n"
                           "POSTGRES_PASSWORD=`cat /run/secret`\n"
                           f"MINIO_ROOT_PASSWORD=pre$USER{secret}\n"
                           "PAPERLESS_TIME_ZONE=$TZ\n"
                           "PAPERLESS_APP_DB_PASSWORD='literal$NOT_EXPANDED'\n")
    assert config.value("PAPERLESS_SECRET_KEY") == "$(openssl rand -hex 32)"
    assert config.value("PAPERLESS_APP_DB_PASSWORD") == "literal$NOT_EXPANDED"
    text = " ".join(config.warnings)
    assert len(config.warnings) == 4
    assert "paless.env:1: PAPERLESS_SECRET_KEY holds a command substitution" in text
    assert "paless.env:2: POSTGRES_PASSWORD holds a command substitution" in text
    assert "paless.env:3: MINIO_ROOT_PASSWORD uses a bare $NAME without braces" in text
    assert "paless.env:4: PAPERLESS_TIME_ZONE uses $TZ without braces" in text
    assert "Write ${TZ} to expand it" in text
    assert secret not in text and "openssl" not in text and "/run/secret" not in text


@pytest.mark.parametrize(("text", "words"), [
    ("FOO\n", "c.env:1: not KEY=value: 'FOO'"), ("export FOO\n", "not KEY=value"),
    ("A=1\n\nB\n", "c.env:3: not KEY=value"), ("1A=2\n", "'1A' is not a variable name"),
    ("A.B=1\n", "'A.B' is not a variable name")])
def test_a_line_a_shell_would_not_take_is_refused(text: str, words: str) -> None:
    from paless_deploy.core.configuration import envfile

    with pytest.raises(ConfigError) as info:
        envfile.parse(text, "c.env")
    assert words in info.value.message and info.value.code == "bad-env-file"


def test_a_bad_line_never_quotes_a_secrets_value() -> None:
    from paless_deploy.core.configuration import envfile

    with pytest.raises(ConfigError) as info:
        envfile.parse('POSTGRES_PASSWORD="hunter2-secret\n', "c.env",
                      lambda key: key == "POSTGRES_PASSWORD")
    assert "hunter2" not in str(info.value)
    assert "POSTGRES_PASSWORD=... (the value is not shown)" in info.value.message
