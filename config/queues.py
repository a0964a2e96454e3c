"""Queue names, and the one way work is put on a queue. Transactional work has workers of its own, so it never
waits behind a large campaign."""

import logging
import os
from datetime import timedelta

TRANSACTIONAL = "transactional"
TRIGGERED = "triggered"
CAMPAIGNS = "campaigns"
MAINTENANCE = "maintenance"

QUEUE_NAMES = (TRANSACTIONAL, TRIGGERED, CAMPAIGNS, MAINTENANCE)


log = logging.getLogger(__name__)

# One queue object, with its Redis client and connection pool, per process and queue settings: django_rq builds a
# new client at each get_queue/get_connection, and a new connection with its handshake cost a fifth of a trigger
# call's time (docs/benchmarks.md). The process id is in the key: a client made before a fork is not shared.
_queues: dict = {}


def queue(queue_name: str):
    """The RQ queue `queue_name`, made once per process (and again if its settings change)."""
    import django_rq
    from django.conf import settings

    key = (os.getpid(), queue_name, repr(settings.RQ_QUEUES.get(queue_name)))
    found = _queues.get(key)
    if found is None:
        found = _queues[key] = django_rq.get_queue(queue_name)
    return found


def connection(queue_name: str):
    """The Redis client of `queue_name`'s queue in this process: rate limits and locks use it."""
    return queue(queue_name).connection


def enqueue_on_commit(queue_name: str, func: str, *args, delay: float | None = None) -> None:
    """Enqueue `func` (a dotted path: jobs are JSON) once the current transaction commits, so a job never
    looks for rows not yet visible; at once outside a transaction.

    Robust: if Redis is down, Django logs the failure and the caller's transaction stands. Every caller keeps
    the state a job needs in the database, and a periodic check enqueues again what was lost (stalled runs and
    imports from the scheduler's tick; attribute indexes on the next change or `manage.py
    sync_attribute_indexes`; notification emails are best-effort).
    """

    # Imported here: the settings read the queue names above while they load, before django_rq may.
    from django.db import transaction

    def enqueue():
        target = queue(queue_name)
        if delay:
            target.enqueue_in(timedelta(seconds=delay), func, *args)
        else:
            target.enqueue(func, *args)

    transaction.on_commit(enqueue, robust=True)


def enqueue_once_on_commit(queue_name: str, func: str, *args, flag: str, ttl: int = 30) -> None:
    """Enqueue `func` after the transaction commits unless a job holding `flag` is still waiting on the queue:
    the job clears the flag (`flag_clear`) when it starts, before it looks for work, so what committed before
    it started is its work, and what commits after it started enqueues the next job. Many calls in a burst then
    make one job instead of one each. The flag expires after `ttl` seconds, in case its job was lost; the
    caller keeps in the database what a lost job would have done, as for enqueue_on_commit."""
    from django.db import transaction

    def enqueue():
        target = queue(queue_name)
        if target.connection.set(flag, 1, nx=True, ex=ttl):
            target.enqueue(func, *args)

    transaction.on_commit(enqueue, robust=True)


def flag_clear(queue_name: str, flag: str) -> None:
    """Let the next enqueue_once_on_commit with `flag` enqueue again. Redis down: the flag expires by itself."""
    try:
        connection(queue_name).delete(flag)
    except Exception:  # noqa: BLE001 - the job goes on; the flag's expiry lets the next call enqueue
        log.exception("could not clear %s", flag)


def keep_no_query_log() -> None:
    """Stop Django's query log in this process, whatever DEBUG says: with DEBUG on (the quick start) a long job
    would keep its last 9,000 queries in memory and log each one, which halves an import's speed. Worker
    processes and commands that do a worker's job call this first; nothing they run reads DEBUG otherwise."""
    from django.conf import settings

    settings.DEBUG = False
