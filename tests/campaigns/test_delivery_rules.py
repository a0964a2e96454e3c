"""The delivery rules (campaigns.rules): each rule alone, the pipeline they form at planning and at sending, and a
frequency cap holding across two campaigns planning and sending at once in real worker processes."""

import itertools
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import django_rq
import pytest
from django.db import transaction
from django.utils import timezone

from audiences.models import Consent, Profile
from campaigns import rules
from campaigns.engine import claiming, planning, scheduler, sending
from campaigns.models import Campaign, CampaignVersion, Delivery, FrequencyCap, QuietHours, Run
from campaigns.rules.consent import ConsentAndSuppression
from campaigns.rules.frequency import FrequencyCapRule
from campaigns.rules.local_time import LocalTime
from campaigns.rules.quiet_hours import QuietHoursRule
from campaigns.services.lifecycle import campaign_activate
from channels.models import Suppression
from config.queues import CAMPAIGNS
from config.scheduler import scheduler_tick
from tests.campaigns.test_execution import make_campaign, make_profiles
from tests.conftest import make_email_configuration
from tests.processes import wait_for, worker_pool
from tests.smtp_servers import RecordingSMTPServer

NOW = datetime(2026, 6, 10, 12, 0, tzinfo=UTC)  # 14:00 in Paris, 08:00 in New York


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def batch(campaign, *, stage=rules.Stage.PLAN, now=NOW, channel="email", occurrence=None) -> rules.Batch:
    return rules.Batch(campaign=campaign, channel=channel, stage=stage, now=now, local_occurrence=occurrence)


def candidate(profile=None, *, due_at=NOW, address="someone@example.com", zone="", delivery_id=None):
    return rules.Candidate(
        profile_id=profile.pk if profile else None,
        address=address,
        due_at=due_at,
        timezone=zone,
        delivery_id=delivery_id,
    )


@pytest.fixture
def configuration(db):
    return make_email_configuration(port=1)


@pytest.fixture
def marketing(marketer, configuration, everyone):
    return make_campaign(marketer, configuration, everyone, timezone_name="Europe/Paris")


@pytest.fixture
def transactional(marketer, configuration, everyone):
    return make_campaign(marketer, configuration, everyone, category="transactional", timezone_name="Europe/Paris")


def ledger_row(campaign, profile, *, status, at, channel="email") -> Delivery:
    """A message of `campaign` to `profile` in the ledger: sent (or claimed, pending) at `at`."""
    run = Run.objects.create(campaign=campaign, occurrence=f"history {next(_runs)}", version=campaign.latest_version())
    return Delivery.objects.create(
        run=run,
        version=run.version,
        profile=profile,
        channel=channel,
        channel_configuration=campaign.channel_configuration,
        trigger_request=None,
        address=profile.email,
        due_at=at,
        status=status,
        claimed_at=at if status != Delivery.Status.PENDING else None,
        sent_at=at if status == Delivery.Status.SENT else None,
    )


_runs = itertools.count()


def cap(marketer, limit=1, period="day", channel="") -> FrequencyCap:
    return FrequencyCap.objects.create(
        name=f"{limit} a {period} {channel}", limit=limit, period=period, channel=channel, created_by=marketer
    )


# --- Each rule alone ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_consent_and_suppression_exclude_with_their_reason(marketing):
    fine, opted_out, suppressed = make_profiles(3)
    Consent.objects.create(profile=opted_out, channel="email", state=Consent.State.OPTED_OUT)
    Suppression.objects.create(channel="email", address=suppressed.email, reason=Suppression.Reason.HARD_BOUNCE)
    people = [candidate(p, address=p.email) for p in (fine, opted_out, suppressed)] + [candidate(address="")]

    ConsentAndSuppression().decide(batch(marketing), people)

    assert [c.reason for c in people] == ["", "no_consent", "suppressed", "no_address"]


@pytest.mark.django_db
def test_local_time_sends_the_occurrence_at_its_wall_time_in_each_profiles_zone(marketing):
    people = [
        candidate(zone="Europe/Paris"),
        candidate(zone="America/New_York"),
        candidate(zone=""),
        candidate(zone="Mars/Olympus"),
    ]

    LocalTime().decide(batch(marketing, now=utc(2026, 6, 10, 0, 0), occurrence=datetime(2026, 6, 10, 9, 0)), people)

    paris, new_york, none, unknown = (c.due_at for c in people)
    assert paris == utc(2026, 6, 10, 7, 0)  # 09:00 CEST
    assert new_york == utc(2026, 6, 10, 13, 0)  # 09:00 EDT
    assert none == unknown == paris  # no zone, or one nobody knows: the campaign's (Paris)


