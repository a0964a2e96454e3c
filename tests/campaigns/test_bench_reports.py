"""`manage.py bench_reports`: it never empties the settings' database, and the data it measures is what it says it is
(a run's mix of outcomes and engagement as the product would record them, tracking tokens the real views accept).
Its figures are measured by the command, never asserted here."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.utils import timezone

from campaigns import tracking
from campaigns.management.commands import _bench_reports_data as data
from campaigns.management.commands import _bench_reports_tracking as windows
from campaigns.models import Campaign, Delivery, Engagement

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="the generator's SQL is PostgreSQL's")
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Safari/605.1.15"


@pytest.mark.django_db
def test_refuses_to_run_in_the_database_the_settings_use():
    made = data.make_campaign(name="Kept", weekly=False)

    with pytest.raises(CommandError, match="for the benchmark's own process"):
        call_command("bench_reports", "--in-bench-database", "--reports")

    assert Campaign.objects.filter(pk=made.campaign_id).exists()


@pytest.fixture
def generated(db):
    """A complete weekly run of 4,000 messages with engagement, written as the benchmark writes it."""
    data.ensure_recipients(4000)
    made = data.make_campaign(name="Newsletter", weekly=True)
    run = data.make_run(made, occurrence=timezone.now() - timedelta(days=2), sending=timedelta(hours=2))
    filled = data.fill_run(made, run, count=4000, seed=run.pk, engagement=True)
    return made, run, filled


@postgresql_only
def test_a_generated_run_has_the_outcomes_it_claims(generated):
    _, run, filled = generated
    deliveries = Delivery.objects.filter(run=run)

    assert filled["deliveries"] == deliveries.count() == 4000
    assert deliveries.values("profile_id").distinct().count() == 4000
    share = {status: deliveries.filter(status=status).count() / 4000 for status, _ in Delivery.Status.choices}
    assert 0.60 < share["sent"] < 0.85 and 0.15 < share["delivered"] < 0.25
    assert 0.02 < share["excluded"] < 0.06 and 0.005 < share["failed"] < 0.02 and 0.008 < share["bounced"] < 0.025
    assert not deliveries.filter(status__in=["pending", "claimed", "in_flight"]).exists()
    excluded = set(deliveries.filter(status="excluded").values_list("reason", flat=True))
    assert {"no_consent", "suppressed", "frequency_cap"} <= excluded
    assert not deliveries.filter(status="excluded", reason="").exists()
    assert not deliveries.filter(status="excluded", sent_at__isnull=False).exists()
    assert not deliveries.filter(status__in=["sent", "delivered"], sent_at__isnull=True).exists()
    domains = {address.split("@")[1] for address in deliveries.exclude(address="").values_list("address", flat=True)}
    assert len(domains) > 50


@postgresql_only
def test_generated_engagement_is_what_tracking_would_have_recorded(generated):
    _, run, _ = generated
    engagement = Engagement.objects.filter(delivery__run=run)
    opened = set(engagement.filter(kind="open", machine=False).values_list("delivery_id", flat=True))
    clicked = set(engagement.filter(kind="click", machine=False).values_list("delivery_id", flat=True))

    assert 0.15 < len(opened) / 4000 < 0.25
    assert 0.03 < len(clicked) / 4000 < 0.09
    assert clicked <= opened  # people click in messages they opened
    assert engagement.filter(count__gt=1).exists()
    assert not engagement.filter(delivery__status__in=["excluded", "failed", "bounced"]).exists()
    assert not engagement.filter(kind="click").exclude(link__lt=data.LINKS).exists()
    # As campaigns.tracking tells them apart: machines within seconds of sending, people later.
    machine_seconds = tracking.MACHINE_SECONDS
    for row in engagement.select_related("delivery"):
        # An `unknown` message has no sent_at: it went out at its first attempt (campaigns.views.tracking).
        after = (row.first_at - (row.delivery.sent_at or row.delivery.first_attempt_at)).total_seconds()
        assert (after < machine_seconds) if row.machine else (after >= 60)
        assert row.last_at >= row.first_at


@postgresql_only
def test_token_lists_name_every_message_and_the_views_accept_them(generated, tmp_path):
    _, run, _ = generated

    made = windows.write_token_lists(run.pk, tmp_path, repeat_share=0.1)

    opens = (tmp_path / "open.txt").read_text().split()
    clicks = (tmp_path / "click.txt").read_text().split()
    ids = set(Delivery.objects.filter(run=run, status__in=data.ENGAGED).values_list("id", flat=True))
    assert {tracking.read_open_token(path.split("/")[3]).delivery_id for path in opens} == ids
    named = [tracking.read_click_token(path.split("/")[3]) for path in clicks]
    assert {token.delivery_id for token in named} == ids
    assert {token.link for token in named} == set(range(data.LINKS))
    for kind, paths in (("open", opens), ("click", clicks)):
        assert made[kind] == {"paths": len(paths), "distinct": len(set(paths))}
        assert 0.05 < (len(paths) - len(set(paths))) / len(paths) < 0.15
    client = Client(HTTP_USER_AGENT=BROWSER)
    before = Engagement.objects.filter(delivery__run=run, machine=False).values_list("kind", "count")
    counts_before = {kind: sum(count for k, count in before if k == kind) for kind in ("open", "click")}

    opened = client.get(opens[0])
    redirected = client.get(clicks[0])

    assert opened.status_code == 200 and redirected.status_code == 302
    assert urlsplit(redirected["Location"]).hostname in ("shop.example", "blog.example")
    after = Engagement.objects.filter(delivery__run=run, machine=False).values_list("kind", "count")
    counts_after = {kind: sum(count for k, count in after if k == kind) for kind in ("open", "click")}
    assert counts_after == {"open": counts_before["open"] + 1, "click": counts_before["click"] + 1}
