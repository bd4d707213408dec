"""Report stage: the JSON result document and the one formatter of errors.

`Result.to_json()` is what `--output json` prints (the design's shape, version 1);
`print_error` is the only place a PalessError becomes text for a person.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from enum import StrEnum

from paless_deploy.core.apitypes import JsonDict, JsonValue
from paless_deploy.core.errors import ExitCode, PalessError, readable

REPORT_VERSION = 1


class RunResult(StrEnum):
    """The document's `result`: how the command ended (strings in the JSON)."""

    SUCCESS = "success"
    FAILED = "failed"  # exit 1: the deploy failed, doctor found a required check failing
    ERROR = "error"  # any other failure
    CHANGES = "changes"  # diff: the cluster differs from the manifests (exit 1)
    UNCHANGED = "unchanged"  # dev: a change that needed no rollout

    @classmethod
    def of_failure(cls, exit_code: ExitCode) -> RunResult:
        """A failure's result: `failed` for exit 1 (it ran and failed), `error` otherwise."""
        return cls.FAILED if exit_code == ExitCode.FAILED else cls.ERROR


class ObjectAction(StrEnum):
    """What the run did to one object (`phases[].objects[].action`)."""

    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    REPLACED = "replaced"  # deleted and created again (a Job, an immutable field)
    PRUNED = "pruned"  # deleted: it left the manifests


class ImageAction(StrEnum):
    """The most significant thing done to one app's image (`images[].action`)."""

    BUILT = "built"  # built in this run and not pushed (`build`)
    PUSHED = "pushed"  # uploaded to the registry in this run (built first if missing)
    SKIPPED = "skipped"  # neither built nor pushed: it already existed where needed


@dataclass(frozen=True)
class ObjectReport:
    """One applied object and what was done to it."""

    kind: str
    name: str
    action: ObjectAction
    ready: bool | None = None
    reason: str = ""
    api_version: str = ""  # "" when not known (`destroy --from-report` needs it for CRDs)
    applied_at: str | None = None  # ISO 8601, UTC: when the apply returned
    ready_at: str | None = None  # when it was seen ready (None: not, or not awaited yet)
    namespace: str = ""  # where it lives ("" cluster-scoped, or not recorded)


@dataclass(frozen=True)
class PhaseReport:
    """One phase of the apply: when it started, how long it took, its objects."""

    name: str
    started_at: str  # ISO 8601, UTC
    duration_s: float
    objects: list[ObjectReport] = field(default_factory=list)


@dataclass(frozen=True)
class ErrorReport:
    """One error of the document: cause, fix and the commands to look further."""

    code: str
    resource: str = ""
    reason: str = ""
    message: str = ""
    hint: str = ""
    commands: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)  # events, container states, log tail
    workload: str = ""  # "Kind/name" of the awaited object it was found under, when known

    @classmethod
    def from_error(cls, error: PalessError) -> ErrorReport:
        """From any PalessError (its declared fields), cut to a readable length."""
        return cls(code=error.code, resource=readable(error.resource), reason=error.reason,
                   message=readable(error.message), hint=readable(error.hint),
                   commands=list(error.commands))


@dataclass
class Result:
    """The result document of one command (`--output json` prints exactly this)."""

    command: str
    result: RunResult = RunResult.SUCCESS
    exit_code: ExitCode = ExitCode.OK
    namespace: str | None = None
    overlay: str | None = None
    url: str | None = None  # where the deployment answers (all, deploy), from its Ingress
    duration_s: float = 0.0
    images: list[JsonValue] = field(default_factory=list)  # images.ImageResult
    phases: list[PhaseReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[ErrorReport] = field(default_factory=list)
    extra: JsonDict = field(default_factory=dict)  # command-specific keys
    version: int = REPORT_VERSION

    def to_dict(self) -> JsonDict:
        """The document as plain data, in the design's key order."""
        doc: JsonDict = {
            "version": self.version,
            "command": self.command,
            "result": self.result,
            "exit_code": self.exit_code,
            "namespace": self.namespace,
            "overlay": self.overlay,
            "duration_s": round(self.duration_s, 3),
            "images": [_plain(i) for i in self.images],
            "phases": [_plain(p) for p in self.phases],
            "warnings": list(self.warnings),
            "errors": [_plain(e) for e in self.errors],
            "url": self.url,  # added after the design's keys: extend, don't reorder
        }
        for key, value in self.extra.items():
            doc.setdefault(key, value)
        return doc

    def to_json(self) -> str:
        """The document as indented JSON."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def scrubbed(self, secrets: Sequence[str]) -> Result:
        """A copy with every known secret value replaced in the texts that can quote what
        the cluster said (messages, evidence, reasons, warnings): CI files get this copy."""
        def s(text: str) -> str:
            return scrub(text, secrets)

        errors = [replace(e, resource=s(e.resource), reason=s(e.reason), message=s(e.message),
                          hint=s(e.hint), commands=[s(c) for c in e.commands],
                          evidence=[s(line) for line in e.evidence]) for e in self.errors]
        phases = [replace(p, objects=[replace(o, reason=s(o.reason)) for o in p.objects])
                  for p in self.phases]
        return replace(self, errors=errors, phases=phases,
                       warnings=[s(w) for w in self.warnings])

    def fail_with(self, error: PalessError) -> Result:
        """Record an error: result "error" (or "failed" for exit 1), its exit code."""
        self.result = RunResult.of_failure(error.exit_code)
        self.exit_code = error.exit_code
        self.errors.append(ErrorReport.from_error(error))
        return self


def _plain(value: JsonValue) -> JsonValue:
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


def error_text(error: PalessError) -> str:
    """The error as one plain paragraph: cause, then fix (cut to a readable length)."""
    text = readable(error.message.rstrip())
    if error.hint:
        hint = readable(error.hint)
        text = f"{text}\n{hint}" if "\n" in text else f"{text} {hint}"
    return text


def scrub(text: str, secrets: Sequence[str], marker: str = "<redacted>") -> str:
    """Text we did not write (container logs) with every known secret value replaced.

    Longest values first, so a secret containing another is replaced whole.
    """
    for value in sorted(set(secrets), key=len, reverse=True):
        if value:
            text = text.replace(value, marker)
    return text
