"""The trigger API: calls that become deliveries, counted at a real SMTP server; replays, conflicts and every
refusal as application/problem+json with a pointer to the field."""

import json
import re
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from audiences.models import Audience, Consent, Identity, IdentityNamespace, Profile
from campaigns.models import Campaign, Delivery, FrequencyCap, QuietHours, Run, TriggerRequest
from campaigns.services import lifecycle
from channels.models import Suppression
from permissions.services.api_keys import api_key_create, api_key_revoke
from tests.campaigns.queued import received
from tests.conftest import make_email_configuration, run_burst_worker
from tests.problems import problem as _problem
from tests.processes import connection_params

# Jobs are enqueued when the call's transaction commits: each test commits for real.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def namespaces(db):
    """The built-in identity namespaces, which a data migration made and the flush of a transactional test took."""
    for name, kind in (("email", "email"), ("phone", "phone"), ("crm_id", "text")):
        IdentityNamespace.objects.update_or_create(name=name, defaults={"label": name, "kind": kind, "builtin": True})


def _campaign(actor, configuration, *, category=Campaign.Category.TRANSACTIONAL, audience=None, **fields):
    campaign = lifecycle.campaign_create(
        actor=actor,
        name=fields.pop("name", "Password reset"),
        kind=Campaign.Kind.API_TRIGGERED,
        category=category,
        channel_configuration=configuration,
        audience=audience,
        content=lifecycle.Content(
            "Reset your password, {{ profile.first_name }}",
            '<p><a href="{{ context.reset_url }}">Reset</a></p>',
            "Reset: {{ context.reset_url }} for {{ context.order.id | default: 'no order' }}",
        ),
    )
    Campaign.objects.filter(pk=campaign.pk).update(**fields)
    campaign.refresh_from_db()
    return campaign


def _live(campaign, actor):
    return lifecycle.campaign_activate(campaign=campaign, actor=actor)


@pytest.fixture
def relay(smtp_server):
    return smtp_server


@pytest.fixture
def configuration(db, relay):
    return make_email_configuration(port=relay.port)


@pytest.fixture
def reset(personas, configuration):
    campaign = _campaign(personas["ada"], configuration)
    Campaign.objects.filter(pk=campaign.pk).update(
        context_contract=[
            {"name": "reset_url", "type": "string", "required": True, "example": "https://x.test/r", "description": ""}
        ]
    )
    return _live(campaign, personas["ada"])


@pytest.fixture
def ada_profile(db):
    profile = Profile.objects.create(email="ada@example.com", attributes={"first_name": "Ada"})
    Identity.objects.create(profile=profile, namespace="email", value="ada@example.com")
    return profile


@pytest.fixture
def secret(personas, reset):
    return api_key_create(actor=personas["ada"], name="Backend", campaign_ids=[reset.pk])[1]


def _post(client, path, body, secret, **headers):
    if secret:
        headers["Authorization"] = f"Bearer {secret}"
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=headers)


def _trigger(client, campaign, secret, *, request_id="r-1", recipients=None, context=None, **headers):
    body = {
        "requestId": request_id,
        "context": context if context is not None else {"reset_url": "https://shop.test/r/abc"},
        "recipients": recipients or [{"identity": {"namespace": "email", "value": "ada@example.com"}}],
    }
    if request_id is None:
        del body["requestId"]
    return _post(client, f"/api/v1/campaigns/{campaign.pk}/trigger", body, secret, **headers)


def _text(received_message) -> str:
    """The subject and every text part of a message the relay received, decoded."""
    message = received_message["message"]
    parts = [part.get_content() for part in message.walk() if part.get_content_maintype() == "text"]
    return "\n".join([message["Subject"], *parts])


# --- From the call to the inbox ------------------------------------------------------------------------------


@pytest.mark.both_databases
def test_a_password_reset_reaches_the_person_with_the_context_rendered(
    client, reset, secret, ada_profile, relay, redis
):
    response = _trigger(client, reset, secret)

    assert response.status_code == 202, response.content
    answer = response.json()
    assert answer["recipients"] == [
        {"index": 0, "status": "accepted", "profileId": ada_profile.pk, "reason": "", "detail": None, "sendAt": None}
    ]
    assert answer["counts"] == {"accepted": 1, "excluded": 0, "rejected": 0}
    run_burst_worker()
    assert received(relay) == {"ada@example.com": 1}
    message = _text(relay.messages[0])
    assert "Reset your password, Ada" in message
    assert "https://shop.test/r/abc" in message and "no order" in message

    status = client.get(answer["statusUrl"], headers={"Authorization": f"Bearer {secret}"}).json()
    assert status["state"] == "complete"
    assert status["counts"]["sent"] == 1
    assert status["recipients"][0]["status"] == "sent" and status["recipients"][0]["deliveryId"]
    by_id = client.get("/api/v1/trigger-requests/r-1", headers={"Authorization": f"Bearer {secret}"}).json()
    assert by_id == status