@pytest.mark.django_db
def test_local_time_across_the_daylight_saving_changes(marketing):
    spring = [candidate(zone="Europe/Paris"), candidate(zone="America/New_York")]
    LocalTime().decide(batch(marketing, now=utc(2026, 3, 28), occurrence=datetime(2026, 3, 29, 2, 30)), spring)
    # 02:30 does not exist in Paris that night: it moves on by the hour skipped (03:30 CEST). New York changed on
    # 8 March: 02:30 EDT.
    assert [c.due_at for c in spring] == [utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 6, 30)]

    autumn = [candidate(zone="Europe/Paris"), candidate(zone="America/New_York")]
    LocalTime().decide(batch(marketing, now=utc(2026, 10, 24), occurrence=datetime(2026, 10, 25, 2, 30)), autumn)
    # 02:30 happens twice in Paris that night: the first (CEST). New York still on EDT until 1 November.
    assert [c.due_at for c in autumn] == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 6, 30)]

    new_york_autumn = [candidate(zone="America/New_York")]
    LocalTime().decide(
        batch(marketing, now=utc(2026, 10, 31), occurrence=datetime(2026, 11, 1, 1, 30)), new_york_autumn
    )
    assert new_york_autumn[0].due_at == utc(2026, 11, 1, 5, 30)  # the first 01:30, EDT


@pytest.mark.django_db
def test_a_local_time_just_passed_is_sent_at_once_and_one_long_past_is_excluded(marketing):
    tokyo, moscow, london = people = [candidate(zone=zone) for zone in ("Asia/Tokyo", "Europe/Moscow", "Europe/London")]
    now = utc(2026, 6, 10, 6, 30)  # 15:30 in Tokyo, 09:30 in Moscow, 07:30 in London
    LocalTime().decide(batch(marketing, now=now, occurrence=datetime(2026, 6, 10, 9, 0)), people)
    assert (tokyo.reason, moscow.reason, london.reason) == ("local_time_passed", "", "")
    assert (moscow.due_at, london.due_at) == (now, utc(2026, 6, 10, 8, 0))  # 30 minutes late: at once


@pytest.mark.django_db
def test_quiet_hours_delay_a_message_to_the_end_of_the_window_in_the_profiles_zone(marketing, marketer):
    QuietHours.objects.create(channel="email", start=time(21), end=time(8), created_by=marketer)
    late_paris = candidate(zone="Europe/Paris", due_at=utc(2026, 6, 10, 21, 30))  # 23:30 CEST
    early_paris = candidate(zone="Europe/Paris", due_at=utc(2026, 6, 10, 4, 0))  # 06:00 CEST
    new_york = candidate(zone="America/New_York", due_at=utc(2026, 6, 10, 21, 30))  # 17:30 EDT: outside
    people = [late_paris, early_paris, new_york]

    QuietHoursRule().decide(batch(marketing), people)

    assert late_paris.due_at == utc(2026, 6, 11, 6, 0)  # 08:00 CEST the next morning
    assert early_paris.due_at == utc(2026, 6, 10, 6, 0)  # 08:00 CEST the same morning
    assert new_york.due_at == utc(2026, 6, 10, 21, 30)
    assert [c.reason for c in people] == ["", "", ""]


@pytest.mark.django_db
def test_quiet_hours_that_discard_exclude_with_the_reason(marketing, marketer):
    QuietHours.objects.create(channel="email", start=time(12), end=time(14), action="discard", created_by=marketer)
    inside = candidate(zone="Europe/Paris", due_at=utc(2026, 6, 10, 10, 30))  # 12:30 CEST
    at_the_end = candidate(zone="Europe/Paris", due_at=utc(2026, 6, 10, 12, 0))  # 14:00 CEST: open again
    people = [inside, at_the_end]

    QuietHoursRule().decide(batch(marketing), people)

    assert [c.reason for c in people] == ["quiet_hours", ""]


@pytest.mark.django_db
def test_quiet_hours_of_another_channel_or_switched_off_change_nothing(marketing, marketer):
    QuietHours.objects.create(channel="sms", start=time(0), end=time(23, 59), action="discard", created_by=marketer)
    QuietHours.objects.create(
        channel="email", start=time(0), end=time(23, 59), action="discard", is_active=False, created_by=marketer
    )
    [person] = people = [candidate(zone="Europe/Paris")]
    QuietHoursRule().decide(batch(marketing), people)
    assert (person.reason, person.due_at) == ("", NOW)


