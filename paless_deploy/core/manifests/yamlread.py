"""Read manifests' YAML as kubectl reads it, into the JSON the API server would receive.

kubectl turns YAML into JSON with sigs.k8s.io/yaml, which parses with go-yaml v2 and
then makes the result JSON-able. PyYAML's safe loader is YAML 1.1 to the letter and so
reads some plain scalars otherwise: a bare `=` is the obscure `value` type (no
constructor: "not valid YAML"), `1:20` is the sexagesimal 80, `1e3` and `08` stay
strings, a date becomes a datetime that JSON cannot carry. This loader keeps PyYAML's
parser and swaps the resolver and a few constructors for go-yaml v2's rules:

- `y`, `Y`, `yes`, `on`, `true` (and their spellings) are true, `n`, `no`, `off`,
  `false` false; `~`, `null` and the empty value are null;
- a plain scalar starting with a sign, a digit or a dot is a number when Go's
  `strconv` reads it as one (underscores dropped, `0x`, `0o`, `0b` and a leading `0`
  for octal), else a string: `1:20`, `2024-01-31` and `1.2.3` are strings; an integer
  beyond 64 bits is a float when written in decimal, else a string (as the API
  machinery reads it, an unsigned one beyond int64 is a float too);
- `<<` merges mappings as a key; anything else bare (`=`, `<<` as a value) is a string;
- tags this tool does not know leave the value as written (go-yaml ignores them);
- then as JSON: non-string keys become strings (`true`, `1`), a float with no fraction
  is written as an integer (`1.0` is `1`), and `.inf`/`.nan` are refused (JSON has none).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import struct
from collections.abc import Hashable
from decimal import Decimal
from typing import ClassVar

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

from paless_deploy.core.apitypes import JsonValue

BOOL_TAG = "tag:yaml.org,2002:bool"
NULL_TAG = "tag:yaml.org,2002:null"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
MERGE_TAG = "tag:yaml.org,2002:merge"
# Our own tag for a plain scalar that may be a number: go-yaml decides by trying to read
# it, which a resolver's regular expression cannot say alone.
NUMBER_TAG = "tag:paless.io,2025:maybe-number"

TRUE_WORDS = ("y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON")
FALSE_WORDS = ("n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF")
SPECIAL_FLOATS = {".nan": math.nan, ".NaN": math.nan, ".NAN": math.nan,
                  **{f"{sign}{inf}": (-math.inf if sign == "-" else math.inf)
                     for sign in ("", "+", "-") for inf in (".inf", ".Inf", ".INF")}}

# strconv.ParseInt(s, 0, 64) after the underscores are dropped: a sign, then a base prefix
# or a leading 0 (octal), then digits of that base.
_GO_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
# go-yaml's yamlStyleFloat, the only floats it tries after the integers.
_GO_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+(?:[eE][-+]?[0-9]+)?")  # a plain scalar starting "."
JSON_INTEGRAL_LIMIT = 1e21  # Go's JSON writes integral floats below this without exponent


class _Resolver(BaseResolver):
    """go-yaml v2's implicit types for plain scalars (nothing for `=`, no timestamps)."""


_Resolver.add_implicit_resolver(
    BOOL_TAG, re.compile("^(?:" + "|".join(TRUE_WORDS + FALSE_WORDS) + ")$"),
    list("yYnNtTfFoO"))
_Resolver.add_implicit_resolver(NULL_TAG, re.compile(r"^(?:~|null|Null|NULL|)$"),
                                ["~", "n", "N", ""])
_Resolver.add_implicit_resolver(NUMBER_TAG, re.compile(r"^[-+.0-9]"), list("-+.0123456789"))
_Resolver.add_implicit_resolver(MERGE_TAG, re.compile(r"^<<$"), ["<"])


def go_number(text: str) -> int | float | str:
    """A plain scalar starting with a sign, digit or dot, as go-yaml v2 resolves it."""
    if text in SPECIAL_FLOATS:
        return SPECIAL_FLOATS[text]
    if text.startswith("."):
        return float(text) if _DOT_FLOAT.fullmatch(text) else text
    plain = text.replace("_", "")
    whole = _go_int(plain) if _GO_INT.fullmatch(plain) else None
    if whole is not None and -(2 ** 63) <= whole < 2 ** 63:
        return whole
    if whole is not None and 0 <= whole < 2 ** 64 and not plain.startswith("+"):
        # a uint64: the API machinery reads a JSON number beyond int64 as a float
        return float(whole)
    if _GO_FLOAT.fullmatch(plain):
        value = float(plain)
        if not math.isinf(value):  # Go's ParseFloat: out of range, not a float
            return value
    return text


def _go_int(plain: str) -> int:
    """strconv.ParseInt(plain, 0, ...) without its range check (`_GO_INT` matched)."""
    sign = -1 if plain.startswith("-") else 1
    body = plain.lstrip("+-")
    bases = {"0x": 16, "0o": 8, "0b": 2}
    prefix = body[:2].lower()
    if prefix in bases:
        return sign * int(body[2:], bases[prefix])
    if len(body) > 1 and body.startswith("0"):
        return sign * int(body[1:], 8)
    return sign * int(body, 10)