def test_the_send_job_goes_to_the_transactional_queue(client, reset, secret, ada_profile, redis):
    import django_rq

    _trigger(client, reset, secret)

    assert django_rq.get_queue("transactional").count == 1
    assert django_rq.get_queue("campaigns").count == 0


def test_a_burst_of_calls_waits_for_one_send_job_and_the_next_call_enqueues_again(
    client, reset, secret, ada_profile, relay, redis
):
    import django_rq

    transactional = django_rq.get_queue("transactional")
    for number in range(3):
        assert _trigger(client, reset, secret, request_id=f"burst-{number}").status_code == 202

    assert transactional.count == 1  # one job, not one a call: it sends all three
    run_burst_worker()
    assert received(relay) == {"ada@example.com": 3}
    _trigger(client, reset, secret, request_id="after")
    assert transactional.count == 1
    run_burst_worker()
    assert received(relay) == {"ada@example.com": 4}


@pytest.mark.both_databases
def test_a_call_costs_a_fixed_number_of_statements_whatever_its_recipients(client, reset, secret, redis):
    """The hot path's budget (docs/benchmarks.md): the key, the campaign with the earlier call of this requestId,
    then in one transaction the profiles, the campaign's lock with its run, the suppression list and two inserts."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    people = [f"p{number}@example.com" for number in range(50)]
    for email in people:
        Identity.objects.create(profile=Profile.objects.create(email=email), namespace="email", value=email)
    one = [{"identity": {"namespace": "email", "value": people[0]}}]
    fifty = [{"identity": {"namespace": "email", "value": email}} for email in people]
    _trigger(client, reset, secret, request_id="first", recipients=one)  # the key's first use, the run made

    counts = []
    for request_id, recipients in (("one", one), ("fifty", fifty)):
        with CaptureQueriesContext(connection) as captured:
            response = _trigger(client, reset, secret, request_id=request_id, recipients=recipients)
        assert response.status_code == 202, response.content
        statements = [query["sql"] for query in captured.captured_queries]
        # A prepared statement is logged as "QUERY = '...' - PARAMS = (...)" (config.rawsql).
        counts.append(len([sql for sql in statements if re.match(r"(QUERY = ')?(SELECT|INSERT|UPDATE) ", sql)]))
    assert counts == [7, 7]
    assert Delivery.objects.filter(trigger_request__request_id="fifty").count() == 50


@pytest.mark.parametrize("prepared", [True, False])
def test_on_postgresql_the_hot_statements_are_prepared_unless_turned_off(
    client, reset, secret, ada_profile, redis, settings, prepared
):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    settings.DATABASE_PREPARED_STATEMENTS = prepared
    connection.close()  # a connection of its own: nothing prepared yet

    assert _trigger(client, reset, secret).status_code == 202

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        statements = [statement for (statement,) in cursor.fetchall()]
    campaign_read = [statement for statement in statements if "JOIN channels_channelconfiguration cc" in statement]
    assert len(campaign_read) == (1 if prepared else 0)
    assert len(statements) == (7 if prepared else 0)  # the key, the campaign, profiles, lock, suppression, 2 inserts


def test_a_call_after_the_database_dropped_an_idle_connection_is_answered(client, reset, secret, ada_profile, redis):
    """A kept-alive connection that broke while idle (a restart, a failover, an idle timeout) is replaced by the
    first statement of the next call, which is a prepared one (config.rawsql), as the ORM's would."""
    import psycopg
    from django.db import close_old_connections, connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's: the server ends the connection")
    assert _trigger(client, reset, secret, request_id="before").status_code == 202
    params = connection_params()
    with psycopg.connect(**params) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])
    close_old_connections()  # what request_started runs in a server (Django's test client leaves it out)

    assert _trigger(client, reset, secret, request_id="after").status_code == 202


def test_after_a_migration_changed_a_table_a_prepared_statement_fails_once_then_works(personas, reset, secret):
    """A statement prepared before another process's ALTER of a column it returns cannot run again on that
    connection ("cached plan must not change result type"): the connection is dropped, so only the call that met it
    fails."""
    import psycopg
    from django.db import NotSupportedError, connection

    from permissions.services.api_keys import api_key_authenticate

    if connection.vendor != "postgresql":
        pytest.skip("prepared statements are PostgreSQL's")
    assert api_key_authenticate(secret) is not None  # the key's read, prepared on this connection
    params = connection_params()
    alter = "ALTER TABLE permissions_apikey ALTER COLUMN name TYPE varchar({})"
    with psycopg.connect(**params) as migrating:  # what a migration's AlterField(max_length=201) runs
        migrating.execute(alter.format(201))
    try:
        with pytest.raises(NotSupportedError):
            api_key_authenticate(secret)
        assert api_key_authenticate(secret) is not None  # a new connection: prepared afresh
    finally:
        with psycopg.connect(**params) as migrating:
            migrating.execute(alter.format(200))


def test_a_lost_send_job_is_replaced_by_the_scheduler(client, reset, secret, ada_profile, relay, redis):
    import django_rq
    from django.utils import timezone

    from config.scheduler import scheduler_tick

    _trigger(client, reset, secret)
    django_rq.get_queue("transactional").empty()  # the job is lost; its waiting flag stays

    scheduler_tick(now=timezone.now())
    run_burst_worker()

    assert received(relay) == {"ada@example.com": 1}


