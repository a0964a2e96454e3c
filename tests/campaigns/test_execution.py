"""The send path with real parts: the database, Redis, a burst worker and an SMTP server on loopback."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from audiences.models import Audience, Consent, Profile
from campaigns.engine import claiming, completion, dispatch, outcomes, planning, recovery, scheduler, sending
from campaigns.models import Campaign, Delivery, Run
from campaigns.selectors import delivery_counts
from campaigns.services.lifecycle import Content, campaign_activate, campaign_create, campaign_pause, campaign_stop
from channels.adapters.base import Outcome, SendResult
from channels.models import Suppression
from config.scheduler import scheduler_tick
from tests.conftest import make_email_configuration, run_burst_worker

CONTENT = Content(
    subject="Hello {{ profile.first_name }}",
    html_body="<p>Dear {{ profile.first_name }}, our sale starts now.</p>",
    text_body="Dear {{ profile.first_name }}, our sale starts now.",
)


def make_profiles(count: int, *, start: int = 0) -> list[Profile]:
    return Profile.objects.bulk_create(
        Profile(email=f"person{i}@example.com", attributes={"first_name": f"Name{i}", "n": i})
        for i in range(start, start + count)
    )


def make_campaign(user, configuration, audience, **kwargs) -> Campaign:
    return campaign_create(
        actor=user,
        name="Autumn sale",
        channel_configuration=configuration,
        audience=audience,
        content=kwargs.pop("content", CONTENT),
        **kwargs,
    )


def planned_run(marketer, audience, port: int, *, profiles: int, **configuration) -> tuple[Campaign, int]:
    """A campaign to `profiles` new profiles, activated, its run started and planned (ledger written)."""
    make_profiles(profiles)
    campaign = make_campaign(marketer, make_email_configuration(port=port, **configuration), audience)
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    return campaign, run_id


@pytest.mark.smoke
@pytest.mark.django_db(transaction=True)
def test_campaign_reaches_each_recipient_once_through_scheduler_and_worker(redis, smtp_server, marketer, everyone):
    profiles = make_profiles(23)
    opted_out, suppressed = profiles[3], profiles[4]
    Consent.objects.create(profile=opted_out, channel="email", state=Consent.State.OPTED_OUT)
    Suppression.objects.create(channel="email", address=suppressed.email, reason=Suppression.Reason.HARD_BOUNCE)
    no_address = Profile.objects.create(email="", attributes={"first_name": "Nobody"})
    configuration = make_email_configuration(port=smtp_server.port, connections=2)
    campaign = make_campaign(marketer, configuration, everyone)

    campaign_activate(campaign=campaign, actor=marketer)
    scheduler_tick()
    run_burst_worker()

    received = smtp_server.by_recipient()
    expected = {p.email: p for p in profiles if p not in (opted_out, suppressed)}
    assert set(received) == set(expected)
    for address, messages in received.items():
        assert len(messages) == 1, f"{address} received {len(messages)} messages"
        first_name = expected[address].attributes["first_name"]
        message = messages[0]
        assert message["Subject"] == f"Hello {first_name}"
        assert f"Dear {first_name}," in message.get_body(("plain",)).get_content()
        assert f"<p>Dear {first_name}," in message.get_body(("html",)).get_content()
    # Connections are reused across slices: one session per pooled connection, not one per message.
    assert smtp_server.sessions <= 2

    run = Run.objects.get(campaign=campaign)
    assert run.state == Run.State.COMPLETE
    counts = delivery_counts(campaign_id=campaign.pk)
    assert (counts.targeted, counts.excluded, counts.sent, counts.failed) == (24, 3, 21, 0)
    reasons = dict(Delivery.objects.filter(status="excluded").values_list("profile_id", "reason"))
    assert reasons == {opted_out.pk: "no_consent", suppressed.pk: "suppressed", no_address.pk: "no_address"}
    assert Delivery.objects.filter(status="sent").exclude(provider_message_id="").count() == 21
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED


@pytest.mark.django_db(transaction=True)
def test_planning_twice_writes_each_delivery_once(redis, marketer, everyone, smtp_server):
    make_profiles(20)
    campaign = make_campaign(marketer, make_email_configuration(port=smtp_server.port), everyone)
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())

    planning.plan_run(run_id=run_id)
    # A second planner (a replayed job) finds the run planned and adds nothing.
    Run.objects.filter(pk=run_id).update(state=Run.State.PLANNING)
    planning.plan_run(run_id=run_id)

    assert Delivery.objects.filter(run_id=run_id).count() == 20
    assert Run.objects.get(pk=run_id).planning_cursor == Profile.objects.order_by("-pk").first().pk


@pytest.mark.django_db(transaction=True)
def test_running_a_send_job_twice_sends_nothing_twice(redis, smtp_server, marketer, everyone):
    campaign, run_id = planned_run(marketer, everyone, smtp_server.port, profiles=12)

    sending.send_run(run_id=run_id)
    Run.objects.filter(pk=run_id).update(state=Run.State.SENDING)  # as if the job were replayed early
    sending.send_run(run_id=run_id)

    assert len(smtp_server.messages) == 12
    assert Delivery.objects.filter(run_id=run_id, status="sent", attempts=1).count() == 12


@pytest.mark.django_db(transaction=True)
def test_two_workers_claiming_at_once_never_share_a_row(redis, marketer, everyone, smtp_server):
    campaign, run_id = planned_run(marketer, everyone, smtp_server.port, profiles=60)
    claims: dict[int, list[int]] = {}
    start = threading.Barrier(4)

    def claimer(n):
        start.wait()
        mine = []
        try:
            while True:
                _, rows = claiming.claim_slice(run_id=run_id, limit=3, now=timezone.now())
                assert len(rows) <= 3
                if not rows:
                    if not Delivery.objects.filter(run_id=run_id, status="pending").exists():
                        break
                    continue
                mine.extend(row.pk for row in rows)
        finally:
            connection.close()
        claims[n] = mine

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    all_claimed = [pk for mine in claims.values() for pk in mine]
    assert len(all_claimed) == len(set(all_claimed)) == 60
    assert Delivery.objects.filter(run_id=run_id, status="claimed").values("claim_token").distinct().count() > 1


@pytest.mark.django_db(transaction=True)
def test_outcome_written_with_a_stale_claim_token_changes_nothing(redis, marketer, everyone, smtp_server):
    campaign, run_id = planned_run(marketer, everyone, smtp_server.port, profiles=5)
    now = timezone.now()
    old_token, rows = claiming.claim_slice(run_id=run_id, limit=5, now=now)
    Delivery.objects.filter(claim_token=old_token).update(status=Delivery.Status.IN_FLIGHT)

    # The first worker is presumed dead: its in-flight rows become unknown and pass to nobody.
    later = now + timedelta(seconds=3600)
    recovery.release_stale_claims(now=later)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"unknown"}

    written = outcomes.record_outcomes(
        token=old_token,
        results=[SendResult(row.pk, Outcome.SENT, provider_message_id="late") for row in rows],
        by_id={row.pk: row for row in rows},
    )
    assert written == 0
    assert not Delivery.objects.filter(provider_message_id="late").exists()


@pytest.mark.django_db(transaction=True)
def test_claims_of_a_dead_worker_go_back_to_pending_and_are_sent_once(redis, marketer, everyone, smtp_server):
    campaign, run_id = planned_run(marketer, everyone, smtp_server.port, profiles=5)
    claimed_at = timezone.now()  # the rows are due from planning on: claiming "an hour ago" would claim none
    stale_token, rows = claiming.claim_slice(run_id=run_id, limit=5, now=claimed_at)
    assert len(rows) == 5

    timeout = timedelta(seconds=settings.CAMPAIGNS_CLAIM_TIMEOUT)
    assert recovery.release_stale_claims(now=claimed_at + timeout + timedelta(seconds=1)) == 5
    assert set(Delivery.objects.values_list("status", flat=True)) == {"pending"}
    sending.send_run(run_id=run_id)
    written = outcomes.record_outcomes(
        token=stale_token,
        results=[SendResult(row.pk, Outcome.PERMANENT, reason="late") for row in rows],
        by_id={row.pk: row for row in rows},
    )

    assert written == 0
    assert len(smtp_server.messages) == 5
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}


@pytest.mark.django_db(transaction=True)
def test_template_error_fails_one_delivery_not_the_run(redis, smtp_server, marketer, everyone):
    Profile.objects.create(email="ok@example.com", attributes={"first_name": "Ok", "items": [1, 2]})
    Profile.objects.create(email="bad@example.com", attributes={"first_name": "Bad", "items": 5})
    content = Content(
        subject="Hi", html_body="{% for i in profile.items %}{{ i | divided_by: 0 }}{% endfor %}", text_body=""
    )
    campaign = make_campaign(marketer, make_email_configuration(port=smtp_server.port), everyone, content=content)
    campaign_activate(campaign=campaign, actor=marketer)
    scheduler_tick()
    run_burst_worker()

    failed = Delivery.objects.get(status="failed")
    assert failed.reason == "template_error" and "html_body" in failed.detail
    assert Run.objects.get().state == Run.State.COMPLETE


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
def test_one_recipient_whose_data_cannot_render_fails_alone_and_the_run_completes(
    redis, smtp_server, marketer, everyone
):
    """A filter fed one person's data raising outside Liquid's own errors (`| date` of a number of 30 digits
    overflows the platform's time_t) used to crash the job and leave its slice claimed, sent to no one."""
    make_profiles(11)
    bad = Profile.objects.create(email="bad@example.com", attributes={"first_name": "Bad", "since": "9" * 30})
    if connection.vendor == "sqlite":
        # Stored before entries were checked: SQLite keeps JSON's \ud800 escape, which decodes to a lone surrogate.
        Profile.objects.create(email="lone@example.com", attributes={"first_name": "Lone\ud800", "since": "2020"})
    content = Content(
        subject="Hello {{ profile.first_name }}",
        html_body="<p>Member since {{ profile.since | date: '%Y' }}</p>",
        text_body="Member since {{ profile.since | date: '%Y' }}",
    )
    # One connection: the bad recipients share a lane (and slices of 5) with healthy ones.
    configuration = make_email_configuration(port=smtp_server.port, connections=1)
    campaign = make_campaign(marketer, configuration, everyone, content=content)
    campaign_activate(campaign=campaign, actor=marketer)

    scheduler_tick()
    run_burst_worker()

    failed = list(Delivery.objects.filter(status="failed").order_by("id"))
    assert [d.address for d in failed] == ["bad@example.com"] + (
        ["lone@example.com"] if connection.vendor == "sqlite" else []
    )
    assert all(d.reason == "template_error" for d in failed)
    assert "OverflowError" in failed[0].detail
    if connection.vendor == "sqlite":
        assert "Unicode" in failed[1].detail  # Liquid's own encoding of the output, or our check after it
    assert Delivery.objects.filter(status="sent").count() == 11
    assert len(smtp_server.messages) == 11
    assert Run.objects.get().state == Run.State.COMPLETE
    assert bad.pk  # the person is still there: only this message failed


def test_the_email_adapter_fails_one_message_it_cannot_build_and_sends_the_rest(db, smtp_server):
    """Past rendering, a message whose bytes cannot be built or whose address smtplib cannot encode fails
    alone (message_error), and the connection it shared goes on for the others."""
    from channels.adapters.base import OutboundMessage
    from channels.adapters.registry import adapter_for

    configuration = make_email_configuration(port=smtp_server.port, connections=1)
    adapter = adapter_for(configuration)
    messages = [
        OutboundMessage(delivery_id=1, to="one@example.com", subject="Hi", html="<p>1</p>", text="1"),
        OutboundMessage(delivery_id=2, to="two@example.com", subject="Hi \ud800", html="<p>2</p>", text="2"),
        OutboundMessage(delivery_id=3, to="thr\udc00ee@example.com", subject="Hi", html="<p>3</p>", text="3"),
        OutboundMessage(delivery_id=4, to="four@example.com", subject="Hi", html="<p>4</p>", text="4"),
    ]

    results = adapter.send(messages)

    assert [r.outcome for r in results] == [Outcome.SENT, Outcome.PERMANENT, Outcome.PERMANENT, Outcome.SENT]
    assert [r.reason for r in results[1:3]] == ["message_error", "message_error"]
    assert "UnicodeEncodeError" in results[1].detail
    assert sorted(smtp_server.by_recipient()) == ["four@example.com", "one@example.com"]


@pytest.mark.django_db(transaction=True)
def test_scheduler_starts_an_occurrence_once_and_advances_recurring_schedule(redis, marketer, everyone, smtp_server):
    make_profiles(2)
    start = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    campaign = make_campaign(
        marketer,
        make_email_configuration(port=smtp_server.port),
        everyone,
        schedule=Campaign.Schedule.RECURRING,
        cron="0 9 * * *",
        timezone_name="Europe/Paris",
        start_at=start,
    )
    campaign_activate(campaign=campaign, actor=marketer, now=start - timedelta(days=1))
    campaign.refresh_from_db()
    assert campaign.next_run_at == datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # 09:00 in Paris

    assert scheduler.start_due_runs(now=start - timedelta(minutes=1)) == []
    first = scheduler.start_due_runs(now=start)
    again = scheduler.start_due_runs(now=start + timedelta(seconds=5))

    assert len(first) == 1 and again == []
    assert Run.objects.get().occurrence == "2026-12-01T09:00:00"
    campaign.refresh_from_db()
    assert campaign.next_run_at == datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_repeated_wall_clock_time_when_clocks_go_back_is_one_run(redis, marketer, everyone, smtp_server):
    campaign = make_campaign(
        marketer,
        make_email_configuration(port=smtp_server.port),
        everyone,
        schedule=Campaign.Schedule.RECURRING,
        cron="30 2 * * *",
        timezone_name="Europe/Paris",
    )
    campaign_activate(campaign=campaign, actor=marketer, now=datetime(2026, 10, 25, 0, 0, tzinfo=UTC))
    campaign.refresh_from_db()
    # 02:30 happens twice in Paris on 25 October 2026 (00:30 and 01:30 UTC).
    assert scheduler.start_due_runs(now=datetime(2026, 10, 25, 0, 31, tzinfo=UTC))
    campaign.refresh_from_db()
    Campaign.objects.filter(pk=campaign.pk).update(next_run_at=datetime(2026, 10, 25, 1, 30, tzinfo=UTC))
    assert scheduler.start_due_runs(now=datetime(2026, 10, 25, 1, 31, tzinfo=UTC)) == []
    assert Run.objects.filter(campaign=campaign).count() == 1


@pytest.mark.django_db(transaction=True)
def test_stopped_run_sends_nothing_more(redis, smtp_server, marketer, everyone):
    campaign, run_id = planned_run(marketer, everyone, smtp_server.port, profiles=15)
    token, rows = claiming.claim_slice(run_id=run_id, limit=5, now=timezone.now())
    sending.send_slice(run=Run.objects.get(pk=run_id), token=token, deliveries=rows)

    campaign_stop(campaign=campaign, actor=marketer)
    run_burst_worker()
    sending.send_run(run_id=run_id)
    scheduler_tick(now=timezone.now() + timedelta(hours=1))
    run_burst_worker()

    assert len(smtp_server.messages) == 5
    assert Run.objects.get(pk=run_id).state == Run.State.STOPPED
    # What was never sent is cancelled by the tick, so the counts add up.
    counts = delivery_counts(run_id=run_id)
    assert (counts.targeted, counts.sent, counts.cancelled, counts.pending) == (15, 5, 10, 0)
    assert counts.to_send == counts.done == 5
    assert Run.objects.get(pk=run_id).heartbeat_at is None  # nothing left to cancel: no longer looked at


@pytest.mark.django_db(transaction=True)
def test_a_stop_cancels_claimed_rows_and_their_worker_hands_nothing_over(redis, smtp_server, marketer, everyone):
    campaign, run_id = planned_run(marketer, everyone, smtp_server.port, profiles=12)
    token, rows = claiming.claim_slice(run_id=run_id, limit=4, now=timezone.now())  # a worker mid-render

    campaign_stop(campaign=campaign, actor=marketer)
    assert completion.cancel_unsent_of_stopped_runs() == 12
    sending.send_slice(run=Run.objects.get(pk=run_id), token=token, deliveries=rows)  # the worker goes on

    assert smtp_server.messages == []
    assert set(Delivery.objects.filter(run_id=run_id).values_list("status", flat=True)) == {"cancelled"}
    assert completion.cancel_unsent_of_stopped_runs() == 0


@pytest.mark.django_db(transaction=True)
def test_a_message_in_flight_at_the_stop_that_comes_back_for_a_retry_is_cancelled_too(
    redis, smtp_server, marketer, everyone
):
    campaign, run_id = planned_run(marketer, everyone, smtp_server.port, profiles=6)
    token, rows = claiming.claim_slice(run_id=run_id, limit=4, now=timezone.now())
    assert sending._hand_over(token, [row.pk for row in rows]) == {row.pk for row in rows}  # at the provider

    campaign_stop(campaign=campaign, actor=marketer)
    assert completion.cancel_unsent_of_stopped_runs() == 2
    # The provider says "try again later" (a greylisting relay's 421): the rows would go back to pending.
    results = [SendResult(row.pk, Outcome.TRANSIENT, reason="smtp_421", detail="try later") for row in rows]
    outcomes.record_outcomes(token=token, results=results, by_id={row.pk: row for row in rows})
    assert completion.cancel_unsent_of_stopped_runs() == 4

    counts = delivery_counts(run_id=run_id)
    assert (counts.pending, counts.cancelled) == (0, 6)
    assert completion.cancel_unsent_of_stopped_runs() == 0
    assert Run.objects.get(pk=run_id).heartbeat_at is None


@pytest.mark.django_db(transaction=True)
def test_one_stopped_run_done_does_not_end_the_cancelling_of_another(redis, smtp_server, marketer, everyone):
    first, first_run = planned_run(marketer, everyone, smtp_server.port, profiles=3)
    second, second_run = planned_run(marketer, everyone, smtp_server.port, profiles=3, name="Second relay")
    sending_elsewhere, _ = planned_run(marketer, everyone, smtp_server.port, profiles=1, name="Third relay")
    campaign_stop(campaign=first, actor=marketer)
    campaign_stop(campaign=second, actor=marketer)

    for _ in range(4):  # ticks, each with its time spent after one batch
        completion.cancel_unsent_of_stopped_runs(seconds=0)

    assert Delivery.objects.filter(run_id__in=[first_run, second_run]).exclude(status="cancelled").count() == 0
    # Done with, though another campaign still has messages to send.
    assert list(Run.objects.filter(pk__in=[first_run, second_run]).values_list("heartbeat_at", flat=True)) == [
        None,
        None,
    ]


@pytest.mark.django_db(transaction=True)
def test_cancelling_a_large_stop_is_spread_over_ticks_and_leaves_other_runs_alone(
    redis, smtp_server, marketer, everyone
):
    stopped, stopped_run = planned_run(marketer, everyone, smtp_server.port, profiles=30)
    other, other_run = planned_run(marketer, everyone, smtp_server.port, profiles=30, name="Other relay")
    campaign_stop(campaign=stopped, actor=marketer)

    assert completion.cancel_unsent_of_stopped_runs(batch=10, seconds=0) == 10  # one batch, then the time is up
    assert Run.objects.get(pk=stopped_run).heartbeat_at is not None  # more to do on the next tick
    assert completion.cancel_unsent_of_stopped_runs(batch=10) == 20
    assert Delivery.objects.filter(run_id=stopped_run, status="cancelled").count() == 30
    assert not Delivery.objects.filter(run_id=other_run, status="cancelled").exists()


@pytest.mark.django_db(transaction=True)
def test_pause_then_resume_sends_only_what_was_never_sent(redis, smtp_server, marketer, everyone):
    campaign, run_id = planned_run(marketer, everyone, smtp_server.port, profiles=15)
    token, rows = claiming.claim_slice(run_id=run_id, limit=5, now=timezone.now())
    sending.send_slice(run=Run.objects.get(pk=run_id), token=token, deliveries=rows)

    campaign_pause(campaign=campaign, actor=marketer)
    run_burst_worker()
    assert len(smtp_server.messages) == 5

    campaign_activate(campaign=campaign, actor=marketer)
    scheduler_tick()
    run_burst_worker()
    assert sorted(m["rcpt_tos"][0] for m in smtp_server.messages) == sorted(
        Profile.objects.values_list("email", flat=True)
    )
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_stalled_run_is_redispatched_from_the_ledger_after_redis_lost_its_queues(
    redis, smtp_server, marketer, everyone
):
    make_profiles(8)
    campaign = make_campaign(marketer, make_email_configuration(port=smtp_server.port), everyone)
    campaign_activate(campaign=campaign, actor=marketer)
    scheduler_tick()
    run_burst_worker()  # plans and sends
    assert len(smtp_server.messages) == 8

    campaign2 = make_campaign(marketer, make_email_configuration(port=smtp_server.port, name="Second"), everyone)
    campaign_activate(campaign=campaign2, actor=marketer)
    scheduler_tick()
    redis.flushdb()  # the queued plan_run job is lost with Redis
    scheduler_tick(now=timezone.now() + timedelta(minutes=5))
    run_burst_worker()

    assert len(smtp_server.messages) == 16
    assert Run.objects.get(campaign=campaign2).state == Run.State.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_rate_limited_job_reenqueues_itself_instead_of_sleeping(redis, smtp_server, marketer, everyone):
    from rq.registry import ScheduledJobRegistry

    from config.queues import CAMPAIGNS

    make_profiles(12)
    # One token now, the next in five seconds: however slow the machine, the job meets an empty bucket.
    configuration = make_email_configuration(port=smtp_server.port, rate_per_second=0.2)
    campaign = make_campaign(marketer, configuration, everyone)
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    redis.flushdb()  # drop the dispatched jobs: this test drives one job by hand

    sending.send_run(run_id=run_id)

    # The bucket's one token went out; the job then left a scheduled successor and returned.
    assert len(smtp_server.messages) == 1
    assert Delivery.objects.filter(run_id=run_id, status="pending").count() == 11
    scheduled = ScheduledJobRegistry(CAMPAIGNS, connection=redis)
    assert scheduled.count == 1


@pytest.mark.django_db(transaction=True)
def test_unknown_consent_follows_the_channel_setting(redis, smtp_server, marketer, everyone):
    from audiences.models import ChannelConsentSetting

    known, unknown = make_profiles(2)
    Consent.objects.create(profile=known, channel="email", state=Consent.State.OPTED_IN)
    ChannelConsentSetting.objects.create(channel="email", unknown_allows_marketing=False)

    campaign, run_id = planned_run(marketer, everyone, smtp_server.port, profiles=0)

    excluded = Delivery.objects.get(run_id=run_id, status="excluded")
    assert (excluded.profile_id, excluded.reason) == (unknown.pk, "no_consent")
    assert Delivery.objects.get(run_id=run_id, status="pending").profile_id == known.pk


@pytest.mark.django_db(transaction=True)
def test_push_planning_snapshots_long_tokens_without_a_query_per_profile(
    redis, marketer, everyone, django_assert_max_num_queries
):
    from audiences.models import PushToken
    from channels.models import ChannelConfiguration

    people = make_profiles(14)
    for person in people:
        token = f"{person.pk}:" + "t" * 1500  # FCM registration tokens run to hundreds of characters
        PushToken.objects.create(profile=person, token=token, token_hash=token[:64], platform="android", app="shop")
    configuration = ChannelConfiguration.objects.create(name="Push", channel="push")
    campaign = make_campaign(marketer, configuration, everyone)
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())

    with django_assert_max_num_queries(40):  # two chunks of 7: a fixed number of queries per chunk
        planning.plan_run(run_id=run_id)

    addresses = set(Delivery.objects.filter(run_id=run_id).values_list("address", flat=True))
    assert addresses == {f"{person.pk}:" + "t" * 1500 for person in people}


