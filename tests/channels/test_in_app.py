"""The in-app channel: the adapter writes inbox rows, and apps read and change them through the inbox API."""

import pytest
from django.utils import timezone

from audiences.models import Audience, Profile, PushToken
from campaigns.engine import planning, scheduler, sending
from campaigns.models import Delivery
from campaigns.services.lifecycle import Content, campaign_activate, campaign_create
from channels.adapters.base import OutboundMessage, Outcome
from channels.adapters.in_app import InAppAdapter
from channels.models import InboxMessage
from permissions.services.api_keys import api_key_create
from tests.channels.conftest import make_configuration


def note(n: int, profile: Profile, **overrides) -> OutboundMessage:
    values = {"delivery_id": n, "to": str(profile.pk), "subject": f"Note {n}", "html": f"<p>{n}</p>", "text": f"{n}"}
    return OutboundMessage(**{**values, **overrides})


@pytest.fixture
def inbox(db):
    configuration = make_configuration("in_app", name="App inbox")
    adapter = InAppAdapter(configuration)
    yield adapter
    adapter.close()


@pytest.fixture
def person(db):
    return Profile.objects.create(email="zoe@example.com")


def test_messages_land_in_the_profiles_inbox(inbox, person):
    results = inbox.send([note(1, person), note(2, person, subject="Soldes d'été ☀️")])

    rows = {row.delivery_id: row for row in InboxMessage.objects.filter(profile=person)}
    assert [(r.outcome, r.provider_message_id) for r in results] == [
        (Outcome.SENT, f"inbox:{rows[1].pk}"),
        (Outcome.SENT, f"inbox:{rows[2].pk}"),
    ]
    assert (rows[2].title, rows[2].body_html, rows[2].body_text) == ("Soldes d'été ☀️", "<p>2</p>", "2")
    assert rows[2].configuration_id == inbox.configuration_id and rows[2].read_at is None


def test_a_delivery_sent_again_adds_no_second_message(inbox, person):
    [first] = inbox.send([note(1, person)])
    [again] = inbox.send([note(1, person, subject="changed")])

    assert again.outcome == Outcome.SENT and again.provider_message_id == first.provider_message_id
    assert InboxMessage.objects.get().title == "Note 1"


def test_a_profile_that_no_longer_exists_is_an_invalid_address(inbox, person):
    gone = Profile.objects.create(email="gone@example.com")
    gone_message = note(2, gone)
    gone.delete()

    sent, missing = inbox.send([note(1, person), gone_message])

    assert sent.outcome == Outcome.SENT
    assert (missing.outcome, missing.reason) == (Outcome.PERMANENT, "invalid_address")


def test_addresses_of_push_in_app_and_webhook(person):
    assert person.address_for("in_app") == person.address_for("webhook") == str(person.pk)
    assert person.address_for("push") == ""
    old = PushToken.objects.create(profile=person, token="old", token_hash="1", platform="ios", app="shop")
    PushToken.objects.create(profile=person, token="newest", token_hash="2", platform="ios", app="shop")
    assert Profile.objects.get(pk=person.pk).address_for("push") == "newest"
    PushToken.objects.filter(token="newest").update(retired_at=timezone.now())
    assert Profile.objects.prefetch_related("push_tokens").get(pk=person.pk).address_for("push") == old.token


@pytest.mark.django_db(transaction=True)
def test_an_in_app_campaign_goes_through_the_send_path_into_inboxes(personas, redis):
    people = Profile.objects.bulk_create(Profile(attributes={"first_name": f"N{i}"}) for i in range(5))
    campaign = campaign_create(
        actor=personas["april"],
        name="App news",
        channel_configuration=make_configuration("in_app"),
        audience=Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL),
        content=Content("Hi {{ profile.first_name }}", "<p>Hi {{ profile.first_name }}</p>", "Hi"),
    )
    campaign_activate(campaign=campaign, actor=personas["april"])
    [run_id] = scheduler.start_due_runs(now=timezone.now())
    planning.plan_run(run_id=run_id)
    sending.send_run(run_id=run_id)

    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}
    assert {(m.profile_id, m.title) for m in InboxMessage.objects.all()} == {
        (p.pk, f"Hi N{i}") for i, p in enumerate(people)
    }
    delivery = Delivery.objects.get(profile=people[0])
    assert delivery.address == str(people[0].pk)
    assert delivery.provider_message_id == f"inbox:{InboxMessage.objects.get(profile=people[0]).pk}"