@pytest.mark.django_db
def test_a_frequency_cap_counts_the_marketing_messages_of_every_campaign_in_its_period(
    marketing, transactional, marketer
):
    cap(marketer, limit=2, period="day")
    busy, rested, served, other = make_profiles(4)
    ledger_row(marketing, busy, status="sent", at=NOW - timedelta(hours=2))
    ledger_row(marketing, busy, status="delivered", at=NOW - timedelta(hours=20), channel="sms")
    ledger_row(marketing, rested, status="sent", at=NOW - timedelta(hours=2))
    ledger_row(marketing, rested, status="sent", at=NOW - timedelta(hours=25))  # yesterday's: out of the day
    ledger_row(transactional, served, status="sent", at=NOW - timedelta(hours=1))  # transactional: not counted
    ledger_row(transactional, served, status="sent", at=NOW - timedelta(hours=2))
    ledger_row(marketing, other, status="failed", at=NOW - timedelta(hours=1))  # never reached them
    ledger_row(marketing, other, status="excluded", at=NOW - timedelta(hours=1))
    people = [candidate(p) for p in (busy, rested, served, other)]

    FrequencyCapRule().decide(batch(marketing), people)

    assert [c.reason for c in people] == ["frequency_cap", "", "", ""]


@pytest.mark.django_db
def test_a_cap_on_one_channel_counts_that_channel_only(marketing, marketer):
    cap(marketer, limit=1, period="week", channel="email")
    texted, mailed = make_profiles(2)
    ledger_row(marketing, texted, status="sent", at=NOW - timedelta(days=1), channel="sms")
    ledger_row(marketing, mailed, status="sent", at=NOW - timedelta(days=6))
    people = [candidate(texted), candidate(mailed)]

    FrequencyCapRule().decide(batch(marketing), people)
    assert [c.reason for c in people] == ["", "frequency_cap"]

    sms_only = [candidate(mailed)]
    FrequencyCapRule().decide(batch(marketing, channel="sms"), sms_only)  # the email cap does not apply to SMS
    assert sms_only[0].reason == ""


@pytest.mark.django_db
def test_at_planning_another_campaigns_planned_message_takes_the_slot(marketing, marketer):
    cap(marketer, limit=1, period="hour")
    planned_elsewhere, free = make_profiles(2)
    ledger_row(marketing, planned_elsewhere, status="pending", at=NOW - timedelta(minutes=5))
    people = [candidate(planned_elsewhere), candidate(free)]

    FrequencyCapRule().decide(batch(marketing), people)

    assert [c.reason for c in people] == ["frequency_cap", ""]


@pytest.mark.django_db(transaction=True)
def test_when_sending_a_claimed_message_counts_but_a_pending_one_does_not(marketing, marketer):
    cap(marketer, limit=1, period="hour")
    claimed_elsewhere, pending_elsewhere = make_profiles(2)
    ledger_row(marketing, claimed_elsewhere, status="claimed", at=NOW - timedelta(seconds=1))
    ledger_row(marketing, pending_elsewhere, status="pending", at=NOW - timedelta(minutes=5))
    mine = [ledger_row(marketing, p, status="claimed", at=NOW) for p in (claimed_elsewhere, pending_elsewhere)]
    people = [candidate(d.profile, delivery_id=d.pk) for d in mine]  # its own claim does not count against it

    with transaction.atomic():
        FrequencyCapRule().decide(batch(marketing, stage=rules.Stage.SEND, now=NOW + timedelta(seconds=1)), people)

    assert [c.reason for c in people] == ["frequency_cap", ""]


@pytest.mark.django_db(transaction=True)
def test_the_send_stage_cap_check_refuses_to_run_outside_a_transaction(marketing, marketer):
    cap(marketer)
    [person] = make_profiles(1)
    with pytest.raises(RuntimeError, match="transaction"):
        FrequencyCapRule().decide(batch(marketing, stage=rules.Stage.SEND), [candidate(person)])


