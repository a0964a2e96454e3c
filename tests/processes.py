"""Real processes for the tests that need them: the worker pool as the Procfile runs it, on the test database and
Redis of the test that starts it, and what /proc says about processes."""

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import django_rq
from django.conf import settings
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The URL of the database the tests run on, for a process they start."""
    database = connection.settings_dict
    if database["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{database['NAME']}"
    return f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"


def connection_params(**overrides) -> dict:
    """psycopg.connect's arguments for a second connection to the tests' PostgreSQL database, beside Django's."""
    params = {**connection.get_connection_params(), "autocommit": True, **overrides}
    for django_only in ("context", "cursor_factory"):
        params.pop(django_only, None)
    return params


@contextmanager
def worker_pool(*queue_names: str, workers: int = 1, env: dict | None = None, test_database: bool = False):
    """`manage.py rqworker-pool` as the Procfile runs it, in a session of its own (killed whole at the end). With
    `test_database`, on the tests' settings, database and Redis: its jobs see what the test wrote."""
    environment = {**os.environ, "DEBUG": "1", "REDIS_URL": settings.RQ_QUEUES["maintenance"]["URL"]}
    if test_database:
        # The database number from the client, not the URL: the embedded Redis's is a socket's (`unix://...?db=6`).
        redis_db = str(django_rq.get_connection("maintenance").connection_pool.connection_kwargs["db"])
        environment.update(DJANGO_SETTINGS_MODULE="tests.settings", DATABASE_URL=database_url(), TEST_REDIS_DB=redis_db)
    else:
        environment.update(DJANGO_SETTINGS_MODULE="config.settings", DATABASE_URL=os.environ.get("DATABASE_URL", ""))
    environment.update(env or {})
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and command
        [sys.executable, "manage.py", "rqworker-pool", *queue_names, "--num-workers", str(workers)]
        + ["--serializer", "rq.serializers.JSONSerializer"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def wait_for(condition, seconds: float, what: str, every: float = 0.1):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(every)
    raise AssertionError(f"not within {seconds} s: {what}")
