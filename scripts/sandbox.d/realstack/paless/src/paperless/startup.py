"""What every Paless process checks before it serves: PostgreSQL and Redis answer.

Paperless-ngx's container waits for its database and broker before it starts its
processes; here each process checks for itself, retries while the service is not
reachable yet, and exits non-zero with one log line naming the cause when it gives up
(a wrong password is not retried: waiting does not fix it).
"""

import logging
import os
import re
import sys
import time

log = logging.getLogger("paperless.startup")

RETRY_SECONDS = float(os.environ.get("PAPERLESS_STARTUP_TIMEOUT", "30"))
# the credentials of a URL (`scheme://user:password@host`, `scheme://:password@host`)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^/@\s:]*):[^@\s]*@", re.I)


def masked(text: str) -> str:
    """`text` with the password of every URL in it replaced by `***` (the Redis URL carries
    its password: `redis://:secret@redis:6379`), as Celery masks its broker URL."""
    return _URL_CREDENTIALS.sub(r"\g<scheme>\g<user>:***@", text)


def _database_error() -> tuple[str, bool] | None:
    """None when the database answers, else (message, worth retrying)."""
    from django.db import connection
    from django.db.utils import OperationalError

    try:
        connection.ensure_connection()
        with connection.cursor() as cur:
            cur.execute("SELECT 1")
    except OperationalError as exc:
        text = masked(" ".join(str(exc).split()))
        return text, "authentication failed" not in text and "does not exist" not in text
    finally:
        connection.close()
    return None


def _redis_error() -> tuple[str, bool] | None:
    import redis
    from django.conf import settings

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5, socket_timeout=5).ping()
    except redis.exceptions.AuthenticationError as exc:
        return masked(str(exc)), False
    except redis.exceptions.RedisError as exc:
        return masked(str(exc)), True
    return None


def _describe(what: str) -> str:
    from django.conf import settings

    if what == "PostgreSQL":
        db = settings.DATABASES["default"]
        if db["ENGINE"].endswith("sqlite3"):
            return f"SQLite at {db['NAME']}"
        return f"PostgreSQL at {db['HOST']}:{db['PORT']} (database {db['NAME']}, user {db['USER']})"
    return f"Redis at {masked(settings.REDIS_URL)}"


def require_services(process: str, need_redis: bool = True) -> None:
    """Wait for the database (and Redis), or log why not and exit 1."""
    checks = [("PostgreSQL", _database_error)] + ([("Redis", _redis_error)] if need_redis else [])
    deadline = time.monotonic() + RETRY_SECONDS
    for what, check in checks:
        while True:
            failure = check()
            if failure is None:
                log.info("%s: connected to %s", process, _describe(what))
                break
            message, retry = failure
            if not retry or time.monotonic() >= deadline:
                log.critical("%s: cannot connect to %s: %s", process, _describe(what), message)
                logging.shutdown()
                sys.exit(1)
            log.warning("%s: waiting for %s: %s", process, _describe(what), message)
            time.sleep(2)
