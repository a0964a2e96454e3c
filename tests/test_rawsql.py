"""config.rawsql, the hand-written statements of the hot paths: rows read become the instances the ORM would give,
rows written hold exactly what each instance says, on both databases (their SQL and their conversions differ)."""

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.core.exceptions import ValidationError
from django.db import OperationalError, connection

from audiences.models import Identity, Profile
from campaigns.models import Delivery
from config import rawsql
from tests.processes import connection_params

pytestmark = [pytest.mark.both_databases, pytest.mark.django_db]

PROFILE = ["id", "email", "attributes", "created_at"]


def profiles(count: int) -> list[Profile]:
    return [Profile.objects.create(email=f"p{n}@example.com", attributes={"n": n}) for n in range(count)]


def test_update_writes_each_rows_own_values_where_the_condition_holds():
    rows = profiles(4)
    Profile.objects.filter(pk__in=[rows[1].pk, rows[3].pk]).update(locale="fr")
    for row in rows:
        row.email, row.attributes = f"new-{row.pk}@example.com", {"n": row.attributes["n"], "tags": ["a", "b"]}

    assert rawsql.update(Profile, rows, ["email", "attributes"], where="t.locale = %s", params=["fr"]) == 2

    stored = {profile.pk: profile for profile in Profile.objects.all()}
    for n, row in enumerate(rows):
        if n in (1, 3):
            assert (stored[row.pk].email, stored[row.pk].attributes) == (row.email, row.attributes)
        else:
            assert (stored[row.pk].email, stored[row.pk].attributes) == (f"p{n}@example.com", {"n": n})


def test_update_without_a_condition_writes_every_row_and_nothing_is_written_for_no_rows():
    rows = profiles(3)
    for row in rows:
        row.locale = f"l{row.pk}"

    assert rawsql.update(Profile, [], ["locale"]) == 0
    assert rawsql.update(Profile, rows, ["locale"]) == 3
    assert sorted(Profile.objects.values_list("locale", flat=True)) == sorted(row.locale for row in rows)


def test_update_writes_and_counts_rows_beyond_one_statement():
    Profile.objects.bulk_create(Profile(email=f"p{n}@example.com") for n in range(450))
    rows = list(Profile.objects.order_by("pk"))
    for row in rows:
        row.locale = f"l{row.pk}"

    assert rawsql.update(Profile, rows, ["locale"]) == 450
    assert {pk: locale for pk, locale in Profile.objects.values_list("pk", "locale")} == {
        row.pk: row.locale for row in rows
    }


@pytest.fixture
def deliveries(redis, personas):
    from audiences.models import Audience
    from campaigns.engine import planning, scheduler
    from campaigns.services.lifecycle import campaign_activate
    from tests.campaigns.test_execution import make_campaign, make_profiles
    from tests.conftest import make_email_configuration

    make_profiles(3)
    everyone = Audience.objects.create(name="Everyone", kind=Audience.Kind.ALL)
    campaign = make_campaign(personas["april"], make_email_configuration(port=25), everyone)
    campaign_activate(campaign=campaign, actor=personas["april"])
    [run_id] = scheduler.start_due_runs(now=datetime.now(UTC))
    planning.plan_run(run_id=run_id)
    return list(Delivery.objects.filter(run_id=run_id).order_by("pk"))


