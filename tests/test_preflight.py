"""`manage.py preflight` names each unreachable service, its URL without password, and what to do."""

import socket

from django.conf import settings

from config.preflight import check_redis, database_location, redact_url
from tests.test_settings import run_python


def closed_port() -> int:
    """A loopback port that nothing listens on (the kernel just handed it out and it is closed again)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def preflight(tmp_path, **overrides):
    result = run_python(["manage.py", "preflight"], var_dir=tmp_path, **overrides)
    assert "Traceback" not in result.stdout + result.stderr
    return result


def test_unreachable_redis_is_named_without_its_password(tmp_path):
    port = closed_port()

    result = preflight(tmp_path, REDIS_URL=f"redis://:s3cret-redis@127.0.0.1:{port}/0")

    assert result.returncode == 1
    assert (
        f"Cannot reach Redis at redis://:***@127.0.0.1:{port}/0 (Connection refused). "
        "Start Redis there, or unset REDIS_URL so bin/start launches the embedded one."
    ) in result.stderr.splitlines()
    assert "s3cret-redis" not in result.stdout + result.stderr


def test_unreachable_postgresql_is_named_without_its_password(tmp_path):
    result = preflight(tmp_path, DATABASE_URL="postgres://campaigns:s3cret-pg@127.0.0.1:1/campaigns")

    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(
        line.startswith(
            "Cannot reach the database at postgres://campaigns:***@127.0.0.1:1/campaigns (Connection refused)."
        )
        for line in lines
    ), lines
    assert "s3cret-pg" not in result.stdout + result.stderr


def test_stopped_embedded_redis_points_at_its_launcher(tmp_path):
    result = preflight(tmp_path)  # no REDIS_URL: the embedded socket under VAR_DIR, where nothing runs

    assert result.returncode == 1
    assert f"Cannot reach Redis at unix://{tmp_path}/redis/redis.sock?db=0 (No such file or directory)" in result.stderr
    assert "bin/embedded-redis" in result.stderr


def test_unmigrated_database_says_how_to_migrate(tmp_path):
    result = preflight(tmp_path, REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0")

    assert result.returncode == 1
    [line] = [line for line in result.stderr.splitlines() if "database" in line]
    assert line.startswith(f"The database at sqlite:///{tmp_path}/campaigns.sqlite3 is missing ")
    assert line.endswith("Run bin/setup (or manage.py migrate).")


def test_check_redis_passes_when_redis_answers():
    assert check_redis(settings.REDIS_URL) == []


def test_check_redis_reports_a_closed_port():
    port = closed_port()

    [problem] = check_redis(f"redis://127.0.0.1:{port}/3")

    assert problem.startswith(f"Cannot reach Redis at redis://127.0.0.1:{port}/3 (Connection refused).")


def test_redact_url_hides_passwords_only():
    assert redact_url("redis://:pw@host:6379/0") == "redis://:***@host:6379/0"
    assert redact_url("postgres://user:p%40ss@host/db?sslmode=require") == "postgres://user:***@host/db?sslmode=require"
    assert redact_url("redis://host/0?password=pw&db=1") == "redis://host/0?password=***&db=1"
    assert redact_url("unix:///var/run/redis.sock?db=0") == "unix:///var/run/redis.sock?db=0"


def test_database_location_hides_the_password():
    postgres = {"ENGINE": "django.db.backends.postgresql", "NAME": "db", "USER": "u", "PASSWORD": "pw", "HOST": "h"}

    assert database_location({**postgres, "PORT": 5432}) == "postgres://u:***@h:5432/db"
    assert (
        database_location({"ENGINE": "django.db.backends.sqlite3", "NAME": "/x/y.sqlite3"}) == "sqlite:////x/y.sqlite3"
    )