# --- The pipeline ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_pipeline_caps_at_the_time_quiet_hours_moved_the_message_to(marketing, marketer):
    """Quiet hours move a 23:00 message to 08:00; the day's cap counts back from 08:00, so last evening's message
    at 19:00 (13 hours earlier) still fills the day's slot, and one at 07:00 yesterday does not."""
    QuietHours.objects.create(channel="email", start=time(21), end=time(8), created_by=marketer)
    cap(marketer, limit=1, period="day")
    evening, morning = make_profiles(2, start=10)
    for person in (evening, morning):
        person.timezone = "Europe/Paris"
    ledger_row(marketing, evening, status="sent", at=utc(2026, 6, 10, 17, 0))  # 19:00 CEST
    ledger_row(marketing, morning, status="sent", at=utc(2026, 6, 10, 5, 0))  # 07:00 CEST
    night = utc(2026, 6, 10, 21, 0)  # 23:00 CEST
    people = [candidate(p, address=p.email, zone="Europe/Paris", due_at=night) for p in (evening, morning)]

    rules.decide(batch(marketing, now=night), people)

    assert [(c.reason, c.due_at) for c in people] == [
        ("frequency_cap", utc(2026, 6, 11, 6, 0)),
        ("", utc(2026, 6, 11, 6, 0)),
    ]


@pytest.mark.django_db
def test_a_message_the_pipeline_excluded_early_is_not_counted_by_the_cap(marketing, marketer):
    cap(marketer, limit=1, period="day")
    [person] = make_profiles(1)
    Consent.objects.create(profile=person, channel="email", state=Consent.State.OPTED_OUT)
    twice = [candidate(person, address=person.email), candidate(person, address=person.email)]

    rules.decide(batch(marketing), twice)

    assert [c.reason for c in twice] == ["no_consent", "no_consent"]


@pytest.mark.django_db
def test_transactional_campaigns_skip_caps_and_quiet_hours_but_not_suppression(transactional, marketer):
    QuietHours.objects.create(channel="email", start=time(0), end=time(23, 59), action="discard", created_by=marketer)
    cap(marketer, limit=1, period="month")
    reset, suppressed = make_profiles(2)
    ledger_row(transactional, reset, status="sent", at=NOW - timedelta(minutes=1))
    Suppression.objects.create(channel="email", address=suppressed.email, reason=Suppression.Reason.COMPLAINT)
    people = [candidate(p, address=p.email, zone="Europe/Paris") for p in (reset, suppressed)]

    rules.decide(batch(transactional), people)

    assert [(c.reason, c.due_at) for c in people] == [("", NOW), ("suppressed", NOW)]


# --- Planning and sending ----------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_planning_a_run_in_profiles_zones_writes_each_ones_local_time(redis, marketer, configuration, everyone):
    paris = Profile.objects.create(email="paris@example.com", timezone="Europe/Paris")
    new_york = Profile.objects.create(email="ny@example.com", timezone="America/New_York")
    nowhere = Profile.objects.create(email="nowhere@example.com", timezone="")
    campaign = make_campaign(marketer, configuration, everyone, timezone_name="Europe/Paris")
    Campaign.objects.filter(pk=campaign.pk).update(in_profile_timezone=True, status=Campaign.Status.ACTIVE)
    CampaignVersion.objects.filter(campaign=campaign).update(in_profile_timezone=True)
    run = Run.objects.create(
        campaign=campaign,
        version=campaign.latest_version(),
        occurrence="2099-03-29T02:30:00",
        heartbeat_at=timezone.now(),
    )

    planning.plan_run(run_id=run.pk)

    due = dict(Delivery.objects.filter(run=run).values_list("profile__email", "due_at"))
    assert due == {
        paris.email: utc(2099, 3, 29, 1, 30),  # the night Paris skips 02:00-03:00: 03:30 CEST
        new_york.email: utc(2099, 3, 29, 6, 30),  # 02:30 EDT
        nowhere.email: utc(2099, 3, 29, 1, 30),  # the campaign's zone
    }
    assert Run.objects.get(pk=run.pk).state == Run.State.SENDING


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("action", ["delay", "discard"])
def test_quiet_hours_that_began_after_planning_hold_or_discard_the_claimed_slice(
    redis, marketer, everyone, smtp_server, action
):
    """Planned before the window opened (a large run still sending at 21:00, a backlog resumed at night): the check
    when the slice is claimed puts the messages back, due when the window closes, or discards them."""
    paris, new_york = (
        Profile.objects.create(email="p@example.com", timezone="Europe/Paris"),
        Profile.objects.create(email="n@example.com", timezone="America/New_York"),
    )
    configuration = make_email_configuration(port=smtp_server.port, name="Sink")
    campaign = make_campaign(marketer, configuration, everyone)
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    # A window holding Paris's present moment and not New York's (six hours behind).
    paris_now = timezone.now().astimezone(ZoneInfo("Europe/Paris"))
    start, end = (paris_now - timedelta(hours=1)).time(), (paris_now + timedelta(hours=2)).time()
    QuietHours.objects.create(channel="email", start=start, end=end, action=action, created_by=marketer)

    run = Run.objects.select_related("campaign__channel_configuration", "version").get(pk=run_id)
    token, deliveries = claiming.claim_slice(run_id=run_id, limit=10, now=timezone.now())
    sending.send_slice(run=run, token=token, deliveries=deliveries)

    rows = {d.profile_id: d for d in Delivery.objects.filter(run_id=run_id)}
    assert [rcpt for message in smtp_server.messages for rcpt in message["rcpt_tos"]] == [new_york.email]
    assert rows[new_york.pk].status == "sent"
    held = rows[paris.pk]
    if action == "discard":
        assert (held.status, held.reason) == ("excluded", "quiet_hours")
    else:
        assert (held.status, held.claim_token) == ("pending", None)
        closes = held.due_at.astimezone(ZoneInfo("Europe/Paris"))
        assert closes.time().replace(microsecond=0) == end.replace(microsecond=0)
        assert timedelta(hours=1) < held.due_at - timezone.now() <= timedelta(hours=2)


