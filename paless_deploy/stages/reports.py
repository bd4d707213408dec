"""Reports of earlier runs: read back from a file, and their images found in the registry.

`--images-from` builds nothing: each digest the report names must be in its registry
before anything is applied (exit 2 when it is not: the report does not fit this
registry; exit 3 when the registry cannot be reached, as for a push).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from paless_deploy.adapters.registry import AuthRequired, registry_manifest_digest, registry_scheme
from paless_deploy.core.errors import ConfigError
from paless_deploy.core.images.imageref import ImageRef
from paless_deploy.core.reporting.report import ImageAction
from paless_deploy.core.reporting.reportfile import PRODUCE_HINT, PriorReport, parse_report
from paless_deploy.stages.images import ImageResult


def load_report(path: Path, option: str) -> PriorReport:
    """The report in `path` (given with `option`); ConfigError (exit 2) when it cannot be
    read or is not a report."""
    source = f"{option} {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file.",
                          "Pass the JSON report of the run that built the images (in CI, "
                          "download the build job's artifact first). " + PRODUCE_HINT,
                          code="report-not-found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{source} cannot be read ({getattr(exc, 'strerror', None) or exc}).",
                          "Check the path and its permissions.", code="report-unreadable") from None
    return parse_report(text, source)


def check_reported_images(report: PriorReport, refs: Mapping[str, ImageRef],
                          warn: Callable[[str], None]) -> list[ImageResult]:
    """Each pinned image in its registry (one HEAD request each); nothing is built or pushed.

    ConfigError (exit 2) for a digest the registry lacks; BuildError (exit 3) when the
    registry does not answer. A registry that wants credentials to read cannot tell: the
    nodes pull with their own, so that is a warning.
    """
    results = []
    for app, ref in refs.items():
        pinned = str(ref)
        try:
            found = registry_manifest_digest(ref.registry, ref.path, str(ref.digest))
        except AuthRequired:
            warn(f"Registry {ref.registry} wants credentials to read {pinned}: not checked "
                 "(the nodes pull it with their own).")
            found = "unchecked"
        if found is None:
            url = f"{registry_scheme(ref.registry)}://{ref.registry}/v2/{ref.path}/manifests/" \
                  f"{ref.digest}"
            raise ConfigError(
                f"The image of app {app} that {report.source} names, {pinned}, is not in the "
                f"registry {ref.registry}; nothing was applied.",
                "The report comes from a build against another registry, or the registry lost "
                "the image (garbage collection, reset). Build and push again and deploy from "
                "the new report. " + PRODUCE_HINT,
                code="image-not-in-registry", resource=f"image/{app}",
                commands=[f"curl -sI {url}"])
        results.append(ImageResult(app, ref.with_tag(ref.tag) if ref.tag else ref.repository,
                                   ref.tag or "", ref.digest, ImageAction.SKIPPED))
    return results
