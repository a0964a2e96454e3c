"""A bad environment variable stops every command with one line naming it, never a traceback."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Everything config/settings.py reads, so the host's or CI's environment cannot leak into these cases.
SETTINGS_VARIABLES = (
    "DEBUG SECRET_KEY FIELD_ENCRYPTION_KEYS ALLOWED_HOSTS CSRF_TRUSTED_ORIGINS SITE_URL DATABASE_URL REDIS_URL "
    "TIME_ZONE SECURE_HSTS_SECONDS SMTP_HOST SMTP_PORT SMTP_USERNAME SMTP_PASSWORD SMTP_STARTTLS DEFAULT_FROM_EMAIL "
    "SCHEDULER_INTERVAL IMPORTS_CHUNK_ROWS IMPORTS_JOB_SECONDS IMPORTS_STALL_SECONDS LOG_LEVEL VAR_DIR "
    "CHANNELS_ALLOW_PRIVATE_NETWORKS TRIGGER_REQUEST_RETENTION_HOURS API_KEY_DEFAULT_RATE DATABASE_PREPARED_STATEMENTS "
    "METRICS_TOKEN"
).split()


def _variables_read_by_settings() -> set[str]:
    source = (ROOT / "config" / "settings.py").read_text()
    return set(re.findall(r'\benv_(?:str|int|bool|list)\(\s*"([A-Z][A-Z0-9_]*)"', source))


def test_every_variable_the_settings_read_is_in_the_readme_table_and_isolated_here():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = {
        name
        for row in table.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", row.split("|")[1])
    }
    read = _variables_read_by_settings()

    assert len(read) > 20
    assert read - documented == set()
    assert {name for name in read if not name.startswith("CAMPAIGNS_")} - set(SETTINGS_VARIABLES) == set()


def run_python(args, *, var_dir, **overrides):
    """Run `python *args` in the project folder with the project's settings and only the given variables."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name.removesuffix("_FILE") not in SETTINGS_VARIABLES and not name.startswith("CAMPAIGNS_")
    }
    env.update(DJANGO_SETTINGS_MODULE="config.settings", VAR_DIR=str(var_dir), DEBUG="1")
    env.update(overrides)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_baseline_environment_is_valid(tmp_path):
    result = run_python(["-c", "import config.settings"], var_dir=tmp_path)

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"DATABASE_URL": "nosuch://x"}, "DATABASE_URL='nosuch://x' is not a database URL"),
        ({"REDIS_URL": "http://localhost"}, "REDIS_URL='http://localhost' is not a Redis URL"),
        ({"DEBUG": "0"}, "SECRET_KEY is required when DEBUG is off"),
        ({"DEBUG": "0", "SECRET_KEY": "k" * 50}, "FIELD_ENCRYPTION_KEYS is required when DEBUG is off"),
        ({"SMTP_PORT": "abc"}, "SMTP_PORT='abc' is not a whole number"),
        ({"SECRET_KEY_FILE": "/nonexistent/secret"}, "SECRET_KEY_FILE='/nonexistent/secret' cannot be read"),
        ({"CAMPAIGNS_SEND_SLICE": "0"}, "CAMPAIGNS_SEND_SLICE='0' must be at least 1"),
        ({"CAMPAIGNS_SEND_SLICE": "9000"}, "CAMPAIGNS_SEND_SLICE='9000' must be at most 5000"),
    ],
    ids=[
        "debug",
        "database-url",
        "redis-url",
        "secret-key",
        "field-keys",
        "smtp-port",
        "secret-key-file",
        "minimum",
        "maximum",
    ],  # fmt: skip
)
def test_bad_setting_stops_manage_py_with_one_line_naming_it(tmp_path, overrides, message):
    result = run_python(["manage.py", "check"], var_dir=tmp_path, **overrides)

    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("Configuration error: ")
    assert message in line
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("prepared", ["true", "false"])
def test_the_database_urls_options_are_kept_with_prepared_statements_on_or_off(tmp_path, prepared):
    url = "postgres://app@db.example:5432/campaigns?sslmode=verify-full&sslrootcert=/etc/ca.pem&connect_timeout=5"
    code = "from django.conf import settings; print(sorted(settings.DATABASES['default']['OPTIONS'].items()))"
    result = run_python(
        ["-c", f"import django; django.setup(); {code}"],
        var_dir=tmp_path,
        DATABASE_URL=url,
        DATABASE_PREPARED_STATEMENTS=prepared,
    )

    assert result.returncode == 0, result.stderr
    options = result.stdout.strip().splitlines()[-1]
    assert "('sslmode', 'verify-full')" in options
    assert "('sslrootcert', '/etc/ca.pem')" in options
    assert ("'prepare_threshold'" in options) == (prepared == "true")


def test_bad_setting_stops_the_wsgi_application_with_one_line(tmp_path):
    result = run_python(["-c", "import config.wsgi"], var_dir=tmp_path, DEBUG="maybe")

    # 4 is gunicorn's "app failed to load": it stops instead of restarting workers forever.
    assert result.returncode == 4
    assert result.stderr.strip().splitlines() == [
        "Configuration error: DEBUG='maybe' is not a boolean: use one of 1/0, true/false, yes/no, on/off."
    ]
