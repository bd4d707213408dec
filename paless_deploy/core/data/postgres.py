"""What runs inside the PostgreSQL container to read, dump and restore its database.

Each is a shell script for `sh -c`, run through the Kubernetes door's exec in the
PostgreSQL pod, so the dump is taken inside the cluster by the server's own pg_dump. Names
and the password come from the container's environment (the official image's contract:
POSTGRES_USER, POSTGRES_DB, POSTGRES_PASSWORD): no credential is ever part of a command
line we pass, and the target's own credentials are the ones used when restoring.

A restore never drops the live database before the new one is complete: the dump is
restored into a new database in one transaction, and only then swapped in.
"""

from __future__ import annotations

from dataclasses import dataclass

from paless_deploy.core.data.schema import (
    APPLIED_QUERY,
    HAS_TABLE_QUERY,
    SchemaVersion,
    parse_applied,
)

RESTORE_SUFFIX = "__paless_restore"

_ENV = ('u="${POSTGRES_USER:-postgres}"; d="${POSTGRES_DB:-$u}"; '
        'export PGPASSWORD="${POSTGRES_PASSWORD:-}"; ')
_PSQL = 'psql -X -q --no-password -v ON_ERROR_STOP=1 -U "$u"'

# The database as a custom-format dump on stdout (compressed; pg_restore reads it).
DUMP_SCRIPT = _ENV + 'exec pg_dump --format=custom --no-password --username="$u" --dbname="$d"'

# Facts about the database, one `key=value` line each, then `migration=app|name` lines.
INFO_SCRIPT = _ENV + (
    'set -e; echo "database=$d"; '
    f'echo "server_version=$({_PSQL} -At -d "$d" -c "SHOW server_version")"; '
    f'echo "size=$({_PSQL} -At -d "$d" -c "SELECT pg_database_size(current_database())")"; '
    f'has=$({_PSQL} -At -d "$d" -c "{HAS_TABLE_QUERY}"); '
    f'if [ "$has" = t ]; then {_PSQL} -At -F "|" -d "$d" -c "{APPLIED_QUERY}" '
    '| sed "s/^/migration=/"; fi'
)

# The dump on stdin restored: into a new database first (one transaction: all or nothing),
# then swapped in place of the live one. Exit 3: the restore failed, the live database is
# untouched; any other failure is said on stderr.
RESTORE_SCRIPT = _ENV + (
    f't="${{d}}{RESTORE_SUFFIX}"; '
    f'q() {{ {_PSQL} -d postgres -v db="$d" -v tmp="$t" -v owner="$u" -f -; }}; '
    "printf '%s\\n' 'DROP DATABASE IF EXISTS :\"tmp\";' "
    "'CREATE DATABASE :\"tmp\" OWNER :\"owner\";' | q || exit 4; "
    'if ! pg_restore --no-password -U "$u" -d "$t" --no-owner --exit-on-error '
    '--single-transaction; then '
    "printf '%s\\n' 'DROP DATABASE IF EXISTS :\"tmp\";' | q; exit 3; fi; "
    "printf '%s\\n' 'DROP DATABASE IF EXISTS :\"db\" WITH (FORCE);' "
    "'ALTER DATABASE :\"tmp\" RENAME TO :\"db\";' | q || exit 5"
)

RESTORE_FAILED = 3  # pg_restore refused the dump; the live database is untouched
RESTORE_NOT_STARTED = 4  # the new database could not be created; nothing changed
RESTORE_NOT_SWAPPED = 5  # restored, but not swapped in: the live database is untouched


@dataclass(frozen=True)
class DatabaseInfo:
    """What INFO_SCRIPT found."""

    database: str
    server_version: str
    size: int  # bytes on disk (the dump is smaller: compressed, no indexes)
    schema: SchemaVersion


def parse_info(text: str) -> DatabaseInfo | None:
    """INFO_SCRIPT's output; None when it is not (the container is not PostgreSQL)."""
    values: dict[str, str] = {}
    migrations = []
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "migration":
            migrations.append(value)
        else:
            values[key] = value.strip()
    if "database" not in values or not values.get("server_version"):
        return None
    try:
        size = int(values.get("size") or 0)
    except ValueError:
        size = 0
    return DatabaseInfo(values["database"], values["server_version"], size,
                        parse_applied("\n".join(migrations)))


def command(script: str) -> list[str]:
    """The container command that runs one of the scripts above."""
    return ["sh", "-c", script]
