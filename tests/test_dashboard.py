"""The home dashboard: live runs with their progress, the next scheduled sends in each campaign's zone, recent
results, and the system's health read from the real test Redis: workers alive per queue (an RQ worker record
registered as RQ does), jobs waiting and failed, the scheduler's heartbeat, the oldest due message; a warning
banner naming what is not running, and the page still served when Redis cannot be reached."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from rq import Queue
from rq.serializers import JSONSerializer
from rq.worker import SimpleWorker, Worker

from audiences.models import Audience, Profile
from campaigns.models import Campaign, Delivery, Run
from campaigns.selectors.reports import oldest_due_pending
from campaigns.services.lifecycle import Content, campaign_create
from config import health, queues
from config.scheduler import scheduler_tick
from tests.conftest import PASSWORD, make_email_configuration
from tests.test_preflight import closed_port

NOW = datetime(2030, 6, 3, 12, 0, tzinfo=UTC)
BANNER = re.compile(r'<div class="message message-warning dashboard-banner" role="alert">(.*?)</div>', re.S)


def make_campaign(actor, name, **fields) -> Campaign:
    campaign = campaign_create(
        actor=actor,
        name=name,
        channel_configuration=make_email_configuration(port=25, name=f"{name} relay"),
        audience=Audience.objects.get_or_create(name="Everyone", kind=Audience.Kind.ALL)[0],
        content=Content("Hi", "<p>Hi</p>", "Hi"),
    )
    if fields:
        Campaign.objects.filter(pk=campaign.pk).update(**fields)
        campaign.refresh_from_db()
    return campaign


def make_run(campaign, occurrence, state, **fields) -> Run:
    return Run.objects.create(
        campaign=campaign, version=campaign.latest_version(), occurrence=occurrence, state=state, **fields
    )


def make_deliveries(run, statuses, *, due_at=NOW - timedelta(hours=1)) -> None:
    start = Profile.objects.count()
    profiles = Profile.objects.bulk_create(
        Profile(email=f"p{start + index}@example.com") for index in range(len(statuses))
    )
    Delivery.objects.bulk_create(
        Delivery(
            run=run,
            version=run.version,
            profile=profile,
            channel="email",
            channel_configuration=run.campaign.channel_configuration,
            due_at=due_at,
            status=status,
        )
        for profile, status in zip(profiles, statuses, strict=True)
    )


@pytest.fixture
def ledger(personas):
    """A run sending (3 sent, 1 failed, 4 pending, 1 excluded: 4 of 8 done), a paused run, a finished run (5 sent,
    2 bounced or failed), two active scheduled campaigns due at different times and a paused one."""
    april = personas["april"]
    spring = make_campaign(april, "Spring sale", status=Campaign.Status.ACTIVE)
    sending = make_run(spring, "2030-06-03T11:00", Run.State.SENDING, sending_at=NOW - timedelta(hours=1))
    make_deliveries(sending, ["sent"] * 3 + ["failed"] + ["excluded"])
    make_deliveries(sending, ["pending"] * 2, due_at=NOW - timedelta(minutes=10))
    make_deliveries(sending, ["pending"] * 2, due_at=NOW + timedelta(hours=2))  # not due yet
    held = make_campaign(april, "Held back", status=Campaign.Status.PAUSED)
    paused = make_run(held, "2030-06-03T10:00", Run.State.PAUSED)
    make_deliveries(paused, ["pending"], due_at=NOW - timedelta(hours=3))  # paused: not waiting on the system
    autumn = make_campaign(april, "Autumn sale", status=Campaign.Status.COMPLETED)
    finished = make_run(autumn, "2030-06-02T09:00", Run.State.COMPLETE, finished_at=NOW - timedelta(days=1))
    make_deliveries(finished, ["sent"] * 4 + ["delivered", "bounced", "failed"])
    weekly = make_campaign(
        april,
        "Weekly news",
        status=Campaign.Status.ACTIVE,
        schedule=Campaign.Schedule.WEEKLY,
        timezone="Europe/Paris",
        next_run_at=datetime(2030, 6, 10, 7, 0, tzinfo=UTC),
    )
    daily = make_campaign(
        april,
        "Daily deals",
        status=Campaign.Status.ACTIVE,
        schedule=Campaign.Schedule.DAILY,
        timezone="America/New_York",
        next_run_at=datetime(2030, 6, 4, 13, 0, tzinfo=UTC),
    )
    make_campaign(april, "On hold", status=Campaign.Status.PAUSED, next_run_at=datetime(2030, 6, 5, tzinfo=UTC))
    return {"sending": sending, "paused": paused, "finished": finished, "weekly": weekly, "daily": daily}


def register_worker(queue_name: str, name: str) -> Worker:
    """A worker record in Redis as a starting RQ worker writes it (the pool's workers do the same)."""
    worker = Worker([queues.queue(queue_name)], connection=queues.connection(queue_name), name=name)
    worker.register_birth()
    return worker


def all_running() -> dict[str, Worker]:
    """A worker on every queue and a fresh scheduler tick: nothing to warn about."""
    workers = {name: register_worker(name, f"{name}-worker") for name in queues.QUEUE_NAMES}
    health.scheduler_tick_record()
    return workers


def banner(response) -> str:
    found = BANNER.search(response.content.decode())
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1))).strip() if found else ""


