"""An earlier run's JSON report, read back: the images it pushed, the objects it applied.

`--images-from` deploys exactly the digests a build job pushed (build once, deploy many);
`destroy --from-report` removes exactly what a deploy job applied. Text in, checked data
out: every problem is a ConfigError (exit 2) naming the file and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from paless_deploy.core.errors import ConfigError
from paless_deploy.core.images.imageref import ImageRef, parse_image
from paless_deploy.core.reporting.report import REPORT_VERSION, ObjectAction

PRODUCE_HINT = ("Write it with `paless-deploy --output json push > deploy.json` (or `all`): "
                "stdout then carries exactly the report, progress goes to stderr.")


@dataclass(frozen=True)
class ReportedImage:
    """One app's image as a report recorded it: reference and registry digest."""

    app: str
    ref: str  # repository:tag, as pushed
    digest: str | None  # None or "unknown" when the run did not push it

    def pinned(self) -> ImageRef:
        """`repository:tag@digest` (ConfigError when the report has no usable digest)."""
        base = self.ref.partition("@")[0]
        if not self.digest or self.digest == "unknown":
            raise ConfigError(
                f"The report has no registry digest for app {self.app} ({base}): that run "
                "built the image but did not push it.",
                "Use the report of a run that pushed it (`push` or `all`), which records "
                "each image's digest.", code="report-no-digest", resource=f"image/{self.app}")
        try:
            return parse_image(f"{base}@{self.digest}")
        except ValueError as exc:
            raise ConfigError(
                f"The report's image of app {self.app} ({base}@{self.digest}) is not an image "
                f"reference: {exc}.", "Use the report as paless-deploy wrote it.",
                code="bad-report", resource=f"image/{self.app}") from None


@dataclass(frozen=True)
class ReportedObject:
    """One object a report says was applied."""

    api_version: str  # "" in reports written before the key existed
    kind: str
    name: str
    namespace: str = ""  # "" for cluster-scoped objects and in older reports


@dataclass(frozen=True)
class PriorReport:
    """What the tool needs from an earlier run's report."""

    source: str  # the file, for messages
    command: str
    result: str
    namespace: str | None
    images: tuple[ReportedImage, ...]
    objects: tuple[ReportedObject, ...]

    def image_of(self, app: str) -> ReportedImage | None:
        """The app's image, None when the report has none."""
        return next((i for i in self.images if i.app == app), None)

    def pinned_refs(self, apps: Sequence[str]) -> dict[str, ImageRef]:
        """app -> `repository:tag@digest` for each app (all the report's when empty).

        ConfigError naming the apps the report lacks, or an image it did not push.
        """
        wanted = list(apps) or [i.app for i in self.images]
        missing = [app for app in wanted if self.image_of(app) is None]
        if missing:
            known = ", ".join(i.app for i in self.images) or "none"
            raise ConfigError(
                f"{self.source} has no image for app(s) {', '.join(missing)} (it has: {known}).",
                "Use the report of a build of this checkout (the build job's `push` or `all` "
                "with --output json), which records every app's image.",
                code="report-missing-app")
        if not wanted:
            raise ConfigError(
                f"{self.source} names no images (command {self.command!r}, result "
                f"{self.result!r}).", "Use the report of the job that built and pushed them. "
                + PRODUCE_HINT, code="report-no-images")
        return {app: image.pinned() for app in wanted
                if (image := self.image_of(app)) is not None}


def parse_report(text: str, source: str) -> PriorReport:
    """Read a report paless-deploy wrote with `--output json`; ConfigError when it is not one."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{source} is not a JSON report of paless-deploy ({exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}).", PRODUCE_HINT, code="bad-report") from None
    if not isinstance(doc, dict) or doc.get("version") != REPORT_VERSION:
        raise ConfigError(
            f"{source} is JSON but not a paless-deploy report (no \"version\": "
            f"{REPORT_VERSION}).", PRODUCE_HINT, code="bad-report")
    images, objects = [], []
    for item in doc.get("images") or []:
        if not isinstance(item, dict) or not item.get("app") or not item.get("ref"):
            raise ConfigError(f"{source}: an entry of \"images\" has no app or ref: {item!r}"[:300],
                              PRODUCE_HINT, code="bad-report")
        digest = item.get("digest")
        images.append(ReportedImage(str(item["app"]), str(item["ref"]),
                                    str(digest) if digest else None))
    for phase in doc.get("phases") or []:
        for obj in (phase.get("objects") if isinstance(phase, dict) else None) or []:
            if isinstance(obj, dict) and obj.get("kind") and obj.get("name") \
                    and obj.get("action") != ObjectAction.PRUNED:
                objects.append(ReportedObject(str(obj.get("api_version") or ""),
                                              str(obj["kind"]), str(obj["name"]),
                                              str(obj.get("namespace") or "")))
    namespace = doc.get("namespace")
    return PriorReport(source, str(doc.get("command") or ""), str(doc.get("result") or ""),
                       str(namespace) if namespace else None, tuple(images), tuple(objects))
