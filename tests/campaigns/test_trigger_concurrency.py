"""The trigger API under concurrency, against a live server and real processes: one requestId sent by many
threads at once is one execution (counted at the SMTP server); a key's rate holds across two web processes; a
transactional call is sent while a large campaign waits on its own queue."""

import json
import multiprocessing
import threading
import urllib.error
import urllib.request

import django_rq
import pytest
from django.conf import settings

from audiences.models import Identity, IdentityNamespace, Profile
from campaigns.engine.dispatch import dispatch_send_jobs
from campaigns.models import Campaign, Delivery, Run, TriggerRequest
from campaigns.services import lifecycle
from config import queues
from permissions.services.api_keys import api_key_create
from tests.campaigns import web_process
from tests.campaigns.queued import received
from tests.conftest import make_email_configuration
from tests.processes import database_url

# Races end at database constraints and locks, which differ between PostgreSQL and SQLite: CI runs these on both.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.both_databases]

BODY = {
    "requestId": "reset-race",
    "context": {"reset_url": "https://shop.test/r/race"},
    "recipients": [{"identity": {"namespace": "email", "value": "ada@example.com"}}],
}


@pytest.fixture
def reset(personas, smtp_server):
    IdentityNamespace.objects.update_or_create(name="email", defaults={"label": "Email", "kind": "email"})
    profile = Profile.objects.create(email="ada@example.com", attributes={"first_name": "Ada"})
    Identity.objects.create(profile=profile, namespace="email", value="ada@example.com")
    campaign = lifecycle.campaign_create(
        actor=personas["ada"],
        name="Password reset",
        kind=Campaign.Kind.API_TRIGGERED,
        category=Campaign.Category.TRANSACTIONAL,
        channel_configuration=make_email_configuration(port=smtp_server.port),
        audience=None,
        content=lifecycle.Content("Reset", "<p>{{ context.reset_url }}</p>", "{{ context.reset_url }}"),
    )
    return lifecycle.campaign_activate(campaign=campaign, actor=personas["ada"])


def _post(url: str, secret: str, body: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())


def _transactional_worker() -> None:
    """A burst of the worker process that serves only the transactional queue, as the Procfile runs it."""
    django_rq.get_worker(queues.TRANSACTIONAL).work(burst=True, with_scheduler=False)


def test_one_request_id_sent_by_eight_threads_at_once_is_one_execution(
    live_server, personas, reset, smtp_server, redis
):
    secret = api_key_create(actor=personas["ada"], name="Backend", campaign_ids=[reset.pk])[1]
    url = f"{live_server.url}/api/v1/campaigns/{reset.pk}/trigger"
    start = threading.Barrier(8)
    answers = []

    def call():
        start.wait()
        answers.append(_post(url, secret, BODY))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert [status for status, _ in answers] == [202] * 8, answers
    assert len({answer["executionId"] for _, answer in answers}) == 1
    assert TriggerRequest.objects.count() == 1 and Delivery.objects.count() == 1
    _transactional_worker()
    assert received(smtp_server) == {"ada@example.com": 1}


def test_a_keys_rate_is_shared_by_two_web_processes(personas, reset, redis):
    key, secret = api_key_create(actor=personas["ada"], name="Slow", campaign_ids=[reset.pk])
    key.rate_per_second = 3
    key.save()
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    redis_db = str(redis.connection_pool.connection_kwargs["db"])
    processes = [
        context.Process(
            target=web_process.trigger_calls,
            args=(database_url(), redis_db, f"/api/v1/campaigns/{reset.pk}/trigger", secret, BODY, 6, results),
        )
        for _ in range(2)
    ]
    for process in processes:
        process.start()
    runs = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)

    statuses = [status for _, _, each in runs for status in each]
    elapsed = max(end for _, end, _ in runs) - min(start for start, _, _ in runs)
    accepted = statuses.count(202)
    # One bucket for both: a burst of 3 and 3 a second after. Two buckets would grant twice that.
    assert 3 <= accepted <= 3 + 3 * elapsed + 1, (statuses, elapsed)
    assert statuses.count(429) == 12 - accepted
    assert TriggerRequest.objects.count() == accepted


def test_a_transactional_call_is_sent_while_a_large_campaign_waits_on_its_queue(
    client, personas, reset, smtp_server, redis, everyone
):
    newsletter = lifecycle.campaign_create(
        actor=personas["ada"],
        name="Newsletter",
        channel_configuration=reset.channel_configuration,
        audience=everyone,
        content=lifecycle.Content("News", "<p>News</p>", "News"),
    )
    Campaign.objects.filter(pk=newsletter.pk).update(
        status=Campaign.Status.ACTIVE, live_version=newsletter.latest_version()
    )
    run = Run.objects.create(
        campaign=newsletter,
        version=newsletter.latest_version(),
        occurrence="big",
        state=Run.State.SENDING,
        planning_done=True,
    )
    people = Profile.objects.bulk_create(Profile(email=f"reader{i}@example.com") for i in range(5000))
    Delivery.objects.bulk_create(
        Delivery(
            run=run,
            version_id=run.version_id,
            profile=person,
            channel="email",
            channel_configuration=reset.channel_configuration,
            address=person.email,
            due_at=run.created_at,
        )
        for person in people
    )
    dispatch_send_jobs(run)  # outside a transaction: enqueued at once, on the campaigns queue
    assert django_rq.get_queue(queues.CAMPAIGNS).count == settings.CAMPAIGNS_SEND_JOBS_PER_RUN
    secret = api_key_create(actor=personas["ada"], name="Backend", campaign_ids=[reset.pk])[1]

    response = client.post(
        f"/api/v1/campaigns/{reset.pk}/trigger",
        data=json.dumps(BODY),
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert response.status_code == 202, response.content
    _transactional_worker()

    assert received(smtp_server) == {"ada@example.com": 1}
    assert run.deliveries.filter(status=Delivery.Status.PENDING).count() == 5000
    assert django_rq.get_queue(queues.CAMPAIGNS).count == settings.CAMPAIGNS_SEND_JOBS_PER_RUN
