"""What the benchmark commands (`manage.py bench_audiences`, `manage.py bench_trigger`) share: a PostgreSQL database
of their own, made if missing, and running `manage.py` again in a child process on it."""

import sys
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def create_database(url: str) -> None:
    """Create the database `url` names on its server, unless it exists."""
    import psycopg
    from psycopg import sql

    name = database_name(url)
    server = urlunsplit(urlsplit(url)._replace(path="/postgres"))
    with psycopg.connect(server.replace("postgresql://", "postgres://", 1), autocommit=True) as server_connection:
        exists = server_connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            server_connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def manage(*arguments: str) -> list[str]:
    """The command line of `manage.py <arguments>` with this interpreter."""
    return [sys.executable, str(settings.BASE_DIR / "manage.py"), *arguments]