# The inbox API -------------------------------------------------------------------------------------------


@pytest.fixture
def app_key(personas):
    return api_key_create(actor=personas["ada"], name="app backend", profiles=True)[1]


def call(client, method, path, key, **params):
    return client.generic(method, f"/api/v1/inbox{path}", headers={"Authorization": f"Bearer {key}"}, **params)


def test_the_inbox_lists_unread_messages_first_then_newest_in_pages(client, app_key, inbox, person):
    inbox.send([note(n, person) for n in range(1, 6)])
    read = InboxMessage.objects.get(delivery_id=5)
    InboxMessage.objects.filter(pk=read.pk).update(read_at=timezone.now())

    first = call(client, "GET", f"/{person.pk}/messages?limit=3", app_key).json()
    second = call(client, "GET", f"/{person.pk}/messages?limit=3&offset=3", app_key).json()

    assert (first["count"], first["unread"]) == (5, 4)
    titles = [m["title"] for m in first["messages"] + second["messages"]]
    assert titles == ["Note 4", "Note 3", "Note 2", "Note 1", "Note 5"]
    assert first["messages"][0]["body_html"] == "<p>4</p>" and first["messages"][0]["read_at"] is None


def test_marking_read_keeps_the_first_time_and_deleting_is_for_good(client, app_key, inbox, person):
    inbox.send([note(1, person), note(2, person)])
    one, two = InboxMessage.objects.order_by("delivery_id")

    marked = call(client, "POST", f"/{person.pk}/messages/{one.pk}/read", app_key)
    again = call(client, "POST", f"/{person.pk}/messages/{one.pk}/read", app_key)
    deleted = call(client, "DELETE", f"/{person.pk}/messages/{two.pk}", app_key)
    inbox.send([note(2, person)])  # the same delivery sent again
    listed = call(client, "GET", f"/{person.pk}/messages", app_key).json()

    assert marked.status_code == 200 and marked.json()["read_at"] is not None
    assert again.json()["read_at"] == marked.json()["read_at"]
    assert deleted.status_code == 204
    assert [m["id"] for m in listed["messages"]] == [one.pk]
    assert call(client, "POST", f"/{person.pk}/messages/{two.pk}/read", app_key).status_code == 404


def test_a_message_of_another_profile_is_not_found(client, app_key, inbox, person):
    other = Profile.objects.create(email="other@example.com")
    inbox.send([note(1, other)])
    theirs = InboxMessage.objects.get()

    assert call(client, "POST", f"/{person.pk}/messages/{theirs.pk}/read", app_key).status_code == 404
    assert call(client, "DELETE", f"/{person.pk}/messages/{theirs.pk}", app_key).status_code == 404
    assert call(client, "GET", "/999999/messages", app_key).status_code == 404
    assert InboxMessage.objects.get().read_at is None


def test_the_inbox_can_be_narrowed_to_one_configuration(client, app_key, inbox, person):
    other = InAppAdapter(make_configuration("in_app", name="Other app"))
    inbox.send([note(1, person)])
    other.send([note(1, person, subject="From the other app")])

    listed = call(client, "GET", f"/{person.pk}/messages?configuration={other.configuration_id}", app_key).json()

    assert [m["title"] for m in listed["messages"]] == ["From the other app"]


def test_a_key_without_the_profiles_scope_is_refused(client, personas, inbox, person):
    key = api_key_create(actor=personas["ada"], name="triggers", all_triggered_campaigns=True)[1]

    response = call(client, "GET", f"/{person.pk}/messages", key)

    assert response.status_code == 403
    assert "profiles scope" in response.json()["detail"]


def test_a_profile_export_holds_its_inbox_and_no_one_elses(db):
    from audiences.models import Profile
    from audiences.services.privacy import profile_export
    from channels.models import ChannelConfiguration, InboxMessage

    person, stranger = Profile.objects.create(email="p@example.com"), Profile.objects.create(email="s@example.com")
    configuration = ChannelConfiguration.objects.create(name="Inbox", channel="in_app")
    InboxMessage.objects.create(profile=person, configuration=configuration, delivery_id=1, title="Yours")
    InboxMessage.objects.create(profile=stranger, configuration=configuration, delivery_id=2, title="Theirs")

    export = profile_export(person)

    assert [message["title"] for message in export["inbox_messages"]] == ["Yours"]