def test_each_recipient_gets_the_shared_context_with_their_own_on_top(client, reset, secret, relay, redis):
    for name in ("ada", "bob"):
        profile = Profile.objects.create(email=f"{name}@example.com", attributes={"first_name": name.title()})
        Identity.objects.create(profile=profile, namespace="email", value=f"{name}@example.com")

    response = _trigger(
        client,
        reset,
        secret,
        context={"reset_url": "https://shop.test/shared"},
        recipients=[
            {"identity": {"namespace": "email", "value": "ada@example.com"}, "context": {"order": {"id": "A-1"}}},
            {"identity": {"namespace": "email", "value": "BOB@EXAMPLE.COM".lower()}},
        ],
    )

    assert response.status_code == 202, response.content
    run_burst_worker()
    bodies = {message["rcpt_tos"][0]: _text(message) for message in relay.messages}
    assert "A-1" in bodies["ada@example.com"] and "no order" in bodies["bob@example.com"]
    assert all("https://shop.test/shared" in body for body in bodies.values())


@pytest.mark.both_databases
def test_one_person_can_be_sent_the_same_campaign_twice(client, reset, secret, ada_profile, relay, redis):
    assert _trigger(client, reset, secret, request_id="first").status_code == 202
    assert _trigger(client, reset, secret, request_id="second").status_code == 202

    run_burst_worker()

    assert received(relay) == {"ada@example.com": 2}
    assert Run.objects.filter(campaign=reset, kind=Run.Kind.UNITARY).count() == 1


def test_unknown_recipients_are_rejected_by_index_unless_the_campaign_creates_profiles(
    client, reset, secret, ada_profile, relay, redis
):
    recipients = [
        {"identity": {"namespace": "email", "value": "ada@example.com"}},
        {"identity": {"namespace": "email", "value": "new@example.com"}, "attributes": {}},
        {"profileId": 999_999},
    ]
    answer = _trigger(client, reset, secret, recipients=recipients).json()

    assert [(r["status"], r["reason"]) for r in answer["recipients"]] == [
        ("accepted", ""),
        ("rejected", "unknown_recipient"),
        ("rejected", "unknown_profile"),
    ]
    assert not Profile.objects.filter(email="new@example.com").exists()

    Campaign.objects.filter(pk=reset.pk).update(create_profiles=True)
    answer = _trigger(client, reset, secret, request_id="r-2", recipients=recipients[1:2]).json()

    created = Identity.objects.get(namespace="email", value="new@example.com").profile
    assert answer["recipients"][0] == {
        "index": 0,
        "status": "accepted",
        "profileId": created.pk,
        "reason": "",
        "detail": None,
        "sendAt": None,
    }
    run_burst_worker()
    assert received(relay) == {"ada@example.com": 1, "new@example.com": 1}


def test_an_address_override_and_inline_attributes_are_used(client, reset, secret, ada_profile, relay, redis):
    from audiences.services.attributes import attributes_declare

    attributes_declare({"first_name": "string"})

    response = _trigger(
        client,
        reset,
        secret,
        recipients=[
            {
                "identity": {"namespace": "email", "value": "ada@example.com"},
                "address": "ada.work@example.com",
                "attributes": {"first_name": "Augusta"},
            }
        ],
    )

    assert response.status_code == 202, response.content
    run_burst_worker()
    assert received(relay) == {"ada.work@example.com": 1}
    assert "Reset your password, Augusta" in _text(relay.messages[0])
    ada_profile.refresh_from_db()
    assert ada_profile.attributes["first_name"] == "Augusta"


def test_suppressed_addresses_are_excluded_with_the_reason_and_transactional_skips_consent(
    client, reset, secret, ada_profile, relay, redis
):
    Consent.objects.create(profile=ada_profile, channel="email", state=Consent.State.OPTED_OUT)
    bob = Profile.objects.create(email="bob@example.com")
    Identity.objects.create(profile=bob, namespace="email", value="bob@example.com")
    Suppression.objects.create(channel="email", address="bob@example.com", reason="bounce")

    answer = _trigger(client, reset, secret, recipients=[{"profileId": ada_profile.pk}, {"profileId": bob.pk}]).json()

    assert [(r["status"], r["reason"]) for r in answer["recipients"]] == [
        ("accepted", ""),
        ("excluded", "suppressed"),
    ]
    run_burst_worker()
    assert received(relay) == {"ada@example.com": 1}


def test_marketing_triggers_respect_consent(client, personas, configuration, ada_profile, redis):
    campaign = _live(
        _campaign(personas["ada"], configuration, category=Campaign.Category.MARKETING, name="Back in stock"),
        personas["ada"],
    )
    secret = api_key_create(actor=personas["ada"], name="Shop", campaign_ids=[campaign.pk])[1]
    Consent.objects.create(profile=ada_profile, channel="email", state=Consent.State.OPTED_OUT)

    answer = _trigger(client, campaign, secret, recipients=[{"profileId": ada_profile.pk}]).json()

    assert answer["recipients"][0]["status"] == "excluded"
    assert answer["recipients"][0]["reason"] == "no_consent"


