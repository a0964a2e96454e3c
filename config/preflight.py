"""Checks that the services a process needs answer, each failure told as one line naming where and what to do.

`manage.py preflight` runs them before the web server starts; long-running commands (the scheduler) may call
`check_database()` and `check_redis()` themselves. Each returns a list of problems, empty when all is well.
"""

import re
from urllib.parse import parse_qsl, urlencode, urlsplit

import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor

DATABASE_TIMEOUT = 5
REDIS_TIMEOUT = 2
REDIS_MINIMUM_VERSION = (6, 2)  # RQ uses LMOVE


def check_database(alias: str = DEFAULT_DB_ALIAS) -> list[str]:
    """Problems reaching the database or with its migrations: [] when it answers and is migrated."""
    connection = connections[alias]
    where = database_location(connection.settings_dict)
    try:
        params = connection.get_connection_params()
        if connection.vendor == "postgresql":
            # libpq would otherwise wait for as long as TCP does on an unreachable host.
            params.setdefault("connect_timeout", DATABASE_TIMEOUT)
        connection.get_new_connection(params).close()
    except (DatabaseError, connection.Database.Error) as exc:
        return [f"Cannot reach the database at {where} ({reason(exc)}). {_database_hint(connection, exc)}"]

    try:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        return [f"Cannot read the migrations of the database at {where} ({reason(exc)})."]
    if plan:
        first = plan[0][0]
        return [
            f"The database at {where} is missing {len(plan)} migration(s), from {first.app_label}.{first.name}. "
            "Run bin/setup (or manage.py migrate)."
        ]
    return []


def check_redis(url: str | None = None) -> list[str]:
    """Problems reaching Redis at `url` (settings.REDIS_URL by default): [] when it answers PING."""
    url = url or settings.REDIS_URL
    where = redact_url(url)
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=REDIS_TIMEOUT, socket_timeout=REDIS_TIMEOUT)
    except ValueError as exc:
        return [f"REDIS_URL={where!r} is not a valid Redis URL ({exc})."]
    try:
        client.ping()
        version = _redis_version(client)
    except redis.RedisError as exc:
        return [f"Cannot reach Redis at {where} ({reason(exc)}). {_redis_hint(url)}"]
    finally:
        client.close()
    if version and version < REDIS_MINIMUM_VERSION:
        wanted = ".".join(map(str, REDIS_MINIMUM_VERSION))
        found = ".".join(map(str, version))
        return [f"Redis at {where} is version {found}; RQ needs {wanted} or newer. {_redis_hint(url)}"]
    return []


def _redis_version(client: redis.Redis) -> tuple[int, ...] | None:
    try:
        raw = client.info("server").get("redis_version", "")
    except redis.ResponseError:
        return None  # INFO may be disabled on a managed Redis; PING answered, which is what matters
    return tuple(int(part) for part in re.findall(r"\d+", str(raw))[:3]) or None


def _database_hint(connection, exc: Exception) -> str:
    if connection.vendor == "sqlite":
        return "Check that its folder exists and is writable (bin/setup creates var/), or set DATABASE_URL."
    if "does not exist" in str(exc):
        return "Create it (createdb), or correct DATABASE_URL."
    return "Start PostgreSQL there or correct DATABASE_URL, or unset DATABASE_URL to use SQLite in var/."


def _redis_hint(url: str) -> str:
    if url.startswith(f"unix://{settings.EMBEDDED_REDIS_SOCKET}"):
        return "Start the embedded one with bin/embedded-redis (bin/start does), or set REDIS_URL to a running Redis."
    return "Start Redis there, or unset REDIS_URL so bin/start launches the embedded one."


def reason(exc: Exception) -> str:
    """The short cause inside a driver's error message ("Connection refused"), on one line."""
    lines = str(exc).strip().splitlines()
    text = lines[0].strip() if lines else type(exc).__name__
    if match := re.match(r"Error -?\d+ connecting to .+?\. (.+)$", text):  # redis-py
        text = match[1]
    elif " failed: " in text:  # libpq: 'connection to server at "h", port 1 failed: Connection refused'
        text = text.rsplit(" failed: ", 1)[1]
    text = re.sub(r"^(FATAL|ERROR):\s+", "", text)
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    return text.rstrip(".") or type(exc).__name__


def redact_url(url: str) -> str:
    """`url` with any password replaced by ***, for messages and logs."""
    try:
        parts = urlsplit(url)
        has_password = parts.password is not None
    except ValueError:
        return re.sub(r"//[^/@]*@", "//***@", url)
    if not has_password and "password" not in parts.query.lower():
        return url
    netloc = parts.netloc
    if has_password:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs], safe="*/")
    # Built by hand: urlunsplit drops the "//" of unix:///path when there is no host.
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def database_location(settings_dict: dict) -> str:
    """The database a connection uses, as a URL without its password."""
    engine = settings_dict["ENGINE"].rsplit(".", 1)[-1]
    if engine == "sqlite3":
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    if user and settings_dict.get("PASSWORD"):
        user += ":***"
    host = settings_dict.get("HOST") or ""
    if settings_dict.get("PORT"):
        host += f":{settings_dict['PORT']}"
    scheme = "postgres" if engine == "postgresql" else engine
    return f"{scheme}://{user + '@' if user else ''}{host}/{settings_dict.get('NAME') or ''}"