class _Constructor(SafeConstructor):
    """SafeConstructor with go-yaml v2's values and sigs.k8s.io/yaml's JSON rules."""

    bool_values: ClassVar[dict[str, bool]] = {**{w.lower(): True for w in TRUE_WORDS},
                                              **{w.lower(): False for w in FALSE_WORDS}}

    def construct_number(self, node: ScalarNode) -> JsonValue:
        value = go_number(str(self.construct_scalar(node)))
        if isinstance(value, float):
            if math.isinf(value) or math.isnan(value):
                raise ConstructorError(None, None, f"{node.value!r} is not a number JSON can "
                                       "carry (kubectl refuses it too)", node.start_mark)
            if value.is_integer() and abs(value) < JSON_INTEGRAL_LIMIT:
                return int(Decimal(repr(value)))  # Go's shortest digits: 1.8e19 is 18...000
        return value

    def construct_as_written(self, node: Node) -> JsonValue:
        """A value under a tag go-yaml does not resolve: kept as if untagged."""
        if isinstance(node, ScalarNode):
            return str(self.construct_scalar(node))
        if isinstance(node, SequenceNode):
            return list(self.construct_sequence(node, deep=True))
        if isinstance(node, MappingNode):
            return dict(self.construct_mapping(node, deep=True))
        return None

    def construct_text(self, node: ScalarNode) -> str:
        return str(self.construct_scalar(node))

    def construct_binary_text(self, node: ScalarNode) -> str:
        """`!!binary`: go-yaml hands the decoded bytes on as a string."""
        try:
            return base64.b64decode(str(self.construct_scalar(node))).decode("utf-8", "replace")
        except (binascii.Error, ValueError) as exc:
            raise ConstructorError(None, None, f"!!binary that is not base64: {exc}",
                                   node.start_mark) from None

    def construct_mapping(self, node: MappingNode, deep: bool = False
                          ) -> dict[Hashable, JsonValue]:
        """Keys become JSON's strings as they are read (so `1` and `true` stay two keys,
        which Python's dict would merge); `<<` merges first, the node's own keys win."""
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, f"expected a mapping, found {node.id}",
                                   node.start_mark)
        self.flatten_mapping(node)
        mapping: dict[Hashable, JsonValue] = {}
        for key_node, value_node in node.value:
            # a number key stays as go-yaml read it (a float is not made an integer)
            key = _json_key(go_number(key_node.value) if key_node.tag == NUMBER_TAG
                            else self.construct_object(key_node, deep=deep), key_node)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


# Which constructor reads which tag; everything else is SafeConstructor's.
CONSTRUCTORS: tuple[tuple[str | None, str], ...] = (
    (NUMBER_TAG, "construct_number"),
    (INT_TAG, "construct_number"),
    (FLOAT_TAG, "construct_number"),
    (MERGE_TAG, "construct_text"),  # `<<` as a value
    ("tag:yaml.org,2002:timestamp", "construct_text"),  # go-yaml keeps dates as text
    ("tag:yaml.org,2002:value", "construct_text"),  # `=`, when tagged explicitly
    ("tag:yaml.org,2002:binary", "construct_binary_text"),
    ("tag:yaml.org,2002:set", "construct_as_written"),  # types go-yaml v2 does not know
    ("tag:yaml.org,2002:omap", "construct_as_written"),
    ("tag:yaml.org,2002:pairs", "construct_as_written"),
    (None, "construct_as_written"),  # any other tag
)
for _tag, _method in CONSTRUCTORS:
    _Constructor.add_constructor(_tag, getattr(_Constructor, _method))


def _json_key(key: object, node: Node) -> str:
    """A mapping key as sigs.k8s.io/yaml writes it in JSON (`true`, `1`, `1.5`)."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        return _go_float32_text(key)
    raise ConstructorError(None, None, f"a mapping key of type {type(key).__name__} "
                           f"({key!r}) has no JSON form", node.start_mark)


def _go_float32_text(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 32): the fewest digits that give the same
    float32, in exponent form from 1e+06 (go-yaml's text of a float key)."""
    if math.isinf(value) or math.isnan(value):
        return ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
    def single(number: float) -> float:
        return float(struct.unpack("f", struct.pack("f", number))[0])

    target = single(value)
    text = f"{target:.8e}"
    for precision in range(9):  # digits after the point, fewest first
        text = f"{target:.{precision}e}"
        if single(float(text)) == target:
            break
    mantissa, exponent = text.split("e")
    mantissa = mantissa.rstrip("0").rstrip(".") if "." in mantissa else mantissa
    power = int(exponent)
    if -4 <= power < 6:
        return f"{Decimal(mantissa).scaleb(power).normalize():f}"
    return f"{mantissa}e{'-' if power < 0 else '+'}{abs(power):02d}"


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class KubeLoader(CParser, _Constructor, _Resolver):
        """libyaml's parser (the fast path) with go-yaml's rules."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            _Constructor.__init__(self)
            _Resolver.__init__(self)
else:  # pragma: no cover - PyYAML built without libyaml
    from yaml.composer import Composer
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class KubeLoader(Reader, Scanner, Parser, Composer,  # type: ignore[no-redef]
                     _Constructor, _Resolver):
        """PyYAML's own parser with go-yaml's rules."""

        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)
            _Constructor.__init__(self)
            _Resolver.__init__(self)


def load_documents(text: str) -> list[JsonValue]:
    """Every document of a multi-document YAML stream, as kubectl reads it (empty
    documents are None). Raises yaml.YAMLError for text that is not YAML."""
    loader = KubeLoader(text)
    try:
        documents: list[JsonValue] = []
        while loader.check_data():
            documents.append(loader.get_data())
        return documents
    finally:
        loader.dispose()
