"""The deployment's URL from the rendered Ingress (scheme, host, path) or the base domain."""

from __future__ import annotations

from paless_deploy.core.reporting.deployurl import deployment_url


def ingress(name: str, host: str | None, *, path: str = "/", tls: list | None = None,
            component: str | None = None, annotations: dict | None = None) -> dict:
    rule: dict = {"http": {"paths": [{"path": path, "pathType": "Prefix"}]}}
    if host is not None:
        rule["host"] = host
    meta: dict = {"name": name, "annotations": annotations or {}}
    if component:
        meta["labels"] = {"app.kubernetes.io/component": component}
    spec: dict = {"rules": [rule]}
    if tls is not None:
        spec["tls"] = tls
    return {"kind": "Ingress", "metadata": meta, "spec": spec}


def url(*objects: dict, base_domain: str | None = None) -> str | None:
    return deployment_url(objects, namespace="paless-x", tenant="paless", base_domain=base_domain)


def test_plain_host_is_http_with_its_path():
    assert url(ingress("web", "paless.local")) == "http://paless.local/"
    assert url(ingress("web", "app.example.com", path="/docs")) == "http://app.example.com/docs"


def test_tls_section_makes_it_https():
    assert url(ingress("web", "app.example.com", tls=[{"hosts": ["app.example.com"]}])) \
        == "https://app.example.com/"
    assert url(ingress("web", "a.example.com", tls=[{"hosts": ["*.example.com"]}])) \
        == "https://a.example.com/"
    assert url(ingress("web", "a.b.example.com", tls=[{"hosts": ["*.example.com"]}])) \
        == "http://a.b.example.com/", "a wildcard certificate covers one label"
    assert url(ingress("web", "a.example.com", tls=[{"secretName": "default"}])) \
        == "https://a.example.com/"


def test_wildcard_branch_host_gets_the_tenant():
    assert url(ingress("web", "*.paless-x.example.com",
                       tls=[{"hosts": ["*.paless-x.example.com"]}])) \
        == "https://paless.paless-x.example.com/"


def test_web_ingress_first_and_explicit_annotation_wins():
    other = ingress("admin", "admin.example.com")
    web = ingress("zz-web", "web.example.com", component="web")
    assert url(other, web) == "http://web.example.com/"
    marked = ingress("web", None, annotations={"paless.io/url": "https://lb.example.com/app"})
    assert url(marked) == "https://lb.example.com/app"


def test_regex_paths_and_hostless_rules():
    assert url(ingress("web", "x.example.com", path="/api(/|$)(.*)")) == "http://x.example.com/"
    assert url(ingress("web", None)) is None
    assert url(ingress("web", None), base_domain="example.com") \
        == "http://paless.paless-x.example.com/"
    assert url(base_domain=None) is None