@pytest.fixture
def frozen(time_machine):
    time_machine.move_to(NOW, tick=False)


def dashboard(client, user):
    client.force_login(user)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    return response


def test_the_dashboard_shows_a_live_run_with_its_progress_the_next_sends_and_recent_results(
    client, personas, ledger, redis, frozen
):
    all_running()

    response = dashboard(client, personas["vera"])

    page = response.content.decode()
    [paused, sending] = response.context["live"]
    assert (paused, sending) == (ledger["paused"], ledger["sending"])  # the latest started first
    assert (sending.counts.done, sending.counts.to_send, sending.counts.percent_done) == (4, 8, 50)
    assert '<progress aria-label="Messages done for Spring sale" max="100" value="50">' in page
    assert "4 of 8 done (50%)" in page
    assert f'href="/campaigns/{ledger["sending"].campaign_id}/"' in page
    # Active scheduled campaigns, soonest first, at their occurrence on their own wall clock.
    assert response.context["next_sends"] == [ledger["daily"], ledger["weekly"]]
    assert "2030-06-04 09:00 America/New_York" in page
    assert "2030-06-10 09:00 Europe/Paris" in page
    assert "On hold" not in page  # paused: nothing is due
    [finished] = response.context["recent"]
    assert finished == ledger["finished"]
    assert (finished.counts.sent, finished.counts.failed) == (5, 2)
    assert banner(response) == ""


def test_a_queue_without_a_worker_is_named_in_the_banner_and_leaves_it_once_a_worker_registers(
    client, personas, ledger, redis
):
    health.scheduler_tick_record()
    for name in (queues.TRIGGERED, queues.CAMPAIGNS, queues.MAINTENANCE):
        register_worker(name, f"{name}-worker")

    stopped = dashboard(client, personas["vera"])

    assert banner(stopped) == (
        "Messages may not be going out. No worker is running for the queue transactional: its jobs wait until one "
        "starts (manage.py rqworker-pool)."
    )
    assert '<th scope="row">transactional</th>\n              <td class="num"><strong>0: not running</strong>' in (
        stopped.content.decode()
    )

    register_worker(queues.TRANSACTIONAL, "transactional-worker")
    running = dashboard(client, personas["vera"])

    assert banner(running) == ""
    assert [queue.workers for queue in running.context["health"].queues] == [1, 1, 1, 1]


def test_every_queue_is_named_when_no_worker_runs(client, personas, redis):
    health.scheduler_tick_record()

    response = dashboard(client, personas["vera"])

    assert "for the queues transactional, triggered, campaigns, maintenance: their jobs wait" in banner(response)


def test_a_worker_that_stopped_or_died_is_not_counted_alive(client, personas, redis):
    workers = all_running()
    workers[queues.CAMPAIGNS].register_death()  # stopped: it says so as it ends
    # Killed (SIGKILL): its record expires, while its key stays in the queue's set of workers.
    killed = workers[queues.MAINTENANCE].key
    queues.connection(queues.MAINTENANCE).delete(killed)
    assert killed in Worker.all_keys(queue=queues.queue(queues.MAINTENANCE))

    response = dashboard(client, personas["vera"])

    assert "No worker is running for the queues campaigns, maintenance:" in banner(response)


def test_queue_lengths_and_failed_jobs_are_shown_per_queue(client, personas, redis):
    all_running()
    # Plain RQ queues: django_rq's enqueue waits for a commit that a test's transaction never makes.
    maintenance = Queue(queues.MAINTENANCE, connection=redis, serializer=JSONSerializer)
    maintenance.enqueue("campaigns.jobs.send_run", 1)
    maintenance.enqueue("campaigns.jobs.send_run", 2)
    failing = Queue(queues.TRIGGERED, connection=redis, serializer=JSONSerializer)
    failing.enqueue("builtins.int", "not a number")
    SimpleWorker([failing], connection=redis, serializer=JSONSerializer).work(burst=True)

    response = dashboard(client, personas["vera"])

    figures = {queue.name: (queue.workers, queue.waiting, queue.failed) for queue in response.context["health"].queues}
    assert figures == {
        queues.TRANSACTIONAL: (1, 0, 0),
        queues.TRIGGERED: (1, 0, 1),  # the burst worker registered its death when it ended
        queues.CAMPAIGNS: (1, 0, 0),
        queues.MAINTENANCE: (1, 2, 0),
    }
    assert banner(response) == ""


