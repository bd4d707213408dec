"""Whose is a live object (core/ownership): never take over or delete another namespace's."""

from __future__ import annotations

from paless_deploy.core.manifests.ownership import cluster_object_owner, volume_deletable


def pv(instance: str | None = None, claim: tuple[str, str] | None = None) -> dict:
    meta: dict = {"name": "postgres-pv"}
    if instance:
        meta["labels"] = {"app.kubernetes.io/managed-by": "paless-deploy",
                          "app.kubernetes.io/instance": instance}
    spec: dict = {}
    if claim:
        spec["claimRef"] = {"namespace": claim[0], "name": claim[1]}
    return {"kind": "PersistentVolume", "metadata": meta, "spec": spec}


def test_absent_and_ours_may_be_applied() -> None:
    assert cluster_object_owner(None, "b") == cluster_object_owner(pv("b", ("b", "c")), "b")
    assert not cluster_object_owner(None, "b").refusal


def test_another_namespaces_volume_is_refused_naming_it() -> None:
    verdict = cluster_object_owner(pv("a", ("a", "postgres-data")), "b")
    assert "belongs to namespace a" in verdict.refusal and "a/postgres-data" in verdict.refusal
    bound = cluster_object_owner(pv(None, ("a", "data")), "b")
    assert "bound to claim a/data of namespace a" in bound.refusal


def test_someone_elses_object_is_left_alone() -> None:
    storage_class = {"kind": "StorageClass", "metadata": {"name": "local-path"}}
    verdict = cluster_object_owner(storage_class, "b")
    assert verdict.foreign and not verdict.refusal


def test_destroy_deletes_only_its_own_volumes() -> None:
    assert volume_deletable(pv("b", ("b", "data")), "b")
    assert volume_deletable(pv("b"), "b")
    assert not volume_deletable(pv("b", ("a", "data")), "b")
    assert not volume_deletable(pv("a"), "b") and not volume_deletable(pv(None), "b")


def test_the_claims_a_statefulset_made_are_found_by_name():
    from paless_deploy.core.manifests.ownership import owned_by, statefulset_claims

    sts = {"metadata": {"name": "db"},
           "spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}},
                                             {"metadata": {"name": "wal"}}]}}
    claims = [{"metadata": {"name": n}} for n in (
        "data-db-0", "wal-db-1", "data-db-x", "data-dbx-0", "other-db-0", "data-db-0-extra")]
    assert [c["metadata"]["name"] for c in statefulset_claims(sts, claims)] == [
        "data-db-0", "wal-db-1"]
    assert statefulset_claims({"metadata": {"name": "db"}, "spec": {}}, claims) == []
    owned = {"metadata": {"ownerReferences": [{"kind": "StatefulSet", "name": "db"}]}}
    assert owned_by(owned, "StatefulSet", "db") and not owned_by(owned, "StatefulSet", "web")
