"""Send workers known alive, so a dead one's claims are released within seconds.

A long-lived worker process takes a lease when it starts (`lease_start`, called by config.worker): a SendWorker row
that a thread of the process renews every fifth of CAMPAIGNS_WORKER_LOST_SECONDS. Every claim the process makes
names the lease (Delivery.claimed_by). A process killed with SIGKILL, frozen, or cut off from the database stops
renewing; the scheduler's tick then releases its rows at once, as the claim timeout would minutes later, and gives
the runs it was sending new jobs (campaigns.engine.recovery.release_claims_of_lost_workers).

The database, not Redis, holds the leases: a Redis flushed or restarted must not make live workers look dead. A
worker alive but stuck (a hung connection that never times out) keeps renewing: the claim timeout covers it.
"""

import atexit
import logging
import os
import socket
import threading
import uuid

from django.conf import settings
from django.db import connection
from django.db.models.functions import Now

from campaigns.models import SendWorker

log = logging.getLogger(__name__)


class _Lease:
    def __init__(self, name: str):
        self.name = name
        self.pid = os.getpid()
        self.id: uuid.UUID | None = None
        self.stopped = threading.Event()


_lease: _Lease | None = None


def current() -> uuid.UUID | None:
    """The lease of this process, which its claims carry; None in a process that took none (a test, a burst
    worker) or in a child forked from one."""
    lease = _lease
    return lease.id if lease is not None and lease.pid == os.getpid() else None


def lease_start(*, name: str = "") -> None:
    """Take this process's lease and keep it renewed from a daemon thread until the process ends. If the database
    cannot be reached now, the thread keeps trying; claims made meanwhile carry no lease (the claim timeout
    covers them)."""
    global _lease
    if current() is not None:
        return
    lease = _lease = _Lease(name or f"{socket.gethostname()}:{os.getpid()}")
    _renew(lease)
    thread = threading.Thread(target=_renew_until_stopped, args=(lease,), name="send-worker-lease", daemon=True)
    thread.start()
    atexit.register(lease_end)


def lease_end() -> None:
    """A worker stopping cleanly gives its lease back (nothing of it is left to release)."""
    lease = _lease
    if lease is None or lease.pid != os.getpid():
        return
    lease.stopped.set()
    if lease.id is not None:
        try:
            SendWorker.objects.filter(pk=lease.id).delete()
        except Exception:  # noqa: BLE001 - at exit, a database gone is no reason to fail
            log.warning("could not give back the lease of %s", lease.name)


def _renewal_seconds() -> float:
    return settings.CAMPAIGNS_WORKER_LOST_SECONDS / 5


def _renew_until_stopped(lease: _Lease) -> None:
    while not lease.stopped.wait(_renewal_seconds()):
        _renew(lease)


def _renew(lease: _Lease) -> None:
    """Date the lease; take a new one when it was declared lost (this process was frozen longer than the limit, and
    its claims were released: whatever it still holds, its writes carry claim tokens no row has any more)."""
    try:
        # The database's clock, not this machine's: the scheduler on another machine reads it on the same clock.
        if lease.id is None or not SendWorker.objects.filter(pk=lease.id).update(renewed_at=Now()):
            if lease.id is not None:
                log.warning("lease of %s was declared lost; taking a new one", lease.name)
            lease.id = SendWorker.objects.create(name=lease.name[:255], started_at=Now(), renewed_at=Now()).pk
    except Exception:  # noqa: BLE001 - the database may be down for a while: try again at the next renewal
        log.exception("could not renew the lease of %s", lease.name)
    finally:
        if threading.current_thread() is not threading.main_thread():
            connection.close()  # this thread's own connection: none left open between renewals