@pytest.mark.parametrize(
    ("interval", "age", "stale"),
    [(2, 29, False), (2, 31, True), (20, 59, False), (20, 61, True)],
    ids=["2s-fresh", "2s-stale", "20s-fresh", "20s-stale"],
)
def test_the_scheduler_is_stale_after_three_intervals_and_at_least_30_seconds(
    client, personas, redis, frozen, settings, interval, age, stale
):
    settings.SCHEDULER_INTERVAL = interval
    all_running()
    health.scheduler_tick_record(at=NOW - timedelta(seconds=age))

    response = dashboard(client, personas["vera"])

    assert response.context["health"].scheduler_stale is stale
    assert ("The scheduler is not running" in banner(response)) is stale
    if stale:
        assert f"its last tick was {age} s ago" in banner(response)


def test_a_scheduler_that_never_ticked_is_named_in_the_banner(client, personas, redis):
    for name in queues.QUEUE_NAMES:
        register_worker(name, f"{name}-worker")

    response = dashboard(client, personas["vera"])

    assert "The scheduler is not running: it has never ticked" in banner(response)


def test_each_completed_tick_of_the_scheduler_is_recorded(client, personas, redis, frozen):
    for name in queues.QUEUE_NAMES:
        register_worker(name, f"{name}-worker")

    scheduler_tick()

    response = dashboard(client, personas["vera"])
    assert response.context["health"].scheduler_last_tick == NOW
    assert banner(response) == ""
    assert 0 < redis.ttl(health.SCHEDULER_TICK_KEY) <= health.SCHEDULER_TICK_TTL


def test_with_redis_unreachable_the_page_still_answers_with_the_banner(client, personas, ledger, settings):
    port = closed_port()
    settings.RQ_QUEUES = {
        name: {**queue, "URL": f"redis://127.0.0.1:{port}/0"} for name, queue in settings.RQ_QUEUES.items()
    }

    response = dashboard(client, personas["vera"])

    assert banner(response) == (
        "Messages may not be going out. Redis cannot be reached (Connection refused): no work can be queued, and "
        "whether the workers and the scheduler run is unknown."
    )
    assert response.context["health"].scheduler_stale is False  # unknown, not "never"
    assert "4 of " in response.content.decode()  # the rest of the page is there
    assert response.context["recent"] == [ledger["finished"]]


def test_the_oldest_due_message_is_that_of_a_sending_run(client, personas, ledger, redis, frozen):
    # Claimed long ago (a worker holds it) and pending in the paused run: neither is waiting to be picked up.
    make_deliveries(ledger["sending"], ["claimed"], due_at=NOW - timedelta(days=1))

    assert oldest_due_pending(now=NOW) == NOW - timedelta(minutes=10)
    page = dashboard(client, personas["vera"]).content.decode()
    assert "due 10 min ago" in page
    Run.objects.filter(pk=ledger["sending"].pk).update(state=Run.State.COMPLETE)
    assert oldest_due_pending(now=NOW) is None


def test_someone_without_campaigns_lands_on_the_first_section_they_may_read(client, django_user_model):
    auditor = django_user_model.objects.create_user("auditor", "auditor@example.com", PASSWORD)
    role = Group.objects.create(name="Auditor")
    role.permissions.add(Permission.objects.get(codename="view_auditevent"))
    auditor.groups.add(role)
    client.force_login(auditor)

    response = client.get("/", follow=True)
    assert response.redirect_chain == [(reverse("permissions:audit"), 302)]
    assert response.status_code == 200  # a page they may read, not the forbidden one

    role.permissions.add(Permission.objects.get(codename="view_audience"))
    client.force_login(django_user_model.objects.get(pk=auditor.pk))  # permissions are cached on the user
    response = client.get("/", follow=True)
    assert response.redirect_chain == [(reverse("audiences:audience_list"), 302)]
    assert response.status_code == 200


def test_someone_without_any_role_gets_the_page_naming_the_roles(client, personas):
    client.force_login(personas["otto"])

    response = client.get("/")

    assert response.status_code == 403
    assert "Campaign viewer" in response.content.decode()


def test_an_anonymous_visitor_is_sent_to_log_in(client):
    response = client.get("/")

    assert response.status_code == 302
    assert response.url == f"{reverse('login')}?next=/"
