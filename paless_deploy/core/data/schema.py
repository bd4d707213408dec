"""Schema versions: which migrations a database has applied, which an image knows, and
whether a snapshot is newer than the image about to run on it.

Paless is a Django application: its database records each applied migration in the
`django_migrations` table, and its image carries the migration files. A snapshot whose
database applied a migration the image does not know comes from newer code; restoring
it under that image would run the old code on a schema it cannot read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from paless_deploy.core.apitypes import JsonDict, JsonValue

Migration = tuple[str, str]  # (app, name)

# What the database says it applied (psql -At -F '|': one "app|name" line each).
APPLIED_QUERY = "SELECT app, name FROM django_migrations ORDER BY id"
# Whether the table exists at all (an empty database: nothing applied yet).
HAS_TABLE_QUERY = "SELECT to_regclass('public.django_migrations') IS NOT NULL"
# What the image knows, without a database: Django's loader reads the migration files.
# Printed as one JSON line after a marker, so other output of the image is ignored.
IMAGE_MARKER = "PALESS-MIGRATIONS:"
IMAGE_SCRIPT = (
    "import json, os, django\n"
    "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'paperless.settings')\n"
    "django.setup()\n"
    "from django.db.migrations.loader import MigrationLoader\n"
    "loader = MigrationLoader(None, ignore_no_migrations=True)\n"
    f"print({IMAGE_MARKER!r} + json.dumps(sorted(loader.disk_migrations)), flush=True)\n"
)


@dataclass(frozen=True)
class SchemaVersion:
    """The migrations a database applied, in the order it applied them."""

    applied: tuple[Migration, ...] = ()

    @property
    def version(self) -> str:
        """In words: the last migration of each app, `documents.0002_tags` (`none` when the
        database applied nothing)."""
        last: dict[str, str] = {}
        for app, name in self.applied:
            last[app] = name
        return ", ".join(f"{app}.{name}" for app, name in sorted(last.items())) or "none"

    def to_json(self) -> JsonDict:
        """`{"table", "applied": ["app.name", ...]}`, in the order they were applied."""
        return {"table": "django_migrations",
                "applied": [f"{app}.{name}" for app, name in self.applied]}

    @classmethod
    def from_json(cls, data: JsonValue) -> SchemaVersion:
        if not data:
            return cls()
        pairs = [str(entry).partition(".") for entry in data["applied"]]
        if any(not app or not name for app, _, name in pairs):
            raise ValueError("schema.applied")
        return cls(tuple((app, name) for app, _, name in pairs))


def parse_applied(text: str) -> SchemaVersion:
    """psql's `-At -F '|'` output of APPLIED_QUERY."""
    applied = []
    for line in text.splitlines():
        app, sep, name = line.strip().partition("|")
        if sep and app and name:
            applied.append((app, name))
    return SchemaVersion(tuple(applied))


def parse_image_migrations(text: str) -> frozenset[Migration] | None:
    """The migrations IMAGE_SCRIPT printed; None when the output holds no such line (the
    image is not a Django application, or it failed)."""
    for line in reversed(text.splitlines()):
        _, marker, rest = line.partition(IMAGE_MARKER)
        if not marker:
            continue
        try:
            found = json.loads(rest)
            return frozenset((str(app), str(name)) for app, name in found)
        except (ValueError, TypeError):
            return None
    return None


def unknown_to_image(schema: SchemaVersion, known: Iterable[Migration]) -> list[Migration]:
    """Migrations the snapshot's database applied that the image does not carry: the
    snapshot is newer than the image when there is any."""
    known = set(known)
    return [m for m in schema.applied if m not in known]


def describe(migrations: Iterable[Migration], limit: int = 3) -> str:
    """`documents.0003_x, documents.0004_y` (and N more)."""
    names = [f"{app}.{name}" for app, name in migrations]
    text = ", ".join(names[:limit])
    return text + (f" and {len(names) - limit} more" if len(names) > limit else "")
