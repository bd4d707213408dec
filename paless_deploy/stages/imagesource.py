"""Where a deploy's images come from, chosen once: built from this checkout, or pinned by
an earlier run's report (`--images-from`).

Both sources answer the same questions (how images reach the nodes, the references known
before anything is built, the images themselves, what was really pushed), so the deploy
asks which source it has once, when it picks one, and never again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from paless_deploy.core.errors import ConfigError
from paless_deploy.core.images.delivery import Delivery, DeliveryMethod, choose_delivery
from paless_deploy.core.images.discover import App
from paless_deploy.core.images.imageref import ImageRef
from paless_deploy.core.reporting.reportfile import PriorReport
from paless_deploy.stages.delivery import deliver_images, delivery_facts
from paless_deploy.stages.images import ImagePlan, ImageResult, build_images, plan_images
from paless_deploy.stages.nodes import NodeList
from paless_deploy.stages.project import selected_apps
from paless_deploy.stages.reports import check_reported_images, load_report
from paless_deploy.ui.progress import make_progress

if TYPE_CHECKING:
    from paless_deploy.adapters.kube import Kube
    from paless_deploy.core.configuration.config import Config
    from paless_deploy.core.configuration.context import ConsoleSettings


@dataclass(frozen=True)
class Say:
    """Where a source tells the user what it does: progress lines, warnings, the console
    its build progress draws on."""

    info: Callable[[str], None]
    warn: Callable[[str], None]
    console: ConsoleSettings


class ImageSource(Protocol):
    """The images of one deploy, wherever they come from."""

    def delivery(self, kube: Kube, config: Config, nodes: NodeList, say: Say
                 ) -> Delivery:
        """How the images reach the nodes."""
        ...

    def planned_refs(self, config: Config, delivery: Delivery) -> dict[str, str]:
        """app -> the reference to deploy, known before anything is built."""
        ...

    def obtain(self, config: Config, delivery: Delivery, nodes: NodeList, say: Say
               ) -> list[ImageResult]:
        """The images, made ready for the nodes (built, pushed, delivered; or checked)."""
        ...

    def obtained_refs(self, images: Sequence[ImageResult], delivery: Delivery
                      ) -> dict[str, str]:
        """app -> the reference really made ready (may differ from the planned one)."""
        ...

    def verified_refs(self) -> set[str]:
        """References already found in their registry (no second look)."""
        ...


@dataclass
class BuiltImages:
    """Images built from this checkout: every app (`all`) or the apps named (`deploy`)."""

    apps: Sequence[App]
    only_apps: tuple[str, ...] = ()
    plans: list[ImagePlan] = field(default_factory=list)

    def delivery(self, kube: Kube, config: Config, nodes: NodeList, say: Say
                 ) -> Delivery:
        chosen = choose_delivery(delivery_facts(kube, config, nodes))
        say.info(f"images reach the nodes by {chosen.method}: {chosen.reason}")
        return chosen

    def planned_refs(self, config: Config, delivery: Delivery) -> dict[str, str]:
        # Tags are content hashes: known before building, so the tree is rendered and
        # planned (and fails in seconds) before any build.
        to_build = (selected_apps(config.project_dir, self.only_apps, config.project_name) if self.only_apps
                    else list(self.apps))
        self.plans = plan_images(config, to_build)[0] if to_build else []
        return {p.app.name: delivery.pulled_ref(p.ref) for p in self.plans}

    def obtain(self, config: Config, delivery: Delivery, nodes: NodeList, say: Say
               ) -> list[ImageResult]:
        if not self.plans:
            return []
        images = build_images(config, [p.app for p in self.plans], push=delivery.pushes,
                              progress=make_progress(say.console), plans=self.plans,
                              warn=say.warn)
        return deliver_images(config, delivery, images, list(nodes),
                              say.info)

    def obtained_refs(self, images: Sequence[ImageResult], delivery: Delivery
                      ) -> dict[str, str]:
        return {r.app: delivery.pulled_ref(r.ref) for r in images}

    def verified_refs(self) -> set[str]:
        return set()


@dataclass
class ReportedImages:
    """Images an earlier run pushed, pinned by the digests its report names: nothing is
    built, and they are in their registry already."""

    report: PriorReport
    apps: Sequence[App]
    only_apps: tuple[str, ...] = ()
    pinned: dict[str, ImageRef] = field(default_factory=dict)

    def delivery(self, kube: Kube, config: Config, nodes: NodeList, say: Say
                 ) -> Delivery:
        return Delivery(DeliveryMethod.REGISTRY, "--images-from: the report's registry")

    def planned_refs(self, config: Config, delivery: Delivery) -> dict[str, str]:
        self.pinned = self.report.pinned_refs(self.only_apps)
        _check_report_covers(self.report, self.apps, self.only_apps)
        return {app: str(ref) for app, ref in self.pinned.items()}

    def obtain(self, config: Config, delivery: Delivery, nodes: NodeList, say: Say
               ) -> list[ImageResult]:
        return check_reported_images(self.report, self.pinned, say.warn)

    def obtained_refs(self, images: Sequence[ImageResult], delivery: Delivery
                      ) -> dict[str, str]:
        return {}  # the report's references are what is deployed

    def verified_refs(self) -> set[str]:
        # the report's digests were just found in their registry
        return {str(ref) for ref in self.pinned.values()}


def image_source(images_from: Path | None, apps: Sequence[App],
                 only_apps: tuple[str, ...]) -> ImageSource:
    """The source a deploy's options ask for. A report that is missing or not one is the
    user's mistake, said here, before any I/O beyond reading it."""
    if images_from is not None:
        return ReportedImages(load_report(images_from, "--images-from"), apps, only_apps)
    return BuiltImages(apps, only_apps)


def _check_report_covers(report: PriorReport, apps: Sequence[App],
                         only_apps: Sequence[str]) -> None:
    """`all --images-from`: every app this checkout builds must have its image in the report."""
    missing = [a.name for a in apps if not only_apps and report.image_of(a.name) is None]
    if missing:
        raise ConfigError(
            f"{report.source} has no image for app(s) {', '.join(missing)}, which this "
            "checkout builds (a Dockerfile for each).",
            "Use the report of a build of this checkout (the build job's `push` or `all` with "
            "--output json), or deploy only the apps it has: `paless-deploy deploy APP... "
            "--images-from ...`.", code="report-missing-app")
