"""Unit tests of core.manifests.yamlread: YAML read as kubectl (sigs.k8s.io/yaml over
go-yaml v2) reads it. Each expected value below is what `kubectl create --dry-run=client
-o json` printed for the same text (tests/integration/test_yaml_kubectl.py checks the
whole set against the real kubectl)."""

from __future__ import annotations

import json

import pytest
import yaml

from paless_deploy.adapters.kustomize import _parse_kustomize_output
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.manifests.yamlread import go_number, load_documents


def value(text: str) -> object:
    doc = load_documents(f"v: {text}\n")[0]
    assert isinstance(doc, dict)
    return doc["v"]


@pytest.mark.parametrize(("text", "expected"), [
    ("=", "="),  # PyYAML's safe loader: "could not determine a constructor" (the value type)
    ("<<", "<<"),
    ("y", True), ("Y", True), ("yes", True), ("On", True), ("TRUE", True),
    ("n", False), ("No", False), ("off", False), ("False", False),
    ("~", None), ("null", None), ("", None),
    ("1:20", "1:20"),  # YAML 1.1 sexagesimal (80) for PyYAML
    ("08", 8), ("0777", 511), ("0x1F", 31), ("0o17", 15), ("0b101", 5), ("-0b11", -3),
    ("1_000", 1000), ("+12", 12), ("1e3", 1000), ("1.0", 1), ("1.5", 1.5), (".5", 0.5),
    ("2024-01-31", "2024-01-31"),  # a date stays text (PyYAML: a datetime)
    ("2024-01-31T10:00:00Z", "2024-01-31T10:00:00Z"),
    ("1.2.3", "1.2.3"), ("v1", "v1"), ("+", "+"), (".", "."), ("-x", "-x"),
    ("99999999999999999999999", 1e23),  # beyond 64 bits, decimal: a float
    ("18446744073709551615", 18446744073709552000),  # uint64: read back as a float
    ("0xFFFFFFFFFFFFFFFFFFFF", "0xFFFFFFFFFFFFFFFFFFFF"),  # beyond 64 bits in hex: text
    ("!foo bar", "bar"),  # unknown tags are ignored
    ("!!binary aGVsbG8=", "hello"),
    ("!!timestamp 2020-01-01", "2020-01-01"),
    ('"yes"', "yes"), ("'08'", "08"), ('"="', "="),
])
def test_scalars_as_kubectl_reads_them(text: str, expected: object) -> None:
    got = value(text)
    assert got == expected and type(got) is type(expected)


def test_keys_become_json_strings_as_kubectl_writes_them() -> None:
    doc = load_documents("{1: a, true: b, 1.5: c, 1e6: d, y: e, 0x10: f, 3.0: g, null_: h}")[0]
    assert doc == {"1": "a", "true": "e", "1.5": "c", "1e+06": "d", "16": "f", "3": "g",
                   "null_": "h"}


def test_merge_keys_merge_and_the_mapping_own_keys_win() -> None:
    doc = load_documents("""
base: &base {image: a:1, pullPolicy: Always}
extra: &extra {port: 80}
one: {<<: *base, pullPolicy: IfNotPresent}
two: {<<: [*base, *extra], port: 81}
""")[0]
    assert doc["one"] == {"image": "a:1", "pullPolicy": "IfNotPresent"}
    assert doc["two"] == {"image": "a:1", "pullPolicy": "Always", "port": 81}


def test_many_documents_empty_ones_included_and_a_large_one() -> None:
    big = "x" * 1_000_000
    docs = load_documents(f"a: 1\n---\n---\nb: {big}\n" + "---\nc: 3\n" * 500)
    assert docs[0] == {"a": 1} and docs[1] is None and docs[2] == {"b": big}
    assert len(docs) == 503


@pytest.mark.parametrize("text", ["v: .inf", "v: -.Inf", "v: .nan"])
def test_numbers_json_cannot_carry_are_refused(text: str) -> None:
    with pytest.raises(yaml.YAMLError, match="JSON"):
        load_documents(text)


def test_a_crd_enum_holding_a_bare_equals_sign_reads_and_stays_json() -> None:
    crd = """apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
spec:
  versions:
  - schema:
      openAPIV3Schema:
        properties:
          matchType:
            enum:
            - =
            - '!='
            - =~
"""
    doc = load_documents(crd)[0]
    enum = doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"][
        "matchType"]["enum"]
    assert enum == ["=", "!=", "=~"]
    json.dumps(doc)  # every value is JSON


def test_go_number_falls_back_to_the_text() -> None:
    assert go_number("1.2.3") == "1.2.3"
    assert go_number("-") == "-"
    assert go_number("1e400") == "1e400"  # out of range for Go's ParseFloat


def test_kustomize_output_that_is_not_yaml_names_the_overlay(tmp_path) -> None:
    with pytest.raises(ConfigError) as err:
        _parse_kustomize_output("a: [1\n", "dev", tmp_path)
    assert "overlay 'dev' is not valid YAML" in err.value.message