def test_marketing_triggers_follow_quiet_hours_and_caps_and_say_so(client, personas, configuration, ada_profile, redis):
    campaign = _live(
        _campaign(personas["ada"], configuration, category=Campaign.Category.MARKETING, name="Back in stock"),
        personas["ada"],
    )
    secret = api_key_create(actor=personas["ada"], name="Shop", campaign_ids=[campaign.pk])[1]
    now = timezone.now()  # the campaign's zone (UTC): a window from an hour ago to an hour from now
    start, end = (now - timedelta(hours=1)).time().replace(microsecond=0), (now + timedelta(hours=1)).time()
    QuietHours.objects.create(channel="email", start=start, end=end.replace(microsecond=0), created_by=personas["ada"])
    FrequencyCap.objects.create(name="One a day", limit=1, period="day", created_by=personas["ada"])

    held = _trigger(client, campaign, secret, recipients=[{"profileId": ada_profile.pk}]).json()
    capped = _trigger(client, campaign, secret, request_id="r-2", recipients=[{"profileId": ada_profile.pk}]).json()

    [outcome] = held["recipients"]
    assert outcome["status"] == "accepted"
    due = Delivery.objects.get(trigger_request__execution_id=held["executionId"]).due_at
    assert datetime.fromisoformat(outcome["sendAt"]) == due  # the window's end, an hour from now
    assert timedelta(minutes=59) < due - now < timedelta(minutes=61)
    # The first message, held but planned, takes the day's only slot.
    assert (capped["recipients"][0]["status"], capped["recipients"][0]["reason"]) == ("excluded", "frequency_cap")


# --- Idempotency ---------------------------------------------------------------------------------------------


@pytest.mark.both_databases
def test_a_replayed_request_gets_the_first_answer_and_sends_nothing_again(
    client, reset, secret, ada_profile, relay, redis
):
    first = _trigger(client, reset, secret)
    run_burst_worker()
    again = _trigger(client, reset, secret)
    run_burst_worker()

    assert again.status_code == 202
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert received(relay) == {"ada@example.com": 1}
    assert TriggerRequest.objects.count() == 1 and Delivery.objects.count() == 1


def test_the_idempotency_key_header_names_the_call(client, reset, secret, ada_profile, redis):
    first = _trigger(client, reset, secret, request_id=None, **{"Idempotency-Key": "k-1"})
    again = _trigger(client, reset, secret, request_id="k-1")

    assert first.status_code == 202, first.content
    assert again.json()["executionId"] == first.json()["executionId"]
    assert Delivery.objects.count() == 1
    different = _trigger(client, reset, secret, request_id="k-2", **{"Idempotency-Key": "k-3"})
    body = _problem(different, 422, "invalid-request")
    assert body["errors"][0]["pointer"] == "/requestId"
    missing = _trigger(client, reset, secret, request_id=None)
    assert _problem(missing, 422, "invalid-request")["errors"][0]["pointer"] == "/requestId"


def test_key_order_in_the_body_does_not_make_another_call(client, reset, secret, ada_profile, redis):
    body = {
        "recipients": [{"identity": {"value": "ada@example.com", "namespace": "email"}}],
        "context": {"reset_url": "https://shop.test/r/abc"},
        "requestId": "r-1",
    }
    first = _trigger(client, reset, secret)
    again = _post(client, f"/api/v1/campaigns/{reset.pk}/trigger", body, secret)

    assert again.json() == first.json()


@pytest.mark.both_databases
def test_the_same_request_id_with_another_body_is_a_conflict(client, reset, secret, ada_profile, redis):
    _trigger(client, reset, secret)

    response = _trigger(client, reset, secret, context={"reset_url": "https://shop.test/r/other"})

    body = _problem(response, 409, "request-id-conflict")
    assert "different body" in body["detail"]
    assert Delivery.objects.count() == 1


def test_a_replay_is_answered_even_after_the_campaign_is_paused(client, personas, reset, secret, ada_profile, redis):
    first = _trigger(client, reset, secret)
    lifecycle.campaign_pause(campaign=reset, actor=personas["ada"])

    assert _trigger(client, reset, secret).json() == first.json()
    _problem(_trigger(client, reset, secret, request_id="new"), 409, "campaign-not-live")


# --- Refusals ------------------------------------------------------------------------------------------------


def test_missing_malformed_and_revoked_keys_are_401_with_www_authenticate(client, personas, reset, secret):
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer cmk_nope"}):
        response = client.post(
            f"/api/v1/campaigns/{reset.pk}/trigger", data="{}", content_type="application/json", headers=headers
        )
        _problem(response, 401, "unauthenticated")
        assert response["WWW-Authenticate"] == "Bearer"
    key = api_key_create(actor=personas["ada"], name="Old", campaign_ids=[reset.pk])
    api_key_revoke(actor=personas["ada"], key=key[0])
    _problem(_trigger(client, reset, key[1]), 401, "unauthenticated")


