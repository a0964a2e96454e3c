"""Queue names, and the one way work is put on a queue. Transactional work has workers of its own, so it never
waits behind a large campaign."""

from datetime import timedelta

TRANSACTIONAL = "transactional"
TRIGGERED = "triggered"
CAMPAIGNS = "campaigns"
MAINTENANCE = "maintenance"

QUEUE_NAMES = (TRANSACTIONAL, TRIGGERED, CAMPAIGNS, MAINTENANCE)


def enqueue_on_commit(queue_name: str, func: str, *args, delay: float | None = None) -> None:
    """Enqueue `func` (a dotted path: jobs are JSON) once the current transaction commits, so a job never
    looks for rows not yet visible; at once outside a transaction.

    Robust: if Redis is down, Django logs the failure and the caller's transaction stands. Every caller keeps
    the state a job needs in the database, and a periodic check enqueues again what was lost (stalled runs and
    imports from the scheduler's tick; attribute indexes on the next change or `manage.py
    sync_attribute_indexes`; notification emails are best-effort).
    """

    # Imported here: the settings read the queue names above while they load, before django_rq may.
    import django_rq
    from django.db import transaction

    def enqueue():
        queue = django_rq.get_queue(queue_name)
        if delay:
            queue.enqueue_in(timedelta(seconds=delay), func, *args)
        else:
            queue.enqueue(func, *args)

    transaction.on_commit(enqueue, robust=True)
