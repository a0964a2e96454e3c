"""The worker pool as the Procfile runs it, with real processes and Redis: no process is left behind when one of
them is killed with SIGKILL (a crash, the OOM killer, `kill -9` by an operator)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


def _wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {what}")


@pytest.fixture
def pool(redis):
    if not sys.platform.startswith("linux"):
        pytest.skip("/proc and PR_SET_PDEATHSIG are Linux's")
    env = {
        **os.environ,
        "REDIS_URL": settings.RQ_QUEUES["maintenance"]["URL"],
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    env.update(DATABASE_URL=os.environ.get("DATABASE_URL", ""), DEBUG="1")
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and command
        [sys.executable, "manage.py", "rqworker-pool", "maintenance", "--num-workers", "1"]
        + ["--serializer", "rq.serializers.JSONSerializer"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    yield process
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _worker_and_scheduler(pool_pid: int):
    workers = _children(pool_pid)
    if len(workers) != 1:
        return None
    schedulers = _children(workers[0])
    return (workers[0], schedulers[0]) if len(schedulers) == 1 else None


def test_a_worker_killed_with_sigkill_leaves_no_scheduler_behind(pool):
    worker, scheduler = _wait_for(lambda: _worker_and_scheduler(pool.pid), 60, "the worker and its scheduler up")

    os.kill(worker, signal.SIGKILL)

    _wait_for(lambda: not _alive(scheduler), 10, f"the orphaned scheduler {scheduler} gone")


def test_a_pool_killed_with_sigkill_leaves_no_worker_behind(pool):
    worker, scheduler = _wait_for(lambda: _worker_and_scheduler(pool.pid), 60, "the worker and its scheduler up")

    os.kill(pool.pid, signal.SIGKILL)

    _wait_for(lambda: not _alive(worker) and not _alive(scheduler), 20, "the worker and its scheduler gone")