@pytest.mark.django_db(transaction=True)
def test_update_writes_dates_tokens_and_nulls_in_any_row(deliveries):
    """PostgreSQL types the rows' columns by their values: a NULL is still a date, or a token, in any row."""
    at = datetime(2026, 12, 1, 8, 30, 15, 123456, tzinfo=UTC)
    token = uuid.uuid4()
    first, second, third = deliveries
    first.next_attempt_at, first.claim_token = None, None
    second.next_attempt_at, second.claim_token = at, token
    third.next_attempt_at, third.claim_token = at + timedelta(hours=1), None
    Delivery.objects.filter(pk=first.pk).update(next_attempt_at=at, claim_token=uuid.uuid4())

    assert rawsql.update(Delivery, deliveries, ["next_attempt_at", "claim_token"]) == 3

    stored = {row.pk: (row.next_attempt_at, row.claim_token) for row in Delivery.objects.all()}
    assert stored == {
        first.pk: (None, None),
        second.pk: (at, token),
        third.pk: (at + timedelta(hours=1), None),
    }
    # A token and a date compared as the ORM compares them (a UUID without dashes and a date as text on SQLite).
    # Every row's NULL in a column (PostgreSQL would take it for text, not a date or a token).
    second.next_attempt_at, second.claim_token = None, None
    assert rawsql.update(Delivery, [second], ["next_attempt_at", "claim_token"]) == 1
    assert Delivery.objects.filter(pk=second.pk, next_attempt_at=None, claim_token=None).exists()
    second.next_attempt_at, second.claim_token = at, token
    assert rawsql.update(Delivery, [second], ["next_attempt_at", "claim_token"]) == 1
    where = "t.claim_token = %s AND t.next_attempt_at = %s"
    params = [rawsql.value(Delivery, "claim_token", token), rawsql.value(Delivery, "next_attempt_at", at)]
    second.reason = "matched"
    assert rawsql.update(Delivery, deliveries, ["reason"], where=where, params=params) == 1
    assert Delivery.objects.get(pk=second.pk).reason == "matched"


def test_fetch_gives_the_instances_the_orm_gives():
    [row] = profiles(1)
    Profile.objects.filter(pk=row.pk).update(attributes={"first_name": "Ada", "n": 1, "tags": ["x"]})
    sql = f"SELECT {rawsql.columns(Profile, PROFILE, 'p')} FROM {Profile._meta.db_table} p WHERE p.id = %s"  # noqa: S608

    [fetched] = rawsql.fetch(Profile, PROFILE, sql, [row.pk])

    expected = Profile.objects.get(pk=row.pk)
    assert isinstance(fetched, Profile)
    assert (fetched.pk, fetched.email, fetched.attributes) == (row.pk, row.email, expected.attributes)
    assert fetched.created_at == expected.created_at and fetched.created_at.tzinfo is not None
    # A field not read is loaded when first used.
    assert fetched.get_deferred_fields() == {"phone", "timezone", "locale", "updated_at"}
    assert fetched.timezone == expected.timezone


def test_columns_name_the_fields_columns_with_or_without_an_alias():
    assert rawsql.columns(Profile, ["id", "email"], "p") == "p.id, p.email"
    assert rawsql.columns(Profile, ["id", "email"], "") == "id, email"
    assert rawsql.columns(Delivery, ["run_id", "profile_id"], "d") == "d.run_id, d.profile_id"


def test_instance_keeps_nulls_and_converts_values():
    instance = rawsql.instance(Delivery, ["id", "claim_token", "next_attempt_at"], [7, None, None])
    assert (instance.pk, instance.claim_token, instance.next_attempt_at) == (7, None, None)
    token = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s", [rawsql.value(Delivery, "claim_token", token)])
        [(stored,)] = cursor.fetchall()
    assert rawsql.instance(Delivery, ["id", "claim_token"], [7, stored]).claim_token == token
    # A statement whose columns drifted from its field list is an error, not a half-read row.
    with pytest.raises(ValueError):
        rawsql.instance(Delivery, ["id", "claim_token", "next_attempt_at"], [7, None])


def test_inserted_rows_are_saved_rows():
    rows = [Profile(email="a@example.com", attributes={"n": 1}), Profile(email="b@example.com")]

    rawsql.insert(Profile, rows)
    rawsql.insert(Profile, [])

    stored = {profile.pk: profile for profile in Profile.objects.all()}
    assert [stored[row.pk].email for row in rows] == ["a@example.com", "b@example.com"]
    assert stored[rows[0].pk].attributes == {"n": 1} and stored[rows[1].pk].attributes == {}
    assert all(stored[row.pk].created_at is not None for row in rows)
    rows[0].email = "changed@example.com"
    rows[0].save()  # an update of the inserted row, not a second row
    assert Profile.objects.count() == 2 and Profile.objects.get(pk=rows[0].pk).email == "changed@example.com"


