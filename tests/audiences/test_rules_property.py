"""Property: for random profiles and random rules, the compiled query selects exactly the profiles the
pure-Python evaluator accepts, on the database the suite runs on (SQLite, or PostgreSQL with DATABASE_URL)."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audiences.models import AttributeDefinition as Definition
from audiences.models import Audience, AudienceMember, Consent, Profile
from audiences.rules.evaluation import evaluate
from audiences.rules.sql import compile_rule, list_members
from audiences.rules.tree import OPERATORS, parse_rule
from audiences.rules.values import PERIOD_UNITS

pytestmark = pytest.mark.both_databases

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
SCHEMA = {
    "s": "string",
    "contains": "string",
    "n": "number",
    "b": "boolean",
    "d": "date",
    "t": "datetime",
    "l": "string_list",
}
BUILTINS = {"email": "string", "locale": "string", "created_at": "datetime"}
CHANNELS = ["email", "sms"]
MISSING = object()

# Small pools, so that rules and profiles meet often, with the boundaries that matter (equal, one apart).
texts = st.sampled_from(["", "a", "ab", "abc", "b", "ba", "A", "é", "a%", "a_b"])
numbers = st.sampled_from([-1, 0, 0.5, 1, 2, 2.5, 10, 100])
dates = st.integers(-400, 10).map(lambda days: (NOW.date() + timedelta(days=days)).isoformat())
datetimes = st.builds(
    lambda hours, seconds: (NOW + timedelta(hours=hours, seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    st.integers(-24 * 40, 24),
    st.sampled_from([-1, 0, 1]),
)
items = st.sampled_from(["a", "b", "c"])
VALUES = {
    "string": texts,
    "number": numbers,
    "boolean": st.booleans(),
    "date": dates,
    "datetime": datetimes,
    "string_list": st.lists(items, max_size=3, unique=True),
}


def observed(people, name, type_) -> list:
    """The values the people have for an attribute: rules drawn from them hit equalities and boundaries."""
    if name == "created_at":
        found = [person["created_at"].strftime("%Y-%m-%dT%H:%M:%SZ") for person in people]
    elif name in BUILTINS:
        found = [person[name] for person in people if person[name]]
    else:
        found = [person["attributes"][name] for person in people if person["attributes"].get(name) is not None]
    if type_ == "string_list":
        return sorted({item for items_ in found for item in items_})
    return found


def periods(values, type_):
    """Amounts of time that put a period's start exactly on a value (or one step off it)."""
    amounts = []
    for value in values:
        if type_ == "date":
            amounts.append(("days", (NOW.date() - date.fromisoformat(value)).days))
        else:
            moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            amounts.append(("hours", round((NOW - moment).total_seconds() / 3600)))
            amounts.append(("days", round((NOW - moment).total_seconds() / 86400)))
    return [(unit, amount + step) for unit, amount in amounts for step in (-1, 0, 0, 1) if 1 <= amount + step <= 10_000]


@st.composite
def comparisons(draw, people):
    # Dates and times twice: their periods have the most boundaries.
    candidates = sorted({**SCHEMA, **BUILTINS}.items())
    name, type_ = draw(st.sampled_from(candidates + [(n, t) for n, t in candidates if t in ("date", "datetime")]))
    seen = observed(people, name, type_)
    pool = items if type_ == "string_list" else VALUES[type_]
    scalar = st.one_of(st.sampled_from(seen), pool) if seen else pool
    op = draw(st.sampled_from(OPERATORS[type_]))
    if op == "exists":
        return {"attribute": name, "op": op}
    if op in ("in", "not_in", "contains_any"):
        value = draw(st.lists(scalar, min_size=1, max_size=3))
    elif op == "between":
        value = sorted(draw(st.lists(scalar, min_size=2, max_size=2)))
    elif op in ("in_last", "more_than_ago"):
        units = PERIOD_UNITS if type_ == "datetime" else [unit for unit in PERIOD_UNITS if unit != "hours"]
        exact = periods(seen, type_) if type_ in ("date", "datetime") else []
        drawn = st.tuples(st.sampled_from(units), st.integers(1, 40))
        unit, amount = draw(st.one_of(st.sampled_from(exact), drawn) if exact else drawn)
        value = {"amount": amount, "unit": unit}
    else:
        value = draw(scalar)
    return {"attribute": name, "op": op, "value": value}


consent_tests = st.builds(
    lambda channel, state: {"consent": {"channel": channel, "state": state}},
    st.sampled_from(CHANNELS),
    st.sampled_from(["opted_in", "opted_out", "unknown"]),
)
memberships = st.sampled_from(["list", "rule", "all"]).map(lambda name: {"member_of": name})


