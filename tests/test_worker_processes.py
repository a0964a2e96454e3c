"""The worker pool as the Procfile runs it, with real processes and Redis: no process is left behind when one of
them is killed with SIGKILL (a crash, the OOM killer, `kill -9` by an operator)."""

import os
import signal
import sys

import pytest

from tests.processes import alive, children, wait_for, worker_pool


@pytest.fixture
def pool(redis):
    if not sys.platform.startswith("linux"):
        pytest.skip("/proc and PR_SET_PDEATHSIG are Linux's")
    with worker_pool("maintenance") as process:
        yield process


def _worker_and_scheduler(pool_pid: int):
    workers = children(pool_pid)
    if len(workers) != 1:
        return None
    schedulers = children(workers[0])
    return (workers[0], schedulers[0]) if len(schedulers) == 1 else None


def test_a_worker_killed_with_sigkill_leaves_no_scheduler_behind(pool):
    worker, scheduler = wait_for(lambda: _worker_and_scheduler(pool.pid), 60, "the worker and its scheduler up")

    os.kill(worker, signal.SIGKILL)

    wait_for(lambda: not alive(scheduler), 10, f"the orphaned scheduler {scheduler} gone")


def test_a_pool_killed_with_sigkill_leaves_no_worker_behind(pool):
    worker, scheduler = wait_for(lambda: _worker_and_scheduler(pool.pid), 60, "the worker and its scheduler up")

    os.kill(pool.pid, signal.SIGKILL)

    wait_for(lambda: not alive(worker) and not alive(scheduler), 20, "the worker and its scheduler gone")
