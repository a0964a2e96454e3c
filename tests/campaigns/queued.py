"""What is waiting on the campaigns queue, for the send-path tests: the jobs a step left behind are part of what
it did (a job too many sends nothing twice, but wakes workers for nothing; a job too few leaves a run stalled)."""

from collections import Counter

import django_rq
from rq.registry import ScheduledJobRegistry

from config.queues import CAMPAIGNS


def queued() -> Counter:
    """The jobs waiting on the campaigns queue, as (job, run id)."""
    return Counter((job.func_name.rsplit(".", 1)[-1], *job.args) for job in django_rq.get_queue(CAMPAIGNS).jobs)


def send_jobs() -> Counter:
    """The send jobs waiting on the campaigns queue, counted per run."""
    return Counter(job.args[0] for job in django_rq.get_queue(CAMPAIGNS).jobs if job.func_name.endswith("send_run"))


def scheduled_send_jobs(redis) -> Counter:
    """The send jobs waiting for their time in the campaigns queue's scheduled registry, counted per run."""
    queue = django_rq.get_queue(CAMPAIGNS)
    jobs = (queue.fetch_job(job_id) for job_id in ScheduledJobRegistry(CAMPAIGNS, connection=redis).get_job_ids())
    return Counter(job.args[0] for job in jobs if job.func_name.endswith("send_run"))


def received(relay) -> Counter:
    """How many messages each recipient got at this relay."""
    return Counter(rcpt for message in relay.messages for rcpt in message["rcpt_tos"])
