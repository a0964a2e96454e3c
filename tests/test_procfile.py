"""The Procfile's web process as an operator runs it: two instances on one machine do not collide."""

import os
import shlex
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.smtp_servers import free_port
from tests.test_settings import ROOT, SETTINGS_VARIABLES


def web_command(port: int) -> list[str]:
    """The `web` line of the Procfile, from `exec` on (the preflight before it needs a migrated database)."""
    line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    command = line.split("exec ", 1)[1].replace("${PORT:-8000}", str(port))
    words = shlex.split(command)
    words[0] = str(Path(sys.executable).with_name("gunicorn"))
    return words


def answers(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            time.sleep(0.2)
    return False


def test_two_web_instances_on_one_machine_both_serve_and_share_no_control_socket(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {name: value for name, value in os.environ.items() if name.removesuffix("_FILE") not in SETTINGS_VARIABLES}
    # gunicorn 27 opens a control socket at ~/.gunicorn/gunicorn.ctl unless told not to: one path per user, so
    # a second instance takes over (or removes) the first one's.
    env.update(HOME=str(home), DJANGO_SETTINGS_MODULE="config.settings", DEBUG="1", VAR_DIR=str(tmp_path / "var"))
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(  # noqa: S603
            web_command(port), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        for port in ports
    ]
    try:
        deadline = time.monotonic() + 60
        served = [answers(port, deadline) for port in ports]
        still_running = [process.poll() is None for process in processes]
    finally:
        for process in processes:
            process.terminate()
        errors = [process.communicate(timeout=30)[1] for process in processes]

    assert served == [True, True], errors
    assert still_running == [True, True], errors
    assert not (home / ".gunicorn").exists()