def rules(people):
    return st.recursive(
        st.one_of(comparisons(people), comparisons(people), comparisons(people), consent_tests, memberships),
        lambda children: st.one_of(
            st.lists(children, max_size=3).map(lambda nodes: {"all": nodes}),
            st.lists(children, min_size=1, max_size=3).map(lambda nodes: {"any": nodes}),
            children.map(lambda node: {"not": node}),
        ),
        max_leaves=6,
    )


@st.composite
def profiles(draw):
    attributes = {}
    for name, type_ in SCHEMA.items():
        value = draw(st.one_of(st.just(MISSING), st.none(), VALUES[type_]))
        if value is not MISSING:
            attributes[name] = value  # None: a JSON null, which counts as missing
    return {
        "attributes": attributes,
        "email": draw(st.sampled_from(["", "a@example.com", "ab@example.org"])),
        "locale": draw(st.sampled_from(["", "a", "fr-FR"])),
        "created_at": NOW
        + timedelta(hours=draw(st.integers(-24 * 40, 24)), microseconds=draw(st.integers(-2_000_000, 2_000_000))),
        "consents": {
            channel: state
            for channel in CHANNELS
            if (state := draw(st.sampled_from([None, "opted_in", "opted_out", "unknown"])))
        },
        "listed": draw(st.booleans()),
    }


@pytest.fixture
def world(db):
    for name, type_ in SCHEMA.items():
        Definition.objects.create(name=name, type=type_)
    listed = Audience.objects.create(name="List", kind=Audience.Kind.UPLOADED)
    rule = Audience.objects.create(name="Rule", rule={"attribute": "n", "op": "gt", "value": 1})
    everyone = Audience.objects.create(name="All", kind=Audience.Kind.ALL)
    return {"list": listed, "rule": rule, "all": everyone}


def with_audience_ids(rule, audiences):
    if isinstance(rule, dict):
        if "member_of" in rule:
            return {"member_of": audiences[rule["member_of"]].pk}
        return {key: with_audience_ids(value, audiences) for key, value in rule.items()}
    if isinstance(rule, list):
        return [with_audience_ids(item, audiences) for item in rule]
    return rule


@settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=st.lists(profiles(), min_size=1, max_size=10), data=st.data())
def test_the_compiled_query_agrees_with_the_python_evaluator(world, people, data):
    # Many single comparisons (where a boundary shows) and a few trees, against the same profiles.
    drawn_rules = [
        *data.draw(st.lists(comparisons(people), min_size=30, max_size=30), label="comparisons"),
        *data.draw(st.lists(rules(people), min_size=4, max_size=4), label="rules"),
    ]
    with transaction.atomic():
        created = []
        for person in people:
            profile = Profile.objects.create(
                email=person["email"], locale=person["locale"], attributes=person["attributes"]
            )
            Profile.objects.filter(pk=profile.pk).update(created_at=person["created_at"])
            Consent.objects.bulk_create(
                Consent(profile=profile, channel=channel, state=state) for channel, state in person["consents"].items()
            )
            if person["listed"]:
                AudienceMember.objects.create(audience=world["list"], profile=profile)
            profile.refresh_from_db()
            created.append((profile, person))

        in_rule_audience = parse_rule(world["rule"].rule)
        for drawn in drawn_rules:
            rule = parse_rule(with_audience_ids(drawn, world))
            selected = set(Profile.objects.filter(compile_rule(rule, now=NOW)).values_list("pk", flat=True))
            expected = set()
            for profile, person in created:
                consents = person["consents"]
                member_of = {world["all"].pk}
                if person["listed"]:
                    member_of.add(world["list"].pk)
                if evaluate(in_rule_audience, profile, consents=consents, memberships=set(), now=NOW):
                    member_of.add(world["rule"].pk)
                if evaluate(rule, profile, consents=consents, memberships=member_of, now=NOW):
                    expected.add(profile.pk)
            assert selected == expected, f"rule {drawn} on {[person for _, person in created]}"

            # A keyset page's bound, and a rule on the uploaded list (evaluated through the list's rows).
            cut = created[len(created) // 2][0].pk
            paged = Profile.objects.filter(compile_rule(rule, now=NOW, after_id=cut)).values_list("pk", flat=True)
            assert set(paged) == {pk for pk in expected if pk > cut}, f"rule {drawn} after {cut}"
            on_list = parse_rule({"all": [{"member_of": world["list"].pk}, with_audience_ids(drawn, world)]})
            listed = {profile.pk for profile, person in created if person["listed"]}
            rows = list_members(on_list, now=NOW, after_id=cut).values_list("profile_id", flat=True)
            assert set(rows) == {pk for pk in expected & listed if pk > cut}, f"rule {drawn} on the list"
        transaction.set_rollback(True)