def test_a_key_out_of_scope_gets_403_whether_or_not_the_campaign_exists(client, personas, reset, configuration):
    other = _live(_campaign(personas["ada"], configuration, name="Receipt"), personas["ada"])
    secret = api_key_create(actor=personas["ada"], name="Other", campaign_ids=[other.pk])[1]

    existing = _problem(_trigger(client, reset, secret), 403, "forbidden")
    missing = _post(client, "/api/v1/campaigns/987654/trigger", {"requestId": "x", "recipients": []}, secret)

    assert missing.status_code in (403, 422)  # the body is checked before the scope: 422 names recipients
    missing = _post(
        client, "/api/v1/campaigns/987654/trigger", {"requestId": "x", "recipients": [{"profileId": 1}]}, secret
    )
    assert _problem(missing, 403, "forbidden")["detail"] == existing["detail"].replace(str(reset.pk), "987654")
    # The scope comes before what the service checks: no requestId, or a bad sendAt, is still a 403.
    _problem(_trigger(client, reset, secret, request_id=None), 403, "forbidden")
    audience = {"requestId": "a", "sendAt": "2026-12-24T09:00:00"}
    _problem(_post(client, f"/api/v1/campaigns/{reset.pk}/trigger-audience", audience, secret), 403, "forbidden")


def test_an_unknown_campaign_is_404_for_a_key_covering_every_campaign(client, personas, reset):
    secret = api_key_create(actor=personas["ada"], name="All", all_triggered_campaigns=True)[1]

    response = _post(
        client, "/api/v1/campaigns/987654/trigger", {"requestId": "x", "recipients": [{"profileId": 1}]}, secret
    )

    _problem(response, 404, "not-found")


def test_a_draft_or_stopped_campaign_is_409(client, personas, configuration, ada_profile, redis):
    draft = _campaign(personas["ada"], configuration, name="Draft")
    secret = api_key_create(actor=personas["ada"], name="All", all_triggered_campaigns=True)[1]

    _problem(_trigger(client, draft, secret), 409, "campaign-not-live")
    _live(draft, personas["ada"])
    lifecycle.campaign_stop(campaign=draft, actor=personas["ada"])
    _problem(_trigger(client, draft, secret, request_id="r-2"), 409, "campaign-not-live")
    assert not Delivery.objects.exists()


def test_outside_the_campaign_dates_is_409(client, personas, reset, secret, ada_profile, redis):
    from datetime import timedelta

    from django.utils import timezone

    Campaign.objects.filter(pk=reset.pk).update(end_at=timezone.now() - timedelta(minutes=1))

    body = _problem(_trigger(client, reset, secret), 409, "outside-campaign-dates")
    assert "stopped accepting calls" in body["detail"]
    Campaign.objects.filter(pk=reset.pk).update(end_at=None, start_at=timezone.now() + timedelta(days=1))
    _problem(_trigger(client, reset, secret), 409, "outside-campaign-dates")


def test_a_context_over_200_kb_is_413_and_stores_nothing(client, reset, secret, ada_profile, redis):
    context = {"reset_url": "https://shop.test/r", "blob": "x" * 200_001}

    response = _trigger(client, reset, secret, context=context)

    body = _problem(response, 413, "context-too-large")
    assert "200,000" in body["detail"]
    assert not TriggerRequest.objects.exists()


def test_a_context_breaking_the_contract_is_422_with_a_pointer_for_each_field(client, reset, secret, ada_profile):
    Campaign.objects.filter(pk=reset.pk).update(
        context_contract=[
            {"name": "reset_url", "type": "string", "required": True, "example": None, "description": ""},
            {"name": "hours", "type": "integer", "required": False, "example": 1, "description": ""},
        ]
    )

    response = _trigger(
        client,
        reset,
        secret,
        context={"hours": "one"},
        recipients=[{"profileId": ada_profile.pk, "context": {"hours": 1.5}}],
    )

    body = _problem(response, 422, "context-contract-violated")
    pointers = {error["pointer"]: error["msg"] for error in body["errors"]}
    assert set(pointers) == {"/context/reset_url", "/recipients/0/context/hours"}
    assert "required" in pointers["/context/reset_url"]
    assert "integer" in pointers["/recipients/0/context/hours"]
    assert not TriggerRequest.objects.exists()


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"requestId": "x", "recipients": []}, "/recipients"),
        ({"requestId": "x", "recipients": [{}]}, "/recipients/0"),
        (
            {"requestId": "x", "recipients": [{"profileId": 1, "identity": {"namespace": "email", "value": "a"}}]},
            "/recipients/0",
        ),
        ({"requestId": "x", "recipients": [{"profileId": 0}]}, "/recipients/0/profileId"),
        ({"requestId": "x", "recipients": [{"profileId": 1}] * 101}, "/recipients"),
        ({"requestId": "has space", "recipients": [{"profileId": 1}]}, "/requestId"),
        ({"requestId": "x", "recipients": [{"profileId": 1}], "extra": 1}, "/extra"),
        (
            {"requestId": "x", "recipients": [{"identity": {"namespace": "email", "value": "not-an-email"}}]},
            "/recipients/0/identity",
        ),
        (
            {"requestId": "x", "recipients": [{"identity": {"namespace": "nope", "value": "v"}}]},
            "/recipients/0/identity",
        ),
        ({"requestId": "x", "context": [], "recipients": [{"profileId": 1}]}, "/context"),
    ],
)
def test_an_invalid_body_is_422_with_a_pointer(client, reset, secret, body, pointer):
    response = _post(client, f"/api/v1/campaigns/{reset.pk}/trigger", body, secret)

    problem = _problem(response, 422, "invalid-request")
    assert pointer in {error["pointer"] for error in problem["errors"]}, problem
    assert not TriggerRequest.objects.exists()