@pytest.mark.django_db(transaction=True)
def test_a_claimed_slice_over_the_cap_is_excluded_at_sending(redis, marketer, configuration, everyone, smtp_server):
    """Planned before the cap existed (or before another campaign took the slot): the check at claim time stops it."""
    [person] = make_profiles(1)
    configuration = make_email_configuration(port=smtp_server.port, name="Sink")
    first = make_campaign(marketer, configuration, everyone)
    ledger_row(first, person, status="sent", at=timezone.now() - timedelta(minutes=10))
    second = make_campaign(marketer, configuration, everyone)
    campaign_activate(campaign=second, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    assert Delivery.objects.get(run_id=run_id).status == "pending"
    cap(marketer, limit=1, period="hour")

    run = Run.objects.select_related("campaign__channel_configuration", "version").get(pk=run_id)
    token, deliveries = claiming.claim_slice(run_id=run_id, limit=10, now=timezone.now())
    sending.send_slice(run=run, token=token, deliveries=deliveries)

    assert Delivery.objects.filter(run_id=run_id).values_list("status", "reason").get() == ("excluded", "frequency_cap")
    assert smtp_server.messages == []


# --- Real processes ----------------------------------------------------------------------------------------------


@pytest.mark.both_databases
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("cap_from", ["planning", "sending"])
def test_a_cap_holds_across_two_campaigns_planning_and_sending_at_once(redis, marketer, everyone, cap_from):
    """Two marketing campaigns to the same 60 people, each run planned and sent by worker processes at the same
    time, one message a day allowed: everyone receives exactly one. With the cap set after both runs were planned,
    only the check at claim time stands between them and a second message."""
    relay = RecordingSMTPServer().start()
    try:
        make_profiles(60, start=100)
        configuration = make_email_configuration(port=relay.port, name="Relay")
        campaigns = [make_campaign(marketer, configuration, everyone) for _ in range(2)]
        if cap_from == "planning":
            cap(marketer, limit=1, period="day")
        for campaign in campaigns:
            campaign_activate(campaign=campaign, actor=marketer)
        run_ids = scheduler.start_due_runs(now=timezone.now())
        assert len(run_ids) == 2
        redis.flushdb()
        queue = django_rq.get_queue(CAMPAIGNS)
        if cap_from == "sending":
            for run_id in run_ids:
                planning.plan_run(run_id=run_id)  # both sending: jobs queued below
            cap(marketer, limit=1, period="day")
            Run.objects.filter(pk__in=run_ids).update(heartbeat_at=None)
            for run_id in run_ids:
                for _ in range(2):
                    queue.enqueue("campaigns.jobs.send_run", run_id)
        else:
            for run_id in run_ids:
                queue.enqueue("campaigns.jobs.plan_run", run_id)

        def complete():
            scheduler_tick(now=timezone.now())
            return Run.objects.filter(pk__in=run_ids, state=Run.State.COMPLETE).count() == 2

        with worker_pool(CAMPAIGNS, workers=3, env={"TEST_CAMPAIGNS_SEND_SLICE": "7"}, test_database=True):
            wait_for(complete, 60, "both runs complete", every=0.3)
    finally:
        relay.stop()

    received = Counter(rcpt for message in relay.messages for rcpt in message["rcpt_tos"])
    assert len(received) == 60 and set(received.values()) == {1}, received.most_common(3)
    rows = Delivery.objects.filter(run_id__in=run_ids)
    assert Counter(rows.values_list("status", "reason")) == {("sent", ""): 60, ("excluded", "frequency_cap"): 60}
