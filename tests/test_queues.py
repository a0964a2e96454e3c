"""Putting work on a queue (config.queues.enqueue_on_commit): after the commit, nothing lost when Redis is down,
and a delayed job waits its delay with its arguments."""

from datetime import timedelta

import django_rq
import pytest
from django.db import transaction
from django.utils import timezone

from audiences.models import Audience, Profile
from campaigns.engine import scheduler
from campaigns.models import Delivery, Run
from campaigns.services.lifecycle import Content, campaign_activate, campaign_create
from config import queues
from config.queues import enqueue_on_commit
from config.scheduler import scheduler_tick
from tests.conftest import make_email_configuration, run_burst_worker

NOBODY_LISTENS = "redis://127.0.0.1:1/0"


@pytest.mark.django_db(transaction=True)
def test_a_job_is_enqueued_only_once_the_transaction_commits(redis):
    queue = django_rq.get_queue(queues.MAINTENANCE)
    with transaction.atomic():
        enqueue_on_commit(queues.MAINTENANCE, "audiences.jobs.sync_attribute_indexes")
        assert queue.count == 0
    assert [job.func_name for job in queue.jobs] == ["audiences.jobs.sync_attribute_indexes"]


@pytest.mark.django_db(transaction=True)
def test_a_delayed_job_waits_its_delay_and_keeps_its_arguments(redis):
    before = timezone.now()
    enqueue_on_commit(queues.CAMPAIGNS, "campaigns.jobs.send_run", 42, delay=30)

    queue = django_rq.get_queue(queues.CAMPAIGNS)
    assert queue.count == 0
    [job_id] = queue.scheduled_job_registry.get_job_ids()
    job = queue.fetch_job(job_id)
    assert (job.func_name, job.args) == ("campaigns.jobs.send_run", [42])
    due = queue.scheduled_job_registry.get_scheduled_time(job)
    assert before + timedelta(seconds=29) <= due <= timezone.now() + timedelta(seconds=31)


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_the_action_stands_and_the_scheduler_sends_it_once_redis_is_back(
    redis, smtp_server, personas, settings
):
    Profile.objects.bulk_create(Profile(email=f"p{i}@example.com") for i in range(3))
    campaign = campaign_create(
        actor=personas["april"],
        name="Autumn sale",
        channel_configuration=make_email_configuration(port=smtp_server.port),
        audience=Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL),
        content=Content("Hello", "<p>Hello</p>", "Hello"),
    )
    campaign_activate(campaign=campaign, actor=personas["april"])
    working = settings.RQ_QUEUES
    # A copy: the settings fixture puts back the object it found, which must not have changed.
    settings.RQ_QUEUES = {name: {**queue, "URL": NOBODY_LISTENS} for name, queue in working.items()}

    # The run starts and is committed although its planning job cannot be enqueued: no error reaches the caller.
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    assert Run.objects.get(pk=run_id).state == Run.State.PLANNING

    settings.RQ_QUEUES = working
    assert redis.dbsize() == 0  # nothing was queued while Redis was down
    scheduler_tick(now=timezone.now() + timedelta(seconds=settings.CAMPAIGNS_STALL_SECONDS + 1))
    run_burst_worker()

    assert sorted(smtp_server.by_recipient()) == ["p0@example.com", "p1@example.com", "p2@example.com"]
    assert all(len(messages) == 1 for messages in smtp_server.by_recipient().values())
    assert set(Delivery.objects.filter(run_id=run_id).values_list("status", flat=True)) == {Delivery.Status.SENT}


def test_each_queue_is_made_once_a_process_and_again_when_its_settings_change(settings):
    transactional, campaigns = queues.queue(queues.TRANSACTIONAL), queues.queue(queues.CAMPAIGNS)

    assert (transactional.name, campaigns.name) == (queues.TRANSACTIONAL, queues.CAMPAIGNS)
    assert queues.queue(queues.TRANSACTIONAL) is transactional  # one Redis client, one connection pool
    assert queues.connection(queues.CAMPAIGNS) is campaigns.connection
    moved = {name: {**queue, "URL": NOBODY_LISTENS} for name, queue in settings.RQ_QUEUES.items()}
    settings.RQ_QUEUES = moved
    assert queues.queue(queues.TRANSACTIONAL).connection.connection_pool.connection_kwargs["port"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_waiting_job_takes_the_next_ones_work_until_it_starts_and_its_flag_expires(redis):
    queue = django_rq.get_queue(queues.TRANSACTIONAL)
    for _ in range(3):
        queues.enqueue_once_on_commit(queues.TRANSACTIONAL, "campaigns.jobs.send_run", 7, flag="f:7", ttl=30)

    assert queue.count == 1
    assert 0 < redis.ttl("f:7") <= 30  # a lost job's flag does not hold the next calls back for good
    queues.flag_clear(queues.TRANSACTIONAL, "f:7")
    queues.enqueue_once_on_commit(queues.TRANSACTIONAL, "campaigns.jobs.send_run", 7, flag="f:7", ttl=30)
    assert queue.count == 2


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_enqueue_once_lets_the_action_stand(redis, settings):
    settings.RQ_QUEUES = {name: {**queue, "URL": NOBODY_LISTENS} for name, queue in settings.RQ_QUEUES.items()}

    with transaction.atomic():
        Profile.objects.create(email="kept@example.com")
        queues.enqueue_once_on_commit(queues.TRANSACTIONAL, "campaigns.jobs.send_run", 7, flag="f:7")
    queues.flag_clear(queues.TRANSACTIONAL, "f:7")  # logged, not raised

    assert Profile.objects.filter(email="kept@example.com").exists()