def test_malformed_json_is_a_problem_400(client, reset, secret):
    response = client.post(
        f"/api/v1/campaigns/{reset.pk}/trigger",
        data=b'{"requestId": ',
        content_type="application/json",
        headers={"Authorization": f"Bearer {secret}"},
    )

    _problem(response, 400, "bad-request")


def test_a_key_past_its_rate_gets_429_with_retry_after(client, personas, reset, ada_profile, redis):
    key, secret = api_key_create(actor=personas["ada"], name="Slow", campaign_ids=[reset.pk])
    key.rate_per_second = 2
    key.save()

    answers = [_trigger(client, reset, secret, request_id=f"r-{i}").status_code for i in range(5)]

    assert answers.count(202) == 2 and answers.count(429) == 3
    refused = _trigger(client, reset, secret, request_id="r-9")
    _problem(refused, 429, "rate-limited")
    assert 1 <= int(refused["Retry-After"]) <= 2


# --- Audience triggers ---------------------------------------------------------------------------------------


@pytest.mark.both_databases
def test_an_audience_trigger_plans_a_run_through_the_ledger(client, personas, configuration, relay, redis):
    for i in range(3):
        profile = Profile.objects.create(email=f"p{i}@example.com", attributes={"first_name": f"P{i}"})
        Consent.objects.create(profile=profile, channel="email", state=Consent.State.OPTED_IN)
    out = Profile.objects.create(email="out@example.com")
    Consent.objects.create(profile=out, channel="email", state=Consent.State.OPTED_OUT)
    audience = Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)
    campaign = _live(
        _campaign(
            personas["ada"], configuration, category=Campaign.Category.MARKETING, audience=audience, name="Flash sale"
        ),
        personas["ada"],
    )
    secret = api_key_create(actor=personas["ada"], name="Shop", campaign_ids=[campaign.pk])[1]

    response = _post(
        client,
        f"/api/v1/campaigns/{campaign.pk}/trigger-audience",
        {"requestId": "sale-1", "context": {"reset_url": "https://shop.test/sale"}},
        secret,
    )

    assert response.status_code == 202, response.content
    run_burst_worker()
    assert received(relay) == {f"p{i}@example.com": 1 for i in range(3)}
    assert all("https://shop.test/sale" in _text(message) for message in relay.messages)
    run = Run.objects.get(campaign=campaign, kind=Run.Kind.AUDIENCE_TRIGGER)
    assert run.deliveries.filter(status=Delivery.Status.EXCLUDED, reason="no_consent").count() == 1
    status = client.get(response.json()["statusUrl"], headers={"Authorization": f"Bearer {secret}"}).json()
    assert status["state"] == "complete"
    assert status["counts"] == {"accepted": 0, "sent": 3, "failed": 0, "unknown": 0, "excluded": 1, "cancelled": 0}
    again = _post(
        client,
        f"/api/v1/campaigns/{campaign.pk}/trigger-audience",
        {"requestId": "sale-1", "context": {"reset_url": "https://shop.test/sale"}},
        secret,
    )
    assert again.json() == response.json()
    run_burst_worker()
    assert len(relay.messages) == 3


def test_an_audience_trigger_without_an_audience_is_409(client, reset, secret):
    response = _post(client, f"/api/v1/campaigns/{reset.pk}/trigger-audience", {"requestId": "a"}, secret)

    _problem(response, 409, "campaign-has-no-audience")


# --- Status and health ---------------------------------------------------------------------------------------


def test_status_is_404_for_unknown_calls_and_other_keys_calls(client, personas, reset, secret, ada_profile, redis):
    answer = _trigger(client, reset, secret).json()
    stranger = api_key_create(actor=personas["ada"], name="Stranger", campaign_ids=[])[1]

    _problem(client.get(answer["statusUrl"], headers={"Authorization": f"Bearer {stranger}"}), 404, "not-found")
    _problem(
        client.get("/api/v1/trigger-requests/nope", headers={"Authorization": f"Bearer {secret}"}), 404, "not-found"
    )


