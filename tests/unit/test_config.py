"""Configuration: precedence, env-file order, provenance, masking and every validation error.

Pure: each test builds a project tree in tmp_path and passes its own environment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from paless_deploy.core.configuration.config import MASK
from paless_deploy.core.configuration.context import Scope
from paless_deploy.core.configuration.durations import parse_duration
from paless_deploy.core.configuration.variables import SUBSTITUTABLE_NAMES, VARIABLES
from paless_deploy.core.errors import ConfigError
from paless_deploy.stages.project import load_config


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with dev and prod overlays."""
    for overlay in ("dev", "prod"):
        d = tmp_path / "k8s" / "overlays" / overlay
        d.mkdir(parents=True)
        (d / "kustomization.yaml").write_text("resources: []\n")
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults(project: Path) -> None:
    config = load_config(project, None, {}, {})
    assert config.project_name == "paless"
    assert config.registry == "localhost:5000"
    assert config.overlay == "dev"
    assert config.namespace == "paless"
    assert config.source("REGISTRY") == "default"
    assert config.env_files == ()


def test_precedence_flag_over_environment_over_file_over_default(project: Path) -> None:
    write(project / "paless.env", "REGISTRY=file:5000\nPOSTGRES_DB=filedb\nMINIO_BUCKET=bkt\n")
    environ = {"REGISTRY": "env:5000", "POSTGRES_DB": "envdb"}
    config = load_config(project, None, {"REGISTRY": "flag:5000"}, environ)
    assert (config.value("REGISTRY"), config.source("REGISTRY")) == ("flag:5000", "flag")
    assert (config.value("POSTGRES_DB"), config.source("POSTGRES_DB")) == ("envdb", "environment")
    assert (config.value("MINIO_BUCKET"), config.source("MINIO_BUCKET")) == ("bkt", "paless.env:3")
    assert config.source("POSTGRES_USER") == "default"


def test_default_env_files_in_order_later_wins(project: Path) -> None:
    write(project / "paless.env", "# comment\nPOSTGRES_DB=first\nMINIO_BUCKET=only-first\n")
    write(project / ".context-management" / ".env", "\n\nexport POSTGRES_DB='second'\n")
    config = load_config(project, None, {}, {})
    assert config.value("POSTGRES_DB") == "second"
    assert config.source("POSTGRES_DB") == ".context-management/.env:3"
    assert config.source("MINIO_BUCKET") == "paless.env:3"
    assert [p.name for p in config.env_files] == ["paless.env", ".env"]


def test_env_file_option_replaces_defaults_repeatable_later_wins(project: Path,
                                                                 tmp_path: Path) -> None:
    write(project / "paless.env", "POSTGRES_DB=ignored\nMINIO_BUCKET=ignored\n")
    a = write(tmp_path / "a.env", "POSTGRES_DB=a\nPOSTGRES_USER=a\n")
    b = write(tmp_path / "b.env", "POSTGRES_DB=b\n")
    config = load_config(project, [a, b], {}, {})
    assert config.value("POSTGRES_DB") == "b"
    assert config.value("POSTGRES_USER") == "a"
    assert config.value("MINIO_BUCKET") == "paperless-media"  # paless.env not read
    assert config.source("POSTGRES_DB") == "b.env:1"