@pytest.mark.django_db(transaction=True)
def test_a_run_whose_audience_rule_no_longer_validates_fails_with_the_reason(redis, marketer, smtp_server):
    from audiences.models import AttributeDefinition

    make_profiles(3)
    AttributeDefinition.objects.create(name="plan", type="string")
    audience = Audience.objects.create(
        name="Pro", kind=Audience.Kind.RULE, rule={"attribute": "plan", "op": "equals", "value": "pro"}
    )
    campaign = make_campaign(marketer, make_email_configuration(port=smtp_server.port), audience)
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    AttributeDefinition.objects.filter(name="plan").delete()  # the schema changed under the campaign

    planning.plan_run(run_id=run_id)

    run = Run.objects.get(pk=run_id)
    assert run.state == Run.State.FAILED and "plan" in run.error
    assert not Delivery.objects.filter(run_id=run_id).exists()


def test_scheduled_sends_never_use_the_transactional_queue():
    from config import queues

    def campaign(kind, category):
        return Campaign(kind=kind, category=category)

    assert dispatch.queue_for(campaign("scheduled", "transactional")) == queues.CAMPAIGNS
    assert dispatch.queue_for(campaign("scheduled", "marketing")) == queues.CAMPAIGNS
    assert dispatch.queue_for(campaign("api_triggered", "transactional")) == queues.TRANSACTIONAL
    assert dispatch.queue_for(campaign("api_triggered", "marketing")) == queues.TRIGGERED


@pytest.mark.django_db(transaction=True)
def test_a_dead_workers_in_flight_transactional_rows_are_retried_marketing_ones_are_not(
    redis, marketer, everyone, smtp_server
):
    make_profiles(2)
    configuration = make_email_configuration(port=smtp_server.port)
    runs = {}
    for category in ("marketing", "transactional"):
        campaign = make_campaign(marketer, configuration, everyone, category=category)
        campaign_activate(campaign=campaign, actor=marketer)
        [runs[category]] = scheduler.start_due_runs(now=timezone.now())
        planning.plan_run(run_id=runs[category])
        token, _ = claiming.claim_slice(run_id=runs[category], limit=2, now=timezone.now())
        Delivery.objects.filter(claim_token=token).update(status=Delivery.Status.IN_FLIGHT)

    recovery.release_stale_claims(now=timezone.now() + timedelta(hours=1))

    statuses = {
        category: set(Delivery.objects.filter(run_id=run_id).values_list("status", flat=True))
        for category, run_id in runs.items()
    }
    assert statuses == {"marketing": {"unknown"}, "transactional": {"pending"}}
