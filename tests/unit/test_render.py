"""Unit tests of the render stage against a small fixture overlay.

Runs the real `kubectl kustomize`; no cluster is involved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from paless_deploy.core.errors import ConfigError
from paless_deploy.core.manifests.render import (
    REDACTED,
    AppImages,
    format_path,
    has_tag_or_digest,
    redact_secrets,
    rewrite_images,
    substitute_variables,
    to_yaml,
)
from paless_deploy.stages.render import render_overlay

FIXTURE_PROJECT = Path(__file__).resolve().parents[1] / "fixtures" / "overlays" / "project"
APP_IMAGES = {"web": "localhost:5000/paless-web:abc123"}
VALUES = {
    "POSTGRES_PASSWORD": "s3cret-value-xyz",
    "POSTGRES_DB": "paperless",
    "PAPERLESS_TIME_ZONE": "Europe/Berlin",
    "CELERY_TENANT_BATCH_SIZE": "4",
    "PALESS_NAMESPACE": "ns1",
    "DATA_VOLUME_SIZE": "1Gi",
}


def render(variables: dict[str, str] = VALUES, images: dict[str, str] = APP_IMAGES) -> dict:
    """Render the basic fixture overlay; objects keyed by `Kind/name`."""
    objects = render_overlay(FIXTURE_PROJECT, "basic", "ns1", variables, images)
    return {f"{o['kind']}/{o['metadata']['name']}": o for o in objects}


@pytest.fixture(scope="module")
def rendered() -> dict:
    return render()


def test_allow_listed_placeholders_are_substituted(rendered: dict) -> None:
    data = rendered["ConfigMap/fixture-config"]["data"]
    assert data["mixed"] == "db=paperless;tz=Europe/Berlin"
    env = rendered["Deployment/fixture-web"]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[2] == {"name": "TZ", "value": "Europe/Berlin"}
    assert rendered["Secret/fixture-secret"]["stringData"]["password"] == "s3cret-value-xyz"


def test_bare_paren_and_unknown_placeholders_are_untouched(rendered: dict) -> None:
    data = rendered["ConfigMap/fixture-config"]["data"]
    assert data["bare"] == "$POSTGRES_DB"
    assert data["paren"] == "$(POSTGRES_DB)"
    assert data["other"] == "${NOT_A_PALESS_VARIABLE}"
    pod = rendered["Deployment/fixture-web"]["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["command"][2] == "echo $HOSTNAME ${HOSTNAME}"
    assert pod["containers"][0]["env"][1]["value"] == "$(A)"


def test_integer_fields_become_ints_but_free_form_data_stays_string(rendered: dict) -> None:
    assert rendered["Deployment/fixture-web"]["spec"]["replicas"] == 4
    assert rendered["ConfigMap/fixture-config"]["data"]["count"] == "4"


def test_optional_field_is_removed_when_unset(rendered: dict) -> None:
    port = rendered["Service/fixture-console"]["spec"]["ports"][0]
    assert port == {"port": 9001}


def test_optional_field_is_set_and_typed_when_given() -> None:
    objects = render({**VALUES, "MINIO_CONSOLE_NODEPORT": "30090"})
    assert objects["Service/fixture-console"]["spec"]["ports"][0]["nodePort"] == 30090


def test_missing_variable_names_object_and_field() -> None:
    values = {k: v for k, v in VALUES.items() if k != "PAPERLESS_TIME_ZONE"}
    with pytest.raises(ConfigError) as err:
        render(values)
    message = str(err.value)
    assert "Deployment/fixture-web" in message
    assert "spec.template.spec.containers[0].env[2].value" in message
    assert "PAPERLESS_TIME_ZONE" in message
    assert "ConfigMap/fixture-config field data.mixed" in message


def test_missing_secret_error_shows_no_value() -> None:
    values = {k: v for k, v in VALUES.items() if k != "POSTGRES_PASSWORD"}
    values["PAPERLESS_TIME_ZONE"] = ""
    with pytest.raises(ConfigError) as err:
        render(values)
    assert "Secret/fixture-secret field stringData.password" in str(err.value)
    assert "s3cret" not in str(err.value)


def test_secret_variable_outside_a_secret_is_refused() -> None:
    objects = [{"kind": "ConfigMap", "metadata": {"name": "leak"},
                "data": {"url": "postgres://u:${POSTGRES_PASSWORD}@db"}}]
    with pytest.raises(ConfigError) as err:
        substitute_variables(objects, {"POSTGRES_PASSWORD": "s3cret-value-xyz"})
    assert "ConfigMap/leak" in str(err.value) and "data.url" in str(err.value)
    assert "s3cret" not in str(err.value)


def test_app_image_is_rewritten_and_pinned_images_kept(rendered: dict) -> None:
    pod = rendered["Deployment/fixture-web"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "localhost:5000/paless-web:abc123"
    assert pod["containers"][1]["image"].startswith("redis@sha256:")
    assert pod["initContainers"][0]["image"] == "busybox:1.37.0"


def test_unbuilt_app_image_is_an_error_naming_object_and_container() -> None:
    with pytest.raises(ConfigError) as err:
        render(images={})
    assert "Deployment/fixture-web" in str(err.value)
    assert "'web'" in str(err.value)


@pytest.mark.parametrize("image", ["nginx", "localhost:5000/nginx"])
def test_untagged_third_party_image_is_an_error(image: str) -> None:
    job = {"kind": "Job", "metadata": {"name": "j"},
           "spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}}
    with pytest.raises(ConfigError, match="Job/j container 'c'"):
        rewrite_images([job], APP_IMAGES)


def test_has_tag_or_digest() -> None:
    assert has_tag_or_digest("localhost:5000/paless-web:abc")
    assert has_tag_or_digest("redis@sha256:00")
    assert not has_tag_or_digest("localhost:5000/paless-web")
    assert not has_tag_or_digest("web")


def test_namespace_and_labels(rendered: dict) -> None:
    for key, obj in rendered.items():
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/managed-by"] == "paless-deploy", key
        assert labels["app.kubernetes.io/instance"] == "ns1", key
    assert rendered["ConfigMap/fixture-config"]["metadata"]["namespace"] == "ns1"
    # an existing part-of label is kept, a missing one added
    assert rendered["ConfigMap/fixture-config"]["metadata"]["labels"][
        "app.kubernetes.io/part-of"] == "something-else"
    assert rendered["Secret/fixture-secret"]["metadata"]["labels"][
        "app.kubernetes.io/part-of"] == "paless"
    # cluster-scoped: no namespace; name carries the namespace through the placeholder
    pv = rendered["PersistentVolume/fixture-ns1"]
    assert "namespace" not in pv["metadata"]
    # selectors are left alone
    deployment = rendered["Deployment/fixture-web"]
    assert deployment["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/component": "web"}
    assert "app.kubernetes.io/instance" not in deployment["spec"]["template"]["metadata"]["labels"]


def test_redaction_and_yaml(rendered: dict) -> None:
    objects = list(rendered.values())
    redacted = redact_secrets(objects)
    text = to_yaml(redacted)
    assert "s3cret-value-xyz" not in text
    assert REDACTED in text
    # the input is not modified
    assert rendered["Secret/fixture-secret"]["stringData"]["password"] == "s3cret-value-xyz"
    assert list(yaml.safe_load_all(text)) == redacted


def test_broken_kustomization_names_overlay_and_stderr() -> None:
    with pytest.raises(ConfigError) as err:
        render_overlay(FIXTURE_PROJECT, "broken", "ns1", VALUES, APP_IMAGES)
    assert "'broken'" in str(err.value)
    assert "does-not-exist.yaml" in str(err.value)


def test_unknown_overlay_is_an_error() -> None:
    with pytest.raises(ConfigError, match="'nope'"):
        render_overlay(FIXTURE_PROJECT, "nope", "ns1", VALUES, APP_IMAGES)


def test_missing_kubectl_is_an_error_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigError) as err:
        render_overlay(FIXTURE_PROJECT, "basic", "ns1", VALUES, APP_IMAGES)
    assert "kubectl" in err.value.hint


def test_format_path() -> None:
    path = ("spec", "template", "spec", "containers", 0, "env", 2, "value")
    assert format_path(path) == "spec.template.spec.containers[0].env[2].value"
    assert format_path(("metadata", "annotations", "paless.io/phase")) == \
        "metadata.annotations['paless.io/phase']"


# --- properties ---------------------------------------------------------------------------

@given(st.text(min_size=1))
def test_value_is_inserted_verbatim_in_one_pass(value: str) -> None:
    """Whatever a value contains (even `${POSTGRES_DB}`), it is inserted as is, never re-expanded."""
    objects = [{"kind": "ConfigMap", "metadata": {"name": "c"},
                "data": {"k": "x-${POSTGRES_DB}-y", "n": "${POSTGRES_DB}"}}]
    out = substitute_variables(objects, {"POSTGRES_DB": value})
    assert out[0]["data"] == {"k": f"x-{value}-y", "n": value}


@given(st.text().filter(lambda s: "${" not in s))
def test_strings_without_braced_placeholders_are_unchanged(text: str) -> None:
    objects = [{"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": text}}]
    assert substitute_variables(objects, {}) == objects


# ---------------------------------------------------------------------------
# images of trees not written for the tool


def deployment_with(*images: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {
                "initContainers": [{"name": "init", "image": images[0]}],
                "containers": [{"name": f"c{i}", "image": image}
                               for i, image in enumerate(images[1:])]}}}}


OURS = AppImages({"web": "localhost:5000/paless-web:abc123", "worker": "localhost:5000/paless-worker:def456"},
                 registry="localhost:5000", project="paless")


def images_of(obj: dict) -> list[str]:
    spec = obj["spec"]["template"]["spec"]
    return [c["image"] for c in spec["initContainers"] + spec["containers"]]


@pytest.mark.parametrize("spelling", [
    "web", "localhost:5000/paless-web", "localhost:5000/paless-web:latest",
    "127.0.0.1:5000/paless-web:v1", "[::1]:5000/paless-web:latest",
    "localhost:5000/paless-web@sha256:" + "a" * 64])
def test_every_spelling_of_our_image_is_rewritten(spelling: str) -> None:
    (obj,) = rewrite_images([deployment_with(spelling, "localhost:5000/paless-worker:latest",
                                             "postgres:16")], OURS)
    assert images_of(obj) == ["localhost:5000/paless-web:abc123",
                              "localhost:5000/paless-worker:def456", "postgres:16"]


def test_explicit_mapping_for_other_names() -> None:
    images = AppImages(OURS.refs, registry="localhost:5000", project="paless",
                       aliases={"web": "ghcr.io/acme/paperless-web"})
    (obj,) = rewrite_images([deployment_with("ghcr.io/acme/paperless-web:2.1", "redis:7")],
                            images)
    assert images_of(obj) == ["localhost:5000/paless-web:abc123", "redis:7"]


def test_an_image_of_our_registry_naming_no_app_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        rewrite_images([deployment_with("localhost:5000/paless-webb:latest")], OURS)
    assert "paless-webb" in info.value.message and "localhost:5000/paless-web" in \
        info.value.message and info.value.exit_code == 2


def test_a_tree_written_for_project_name_app_says_so() -> None:
    with pytest.raises(ConfigError, match="names no app") as info:
        rewrite_images([deployment_with("localhost:5000/app-web:latest")], OURS)
    assert "PROJECT_NAME=app" in info.value.hint


def test_a_pinned_mirror_in_our_registry_is_left_alone() -> None:
    (obj,) = rewrite_images([deployment_with("localhost:5000/postgres:16")], OURS)
    assert images_of(obj) == ["localhost:5000/postgres:16"]


def test_a_typo_of_a_variable_is_an_error_naming_the_nearest() -> None:
    config_map: dict[str, Any] = {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"db": "${POSTGRES_DBB}", "shell": "echo ${HOME} ${PATH}"}}
    with pytest.raises(ConfigError) as info:
        substitute_variables([config_map], {"POSTGRES_DB": "paperless"})
    assert "${POSTGRES_DBB}" in info.value.message and "did you mean ${POSTGRES_DB}" in \
        info.value.message
    config_map["data"]["db"] = "${POSTGRES_DB}"
    (obj,) = substitute_variables([config_map], {"POSTGRES_DB": "paperless"})
    assert obj["data"] == {"db": "paperless", "shell": "echo ${HOME} ${PATH}"}


def test_classes_a_deploy_needs_leave_out_static_volumes_and_their_claims():
    from paless_deploy.core.manifests.render import classes_named

    objects = [
        {"kind": "PersistentVolume", "metadata": {"name": "pv-data"},
         "spec": {"storageClassName": "manual", "claimRef": {"name": "data"}}},
        {"kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
         "spec": {"storageClassName": "manual"}},  # reserved by the volume's claimRef
        {"kind": "PersistentVolumeClaim", "metadata": {"name": "media"},
         "spec": {"storageClassName": "manual", "volumeName": "pv-media"}},  # pre-bound
        {"kind": "PersistentVolumeClaim", "metadata": {"name": "orphan"},
         "spec": {"storageClassName": "fast"}},  # provisioned: the class must exist
        {"kind": "StatefulSet", "metadata": {"name": "db"},
         "spec": {"volumeClaimTemplates": [{"spec": {"storageClassName": "local-path"}}]}},
    ]
    storage, _ = classes_named(objects)
    assert storage == {"fast": ["PersistentVolumeClaim/orphan"],
                       "local-path": ["StatefulSet/db"]}


def test_dollar_dollar_is_a_literal_placeholder_and_unknown_names_are_warned():
    from paless_deploy.core.manifests.render import placeholders_in, substitute_variables

    objects = [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                "data": {"escaped": "echo $${PROJECT_NAME} ${PROJECT_NAME}",
                         "shell": "echo ${HOME_OF_APP}", "quiet": "echo $${HOME_OF_APP}"}}]
    assert placeholders_in(objects) == {"PROJECT_NAME"}
    warnings: list[str] = []
    done = substitute_variables(objects, {"PROJECT_NAME": "tiny"}, warnings)
    assert done[0]["data"] == {"escaped": "echo ${PROJECT_NAME} tiny",
                               "shell": "echo ${HOME_OF_APP}", "quiet": "echo ${HOME_OF_APP}"}
    assert warnings == [("ConfigMap/c field data.shell uses ${HOME_OF_APP}, which is not a "
                         "variable of paless-deploy: it is shipped as written (for a shell in "
                         "the container, write $${HOME_OF_APP}: no warning, the same text)")]


# ---------------------------------------------------------------------------
# namespaces: the tree's own goes into the target, any other is deployed where it says


def _named(kind: str, name: str, namespace: str | None = None, api_version: str = "v1"
           ) -> dict:
    meta: dict = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def _where(objects: list[dict]) -> dict[str, str | None]:
    return {f"{o['kind']}/{o['metadata']['name']}@{o['metadata'].get('namespace')}":
            o["metadata"].get("namespace") for o in objects}


def test_the_trees_own_namespace_goes_into_the_target() -> None:
    from paless_deploy.core.manifests.render import for_namespace

    tree = [_named("Namespace", "paperless"), _named("ConfigMap", "a", "paperless"),
            _named("Secret", "b", "paperless"), _named("ConfigMap", "c")]
    objects, warnings = for_namespace(tree, "branch-x")
    assert {o["metadata"].get("namespace") for o in objects} == {"branch-x"}
    assert [o["kind"] for o in objects] == ["ConfigMap", "Secret", "ConfigMap"]
    assert any("Namespace/paperless in the manifests was dropped" in w for w in warnings)


def test_objects_naming_another_namespace_stay_there_and_roles_no_longer_collide() -> None:
    from paless_deploy.core.manifests.render import for_namespace

    rbac = "rbac.authorization.k8s.io/v1"
    tree = [_named("ServiceAccount", "op"), _named("ConfigMap", "dashboards"),
            _named("Deployment", "op", api_version="apps/v1"),
            _named("Role", "reader", "kube-system", rbac), _named("Role", "reader", "default", rbac),
            _named("ClusterRole", "op", api_version=rbac)]
    objects, _ = for_namespace(tree, "mon")
    assert sorted(str(o["metadata"].get("namespace")) for o in objects) == [
        "None", "default", "kube-system", "mon", "mon", "mon"]
    assert all(o["metadata"]["labels"]["app.kubernetes.io/instance"] == "mon" for o in objects)


def test_a_namespace_of_the_tree_that_is_not_its_own_is_kept_as_a_shared_object() -> None:
    from paless_deploy.core.manifests.render import for_namespace

    tree = [_named("ConfigMap", "a"), _named("ConfigMap", "b"), _named("Namespace", "tools"),
            _named("ConfigMap", "c", "tools")]
    objects, warnings = for_namespace(tree, "app")
    assert _where(objects) == {"ConfigMap/a@app": "app", "ConfigMap/b@app": "app",
                               "Namespace/tools@None": None, "ConfigMap/c@tools": "tools"}
    assert warnings == []


def test_a_custom_kind_its_crd_declares_cluster_scoped_gets_no_namespace() -> None:
    from paless_deploy.core.manifests.render import for_namespace

    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "issuers.example.com"},
           "spec": {"group": "example.com", "scope": "Cluster",
                    "names": {"kind": "ClusterIssuer", "plural": "issuers"}}}
    issuer = _named("ClusterIssuer", "letsencrypt", "somewhere", "example.com/v1")
    objects, _ = for_namespace([crd, issuer, _named("ConfigMap", "a")], "app")
    assert "namespace" not in objects[1]["metadata"]


def test_two_objects_placed_in_the_same_namespace_are_still_refused() -> None:
    from paless_deploy.core.manifests.render import for_namespace

    tree = [_named("ConfigMap", "c", "team-a"), _named("ConfigMap", "d", "team-a"),
            _named("ConfigMap", "c")]
    with pytest.raises(ConfigError) as err:
        for_namespace(tree, "app")
    assert err.value.code == "duplicate-object"
    assert "(namespaces team-a and (none) in the tree)" in err.value.message
