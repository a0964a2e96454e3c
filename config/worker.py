"""The RQ worker class of the pool: long-lived, running jobs in its own process (SimpleWorker), so compiled
templates and open SMTP connections survive from one job to the next."""

import ctypes
import logging
import os
import signal
import socket
import sys

from django.db import close_old_connections
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker

from campaigns.engine import workers
from config import queues

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class CampaignWorker(SimpleWorker):
    def __init__(self, *args, **kwargs):
        # Jobs are JSON, never pickle, whatever serializer a command line passes.
        kwargs["serializer"] = JSONSerializer
        super().__init__(*args, **kwargs)
        queues.keep_no_query_log()

    def work(self, burst: bool = False, *args, **kwargs):
        if not burst:
            # A long-lived worker does not outlive the pool that started it, nor its scheduler (RQ forks one a
            # worker) the worker: killed with SIGKILL, neither could say so, and an orphan would go on taking
            # scheduled jobs. Each gets SIGTERM instead, which RQ answers by stopping (a worker after its job).
            die_with_parent()
            # Claims name the worker's lease, so the scheduler releases them within seconds if it dies.
            workers.lease_start(name=f"{socket.gethostname()}:{os.getpid()} ({self.name})")
            os.register_at_fork(before=_remember_parent, after_in_child=lambda: die_with_parent(_parent))
        return super().work(burst, *args, **kwargs)

    def perform_job(self, job, queue, *args, **kwargs):
        # A database connection that broke or outlived CONN_MAX_AGE between jobs is replaced, not reused.
        close_old_connections()
        try:
            return super().perform_job(job, queue, *args, **kwargs)
        finally:
            close_old_connections()


_parent = None


def _remember_parent() -> None:
    global _parent
    _parent = os.getpid()  # in the parent, just before it forks


def die_with_parent(parent: int | None = None) -> None:
    """Ask Linux to send this process SIGTERM when its parent dies, however it dies (prctl PR_SET_PDEATHSIG); if the
    parent (`parent`, when known) is already gone, SIGTERM now. Elsewhere nothing (a process manager stops the
    group there)."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %s", ctypes.get_errno())
        return
    if os.getppid() == 1 or (parent is not None and os.getppid() != parent):
        os.kill(os.getpid(), signal.SIGTERM)  # the parent died before the request took effect
