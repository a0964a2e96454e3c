"""What each recipient receives, checked where it arrives (the relay, the provider, the inbox): content naming
the campaign and the recipient's own unsubscribe link, the campaign a webhook says a message belongs to, the
send-time re-check of suppressions whatever the case of an address, and an in-app campaign (a channel without
a retry window) that completes."""

from collections import Counter

import pytest
from django.utils import timezone

from audiences.models import Profile
from campaigns.engine import planning, scheduler, sending
from campaigns.models import Campaign, Delivery, Run
from campaigns.services.lifecycle import Content, campaign_activate
from channels.models import InboxMessage, Suppression
from channels.services.suppression import suppress_addresses
from channels.unsubscribe import unsubscribe_url
from config.scheduler import scheduler_tick
from tests.campaigns.test_execution import make_campaign, make_profiles
from tests.channels.conftest import make_configuration
from tests.channels.http_servers import ProviderServer, Reply
from tests.conftest import make_email_configuration, run_burst_worker


def started(marketer, configuration, audience, **kwargs) -> tuple[Campaign, int]:
    """A campaign activated, its run started and planned: its send jobs wait in the queue."""
    campaign = make_campaign(marketer, configuration, audience, **kwargs)
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    return campaign, run_id


@pytest.mark.django_db(transaction=True)
def test_content_can_name_the_campaign_and_each_recipients_own_unsubscribe_link(redis, smtp_server, marketer, everyone):
    people = make_profiles(2)
    content = Content(
        subject="{{ campaign.name }}: news for {{ profile.first_name }}",
        html_body='<p>{{ campaign.name }}</p><a href="{{ unsubscribe_url }}">Unsubscribe</a>',
        text_body="{{ campaign.name }} is on. Unsubscribe: {{ unsubscribe_url }}",
    )
    # The content shows the link itself: a relay without a footer.
    relay = make_email_configuration(port=smtp_server.port, footer_html="", footer_text="")
    campaign, run_id = started(marketer, relay, everyone, content=content)

    sending.send_run(run_id=run_id)

    received = smtp_server.by_recipient()
    assert sorted(received) == sorted(p.email for p in people)
    for person in people:
        [message] = received[person.email]
        delivery = Delivery.objects.get(run_id=run_id, profile=person)
        link = unsubscribe_url(profile_id=person.pk, channel="email", delivery_id=delivery.pk)
        assert message["Subject"] == f"{campaign.name}: news for {person.attributes['first_name']}"
        assert message.get_body(("plain",)).get_content().strip() == f"{campaign.name} is on. Unsubscribe: {link}"
        assert f'<p>{campaign.name}</p><a href="{link}">' in message.get_body(("html",)).get_content()


@pytest.mark.django_db(transaction=True)
def test_a_webhook_message_names_the_campaign_it_belongs_to(redis, marketer, everyone):
    people = Profile.objects.bulk_create(Profile(attributes={"first_name": f"N{i}"}) for i in range(2))
    receiver = ProviderServer().start()
    receiver.script = lambda request: Reply(202, {"id": "r1"})
    try:
        configuration = make_configuration(
            "webhook", url=f"{receiver.url}/in", signing_secret="webhook-signing-secret-1"
        )
        campaign, run_id = started(marketer, configuration, everyone)
        sending.send_run(run_id=run_id)
    finally:
        receiver.stop()

    payloads = [request.json for request in receiver.requests]
    assert sorted(payload["profile_id"] for payload in payloads) == sorted(p.pk for p in people)
    assert {payload["campaign"] for payload in payloads} == {campaign.pk}
    assert Run.objects.get(pk=run_id).state == Run.State.COMPLETE


@pytest.mark.django_db(transaction=True)
def test_an_address_suppressed_after_planning_is_not_mailed_whatever_its_case(redis, smtp_server, marketer, everyone):
    # Profiles keep the case their owner typed; the suppression list holds addresses lower-cased.
    kept = Profile.objects.create(email="Ann.Smith@example.com", attributes={"first_name": "Ann"})
    dead = Profile.objects.create(email="Bob.Jones@Example.COM", attributes={"first_name": "Bob"})
    _, run_id = started(marketer, make_email_configuration(port=smtp_server.port), everyone)
    # Between planning and sending, another campaign finds Bob's mailbox dead.
    suppress_addresses(channel="email", addresses=["bob.jones@example.com"], reason=Suppression.Reason.HARD_BOUNCE)

    sending.send_run(run_id=run_id)

    assert Counter(r for m in smtp_server.messages for r in m["rcpt_tos"]) == Counter({kept.email: 1})
    statuses = {d.profile_id: (d.status, d.reason) for d in Delivery.objects.filter(run_id=run_id)}
    assert statuses == {kept.pk: ("sent", ""), dead.pk: ("excluded", "suppressed")}


@pytest.mark.django_db(transaction=True)
def test_an_in_app_campaign_puts_one_message_in_each_inbox_and_completes(redis, marketer, everyone):
    people = make_profiles(3)
    inbox = make_configuration("in_app")  # in-app settings name no retry window
    content = Content(subject="Hello {{ profile.first_name }}", html_body="<p>Sale</p>", text_body="Sale")
    campaign = make_campaign(marketer, inbox, everyone, content=content)
    campaign_activate(campaign=campaign, actor=marketer)

    scheduler_tick()
    run_burst_worker()

    titles = sorted(InboxMessage.objects.values_list("profile_id", "title"))
    assert titles == sorted((p.pk, f"Hello {p.attributes['first_name']}") for p in people)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    assert Run.objects.get().state == Run.State.COMPLETE
    assert Campaign.objects.get().status == Campaign.Status.COMPLETED