def test_an_inserted_row_validates_as_an_existing_row():
    """Edited after its insert (a form validating it), a row's own unique values are not a clash with itself."""
    profile = Profile.objects.create(email="a@example.com")
    identity = Identity(profile=profile, namespace="email", value="a@example.com")
    rawsql.insert(Identity, [identity])

    identity.full_clean()

    with pytest.raises(ValidationError):
        Identity(profile=profile, namespace="email", value="a@example.com").full_clean()


def test_one_of_matches_the_values_given_in_one_statement_text_whatever_their_number_on_postgresql():
    rows = profiles(3)
    texts = set()
    for count in (1, 2, 3):
        among, listed = rawsql.one_of("id", [row.pk for row in rows[:count]])
        with rawsql.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {Profile._meta.db_table} WHERE {among}", listed)  # noqa: S608
            assert sorted(pk for (pk,) in cursor.fetchall()) == sorted(row.pk for row in rows[:count])
        texts.add(among)
    # PostgreSQL prepares a statement by its text: one plan whatever the number of values. SQLite lists them.
    assert len(texts) == (1 if connection.vendor == "postgresql" else 3)


def test_a_text_array_literal_escapes_quotes_and_backslashes_only():
    assert rawsql.text_array([]) == "{}"
    assert rawsql.text_array(["a b", 'say "hi"', "c:\\d", "{x,y}", ""]) == '{"a b","say \\"hi\\"","c:\\\\d","{x,y}",""}'


def test_a_text_array_literal_reads_back_as_the_strings_given():
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL array literal")
    strings = ["", "plain", 'a "quoted" word', "back\\slash\\", "{braces}", "comma, space", " NULL", "NULL"]
    strings += ["Zoé 中文 🙂", '\\"']
    with rawsql.cursor() as cursor:
        cursor.execute("SELECT %s::text[]", [rawsql.text_array(strings)])
        assert cursor.fetchone()[0] == strings
        cursor.execute("SELECT cardinality(%s::text[])", [rawsql.text_array([])])
        assert cursor.fetchone()[0] == 0


@pytest.mark.django_db(transaction=True)
def test_an_unchecked_statement_on_a_connection_the_server_dropped_runs_once_on_a_new_one():
    if connection.vendor != "postgresql":
        pytest.skip("a server that drops a connection: PostgreSQL")
    [row] = profiles(1)
    connection.ensure_connection()
    dropped = connection.connection.info.backend_pid
    with psycopg.connect(**connection_params()) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [dropped])

    updated = rawsql.execute_unchecked(f"UPDATE {Profile._meta.db_table} SET locale = 'fr' WHERE id = %s", [row.pk])  # noqa: S608

    assert updated == 1
    assert connection.connection.info.backend_pid != dropped
    assert Profile.objects.get(pk=row.pk).locale == "fr"
    assert rawsql.fetchone_unchecked("SELECT %s::int + 1", [1]) == (2,)


@pytest.mark.django_db(transaction=True)
def test_an_unchecked_statement_that_fails_on_a_sound_connection_is_not_sent_again():
    if connection.vendor != "postgresql":
        pytest.skip("statement_timeout: PostgreSQL")
    connection.ensure_connection()
    before = connection.connection.info.backend_pid
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 50")
    try:
        with pytest.raises(OperationalError):  # canceled: an error of the statement, not of the connection
            rawsql.execute_unchecked("SELECT pg_sleep(2)", [])
        assert connection.connection.info.backend_pid == before
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET statement_timeout")