def test_a_request_id_used_in_two_campaigns_needs_the_campaign(client, personas, configuration, ada_profile, redis):
    first = _live(_campaign(personas["ada"], configuration, name="One"), personas["ada"])
    second = _live(_campaign(personas["ada"], configuration, name="Two"), personas["ada"])
    secret = api_key_create(actor=personas["ada"], name="All", all_triggered_campaigns=True)[1]
    _trigger(client, first, secret, request_id="same")
    _trigger(client, second, secret, request_id="same")
    auth = {"Authorization": f"Bearer {secret}"}

    _problem(client.get("/api/v1/trigger-requests/same", headers=auth), 409, "ambiguous-request-id")
    named = client.get(f"/api/v1/trigger-requests/same?campaignId={second.pk}", headers=auth)
    assert named.json()["campaignId"] == second.pk


def test_health_needs_no_key(client, db):
    response = client.get("/api/v1/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_the_openapi_document_declares_every_trigger_answer(client):
    schema = client.get("/api/openapi.json").json()
    trigger = schema["paths"]["/api/v1/campaigns/{campaign_id}/trigger"]["post"]["responses"]

    assert set(trigger) == {"202", "400", "401", "403", "404", "409", "413", "422", "429"}
    assert "application/problem+json" in trigger["409"]["content"]
    assert "Retry-After" in trigger["429"]["headers"]
    assert "/api/v1/health" in schema["paths"]
    assert "/api/v1/executions/{execution_id}" in schema["paths"]


# --- Retention and privacy -----------------------------------------------------------------------------------


def test_past_their_retention_calls_lose_their_context_once_sent_and_replays_are_still_answered(
    client, personas, reset, secret, ada_profile, relay, redis
):
    from datetime import timedelta

    from django.utils import timezone

    from campaigns.services.triggers import trigger_requests_purge_expired

    first = _trigger(client, reset, secret, request_id="sent")
    run_burst_worker()
    _trigger(client, reset, secret, request_id="held", context={"reset_url": "https://shop.test/r/held"})
    lifecycle.campaign_pause(campaign=reset, actor=personas["ada"])  # before its message went out
    later = timezone.now() + timedelta(hours=49)

    assert trigger_requests_purge_expired(now=timezone.now()) == 0
    assert trigger_requests_purge_expired(now=later) == 1  # the held call's message is still to send: kept

    assert TriggerRequest.objects.get(request_id="sent").context == {}
    assert TriggerRequest.objects.get(request_id="held").context["shared"]["reset_url"] == "https://shop.test/r/held"
    lifecycle.campaign_activate(campaign=reset, actor=personas["ada"])
    from config.scheduler import scheduler_tick

    scheduler_tick(now=timezone.now())
    run_burst_worker()
    assert "https://shop.test/r/held" in _text(relay.messages[-1])
    again = _trigger(client, reset, secret, request_id="sent")
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert received(relay) == {"ada@example.com": 2}


def test_two_calls_to_one_person_past_their_retention_leave_the_scheduler_running(
    client, reset, secret, ada_profile, relay, redis
):
    from datetime import timedelta

    from django.utils import timezone

    from config.scheduler import scheduler_tick

    _trigger(client, reset, secret, request_id="one")
    _trigger(client, reset, secret, request_id="two")
    run_burst_worker()

    scheduler_tick(now=timezone.now() + timedelta(hours=49))

    assert [request.context for request in TriggerRequest.objects.all()] == [{}, {}]
    assert Delivery.objects.filter(trigger_request__isnull=False).count() == 2


@pytest.mark.parametrize(
    "address",
    ["Victim <victim@example.com>", "victim@example.com\r\nBcc: x@example.com", "no-at-sign", ""],
)
def test_an_address_override_that_is_not_an_email_address_is_422(client, reset, secret, ada_profile, address):
    Suppression.objects.create(channel="email", address="victim@example.com", reason="complaint")

    response = _trigger(
        client,
        reset,
        secret,
        recipients=[{"identity": {"namespace": "email", "value": "ada@example.com"}, "address": address}],
    )

    problem = _problem(response, 422, "invalid-request")
    assert problem["errors"][0]["pointer"] == "/recipients/0/address"
    assert not Delivery.objects.exists()


def test_an_address_override_is_checked_against_the_suppression_list_as_sent(client, reset, secret, ada_profile):
    Suppression.objects.create(channel="email", address="victim@example.com", reason="complaint")

    response = _trigger(
        client,
        reset,
        secret,
        recipients=[{"identity": {"namespace": "email", "value": "ada@example.com"}, "address": "Victim@EXAMPLE.com"}],
    )

    assert response.json()["recipients"][0]["reason"] == "suppressed"


@pytest.mark.both_databases
def test_a_stop_waits_for_a_call_in_flight_and_the_call_then_reports_stopped(
    client, personas, reset, secret, ada_profile, relay, redis, monkeypatch
):
    from campaigns.services import triggers
    from tests.campaigns.test_handover import Elsewhere

    stops = []
    real_deliveries = triggers._deliveries

    def stop_meanwhile(*args, **kwargs):
        # The call holds its lock: a stop from another process waits for it instead of slipping in between.
        stops.append(Elsewhere(lambda: lifecycle.campaign_stop(campaign=reset, actor=personas["ada"])))
        stops[0].wait(timeout=1)
        assert stops[0].thread.is_alive()
        return real_deliveries(*args, **kwargs)

    monkeypatch.setattr(triggers, "_deliveries", stop_meanwhile)
    response = _trigger(client, reset, secret)
    stops[0].wait(timeout=30)

    assert response.status_code == 202  # committed before the stop
    reset.refresh_from_db()
    assert reset.status == Campaign.Status.STOPPED
    assert set(Run.objects.filter(campaign=reset).values_list("state", flat=True)) == {Run.State.STOPPED}
    run_burst_worker()
    assert received(relay) == {}  # stop means stop
    status = client.get(response.json()["statusUrl"], headers={"Authorization": f"Bearer {secret}"}).json()
    assert status["state"] == "stopped"
    _problem(_trigger(client, reset, secret, request_id="after"), 409, "campaign-not-live")
    # The scheduler's tick cancels the message that never went out; the call still reads stopped.
    from config.scheduler import scheduler_tick

    scheduler_tick()
    status = client.get(response.json()["statusUrl"], headers={"Authorization": f"Bearer {secret}"}).json()
    assert (status["state"], status["counts"]["cancelled"], status["counts"]["accepted"]) == ("stopped", 1, 0)
    assert status["recipients"][0]["status"] == "cancelled"


def test_a_new_live_version_lets_the_previous_versions_run_complete(
    client, personas, reset, secret, ada_profile, redis
):
    from django.utils import timezone

    from config.scheduler import scheduler_tick

    _trigger(client, reset, secret, request_id="v1")
    run_burst_worker()
    lifecycle.campaign_pause(campaign=reset, actor=personas["ada"])
    lifecycle.campaign_update_content(
        campaign=reset, actor=personas["ada"], content=lifecycle.Content("New", "<p>{{ context.reset_url }}</p>", "x")
    )
    lifecycle.campaign_activate(campaign=reset, actor=personas["ada"])
    _trigger(client, reset, secret, request_id="v2")
    run_burst_worker()

    scheduler_tick(now=timezone.now())

    states = dict(Run.objects.filter(campaign=reset).values_list("occurrence", "state"))
    assert states == {"unitary:v1": Run.State.COMPLETE, "unitary:v2": Run.State.SENDING}


def test_the_same_call_with_and_without_its_empty_defaults_is_one_call(client, reset, secret, ada_profile, redis):
    body = {"requestId": "d-1", "recipients": [{"identity": {"namespace": "email", "value": "ada@example.com"}}]}
    Campaign.objects.filter(pk=reset.pk).update(context_contract=[])
    first = _post(client, f"/api/v1/campaigns/{reset.pk}/trigger", body, secret)
    again = _post(client, f"/api/v1/campaigns/{reset.pk}/trigger", {**body, "context": {}}, secret)

    assert again.status_code == 202 and again.json() == first.json()


def test_erasing_a_recipient_keeps_the_other_recipients_context(client, personas, reset, secret, ada_profile, redis):
    from audiences.services.privacy import profile_erase, profile_export

    bob = Profile.objects.create(email="bob@example.com")
    Identity.objects.create(profile=bob, namespace="email", value="bob@example.com")
    _trigger(
        client,
        reset,
        secret,
        recipients=[
            {"profileId": ada_profile.pk, "context": {"secret_hint": "ada's"}},
            {"profileId": bob.pk, "context": {"secret_hint": "bob's"}},
        ],
    )

    exported = profile_export(bob)["trigger_requests"]
    assert exported[0]["context"] == {
        "shared": {"reset_url": "https://shop.test/r/abc"},
        "own": {"secret_hint": "bob's"},
    }
    profile_erase(profile=ada_profile, actor=personas["ada"])

    context = TriggerRequest.objects.get().context
    assert context["recipients"] == {str(bob.pk): {"secret_hint": "bob's"}}


def test_the_readme_example_triggers_the_demo_password_reset(client, relay, redis):
    from io import StringIO

    from django.core.management import call_command

    from campaigns.management.commands.seed_demo import DEMO_API_KEY

    call_command("seed_demo", stdout=StringIO())
    reset = Campaign.objects.get(name="Password reset")
    configuration = reset.channel_configuration
    stored = configuration.get_settings().model_copy(update={"host": "127.0.0.1", "port": relay.port})
    configuration.set_settings(stored)
    configuration.save()

    # The README's body, as written there.
    body = {
        "requestId": "reset-0001",
        "context": {"reset_url": "https://shop.example.com/reset/0001"},
        "recipients": [{"identity": {"namespace": "email", "value": "ada@example.com"}}],
    }
    response = _post(client, f"/api/v1/campaigns/{reset.pk}/trigger", body, DEMO_API_KEY)

    assert response.status_code == 202, response.content
    assert response.json()["recipients"][0]["status"] == "accepted"
    run_burst_worker()
    assert received(relay) == {"ada@example.com": 1}
    assert "https://shop.example.com/reset/0001" in _text(relay.messages[0])