def test_missing_env_file_is_an_error(project: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(project, [project / "nope.env"], {}, {})


def test_env_file_is_parsed_not_executed(project: Path, tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    write(project / "paless.env", f"POSTGRES_DB=$(touch {marker})\nUNKNOWN_THING=1\n")
    config = load_config(project, None, {}, {})
    assert not marker.exists()
    assert config.value("POSTGRES_DB") == f"$(touch {marker})"
    assert "UNKNOWN_THING" not in config.settings


def test_masking(project: Path) -> None:
    config = load_config(project, None, {}, {"POSTGRES_PASSWORD": "s3cret-value-123"})
    assert config.masked("POSTGRES_PASSWORD") == MASK
    assert config.masked("POSTGRES_DB") == "paperless"
    assert config.masked("PALESS_BASE_DOMAIN") == ""
    shown = "\n".join(" ".join(row) for row in config.rows())
    assert "s3cret-value-123" not in shown
    for variable in VARIABLES:
        if variable.secret and variable.default:
            assert variable.default not in shown


def test_namespace_from_project_name(project: Path) -> None:
    config = load_config(project, None, {}, {"PROJECT_NAME": "My_App"}, validate=False)
    assert config.namespace == "my-app"
    assert "PROJECT_NAME" in config.namespace_source
    explicit = load_config(project, None, {"PALESS_NAMESPACE": "team-a"}, {})
    assert explicit.namespace == "team-a"


def test_branch_mode_namespace(project: Path) -> None:
    config = load_config(project, None, {"PALESS_NAMESPACE": "auto"},
                         {"BRANCH_NAME": "feature/Login_Page"})
    assert config.namespace == "paless-feature-login-page"
    assert config.branch == "feature/Login_Page"
    assert config.branch_mode


def test_substitution_values(project: Path) -> None:
    config = load_config(project, None, {}, {"MINIO_CONSOLE_NODEPORT": ""})
    values = config.substitution_values()
    assert values["PALESS_NAMESPACE"] == "paless"
    assert "OVERLAY" not in values and "BASE_IMAGE" not in values
    assert "MINIO_CONSOLE_NODEPORT" not in values  # empty values are left out
    assert set(values) <= SUBSTITUTABLE_NAMES


def test_base_domain_derives_ingress_host(project: Path) -> None:
    config = load_config(project, None, {"PALESS_NAMESPACE": "br-1"},
                         {"PALESS_BASE_DOMAIN": "ci.example.com"})
    assert config.value("INGRESS_HOST") == "*.br-1.ci.example.com"
    assert config.substitution_values()["INGRESS_HOST"] == "*.br-1.ci.example.com"
    explicit = load_config(project, None, {}, {"PALESS_BASE_DOMAIN": "ci.example.com",
                                                 "INGRESS_HOST": "docs.example.com"})
    assert explicit.value("INGRESS_HOST") == "docs.example.com"


def test_build_args_carry_base_image(project: Path) -> None:
    config = load_config(project, None, {}, {"BASE_IMAGE": "example/base:1"})
    assert config.build_args() == {"BASE_IMAGE": "example/base:1"}


# ---- validation: each error names the variable, its source and the fix


def test_unknown_overlay(project: Path) -> None:
    write(project / "paless.env", "OVERLAY=qa\n")
    with pytest.raises(ConfigError) as info:
        load_config(project, None, {}, {})
    text = str(info.value)
    assert "OVERLAY" in text and "paless.env:1" in text
    assert "k8s/overlays/qa/kustomization.yaml" in text
    assert "dev, prod" in text


def test_overlay_name_with_slash(project: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory name"):
        load_config(project, None, {"OVERLAY": "../etc"}, {})


def test_overlay_not_needed_for_images(project: Path) -> None:
    config = load_config(project, None, {"OVERLAY": "qa"}, {}, scope=Scope.IMAGES)
    assert config.overlay == "qa"


@pytest.mark.parametrize("namespace", ["Bad_Name", "-x", "x-", "a" * 64, "a.b"])
def test_invalid_namespace(project: Path, namespace: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(project, None, {}, {"PALESS_NAMESPACE": namespace})
    assert "namespace" in str(info.value).lower() and "environment" in str(info.value)
    assert "PALESS_NAMESPACE" in info.value.hint


def test_invalid_derived_namespace_names_project_name(project: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(project, None, {}, {"PROJECT_NAME": "my.app"})
    assert "PROJECT_NAME" in str(info.value)


def test_invalid_project_name_for_images(project: Path) -> None:
    with pytest.raises(ConfigError, match="PROJECT_NAME"):
        load_config(project, None, {"PROJECT_NAME": "My App"}, {}, scope=Scope.IMAGES)


def test_short_minio_password(project: Path) -> None:
    write(project / "paless.env", "\nMINIO_ROOT_PASSWORD=short\n")
    with pytest.raises(ConfigError) as info:
        load_config(project, None, {}, {})
    assert "MINIO_ROOT_PASSWORD" in str(info.value)
    assert "paless.env:2" in str(info.value)
    assert "short" not in info.value.message.replace("shorter", "")  # value never shown


def prod_tree(project: Path, *names: str) -> None:
    """The prod overlay of `project` as a Secret using these variables."""
    data = "".join(f"  {n}: ${{{n}}}\n" for n in names)
    (project / "k8s" / "overlays" / "prod" / "kustomization.yaml").write_text(
        "resources: [secret.yaml]\n")
    (project / "k8s" / "overlays" / "prod" / "secret.yaml").write_text(
        f"apiVersion: v1\nkind: Secret\nmetadata: {{name: s}}\nstringData:\n{data}")


def render_prod(project: Path, environ: dict[str, str]) -> list[dict]:
    from paless_deploy.core.configuration.context import RunContext
    from paless_deploy.stages.render import render

    config = load_config(project, None, {"OVERLAY": "prod"}, environ)
    return render(RunContext(config=config, started_monotonic=0.0, started_at=0.0), {}).objects


def test_prod_refuses_development_defaults_the_manifests_use(project: Path) -> None:
    secrets = [v.name for v in VARIABLES if v.secret]
    prod_tree(project, *secrets)
    with pytest.raises(ConfigError) as info:
        render_prod(project, {})
    assert "prod" in str(info.value) and "development default" in str(info.value)
    for name in secrets:
        assert name in info.value.message


def test_prod_judges_only_the_variables_the_manifests_use(project: Path) -> None:
    prod_tree(project, "POSTGRES_PASSWORD")
    environ = {"POSTGRES_PASSWORD": "a-generated-postgres-password"}
    # the other credentials are still at their development defaults: not used, not judged
    (obj,) = render_prod(project, environ)
    assert obj["stringData"]["POSTGRES_PASSWORD"] == environ["POSTGRES_PASSWORD"]


def test_prod_refuses_short_credential(project: Path) -> None:
    prod_tree(project, "PAPERLESS_SECRET_KEY")
    with pytest.raises(ConfigError) as info:
        render_prod(project, {"PAPERLESS_SECRET_KEY": "abc"})
    assert "PAPERLESS_SECRET_KEY" in str(info.value) and "8 characters" in str(info.value)
    assert "abc" not in info.value.message
    assert render_prod(project, {"PAPERLESS_SECRET_KEY": "a-long-generated-key"})


def test_several_problems_are_counted(project: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(project, None, {"OVERLAY": "qa"}, {"MINIO_ROOT_PASSWORD": "x"})
    assert "1 more problem" in info.value.hint


@pytest.mark.parametrize(("environ", "words"), [
    ({"MINIO_APP_PASSWORD": "x7q"}, "MINIO_APP_PASSWORD (from the environment) is shorter"),
    ({"MINIO_ROOT_PASSWORD": "x7q"}, "MINIO_ROOT_PASSWORD (from the environment) is shorter"),
    ({"MINIO_APP_USER": "admin"}, "MINIO_APP_USER (from the environment) is MINIO_ROOT_USER"),
])
def test_minio_credentials_minio_would_refuse(project: Path, environ: dict[str, str],
                                              words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(project, None, {}, environ)
    assert words in info.value.message and "x7q" not in info.value.message + info.value.hint


def test_missing_project_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope", None, {}, {})


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90), ("90s", 90), ("5m", 300), ("1h", 3600), ("3d", 259200), ("1.5m", 90),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "5 minutes", "-5s", "1h30m", "5x"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="not a duration"):
        parse_duration(text, "--timeout")


def test_env_example_lists_every_variable_and_loads(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "paless.env.example"
    text = example.read_text()
    for variable in VARIABLES:
        assert f"{variable.name}=" in text, variable.name
    config = load_config(tmp_path, [example], {}, {}, validate=False)
    assert config.value("PROJECT_NAME") == "paless"


def test_secret_values_are_the_configured_credentials(tmp_path: Path) -> None:
    from paless_deploy.core.reporting.report import scrub
    from paless_deploy.stages.project import load_config

    (tmp_path / "k8s" / "overlays" / "dev").mkdir(parents=True)
    (tmp_path / "k8s" / "overlays" / "dev" / "kustomization.yaml").write_text("resources: []\n")
    config = load_config(tmp_path, None, {}, environ={"POSTGRES_PASSWORD": "pg-s3cret-value",
                                                      "MINIO_ROOT_PASSWORD": "minio-s3cret"})
    secrets = config.secret_values()
    assert "pg-s3cret-value" in secrets and "minio-s3cret" in secrets
    assert "paperless" not in secrets  # POSTGRES_USER is not a secret
    log = "connecting as paperless with pg-s3cret-value and minio-s3cret\n"
    assert scrub(log, secrets) == "connecting as paperless with <redacted> and <redacted>\n"


@pytest.mark.parametrize(("overrides", "environ", "name"), [
    ({"PALESS_NAMESPACE": ""}, {}, "PALESS_NAMESPACE"),
    ({}, {"PALESS_NAMESPACE": ""}, "PALESS_NAMESPACE"),
    ({}, {"REGISTRY": " "}, "REGISTRY"),
    ({"OVERLAY": ""}, {}, "OVERLAY"),
])
def test_an_explicitly_empty_value_is_an_error_not_a_fallback(project: Path, overrides: dict,
                                                              environ: dict, name: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(project, None, overrides, environ)
    assert info.value.message.startswith(f"{name} is set but empty")
    assert info.value.exit_code == 2
