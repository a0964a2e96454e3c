"""Attribute indexes follow the schema on PostgreSQL, and the compiled rules can use them."""

import pytest
from django.db import connection, transaction

from audiences.indexes import attribute_index_name, existing_attribute_indexes, sync_attribute_indexes
from audiences.models import AttributeDefinition, Profile
from audiences.selectors.audiences import rule_profiles

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="attribute indexes are PostgreSQL's")


def test_index_names_are_predictable_and_fit_postgresql():
    assert attribute_index_name("plan", "string") == "profile_attr_btree_plan"
    assert attribute_index_name("tags", "string_list") == "profile_attr_gin_tags"
    long = attribute_index_name("a" * 64, "number")
    assert len(long) == 63 and long != attribute_index_name("a" * 63 + "b", "number")


@pytest.mark.both_databases  # so CI's SQLite pass runs it
@pytest.mark.skipif(connection.vendor == "postgresql", reason="SQLite only")
def test_sqlite_has_no_attribute_indexes(db):
    AttributeDefinition.objects.create(name="plan", type="string", indexed=True)
    result = sync_attribute_indexes()
    assert (result.created, result.dropped) == ([], [])


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_sync_creates_declared_indexes_drops_undeclared_and_is_idempotent():
    AttributeDefinition.objects.create(name="plan", type="string", indexed=True)
    AttributeDefinition.objects.create(name="tags", type="string_list", indexed=True)
    AttributeDefinition.objects.create(name="age", type="number")
    assert sorted(sync_attribute_indexes().created) == ["profile_attr_btree_plan", "profile_attr_gin_tags"]
    assert existing_attribute_indexes() == {"profile_attr_btree_plan": True, "profile_attr_gin_tags": True}
    assert sync_attribute_indexes().created == []

    AttributeDefinition.objects.filter(name="plan").update(indexed=False)
    AttributeDefinition.objects.filter(name="age").update(indexed=True)
    result = sync_attribute_indexes()
    assert (result.created, result.dropped) == (["profile_attr_btree_age"], ["profile_attr_btree_plan"])
    AttributeDefinition.objects.all().delete()
    assert sorted(sync_attribute_indexes().dropped) == ["profile_attr_btree_age", "profile_attr_gin_tags"]


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_an_index_left_invalid_by_an_interrupted_build_is_rebuilt():
    AttributeDefinition.objects.create(name="plan", type="string", indexed=True)
    sync_attribute_indexes()
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        if not cursor.fetchone()[0]:
            pytest.skip("marking an index invalid takes a superuser")
        # What a CREATE INDEX CONCURRENTLY interrupted half-way leaves behind.
        cursor.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'profile_attr_btree_plan'::regclass")
    assert existing_attribute_indexes() == {"profile_attr_btree_plan": False}
    result = sync_attribute_indexes()
    assert (result.created, result.dropped) == (["profile_attr_btree_plan"], ["profile_attr_btree_plan"])
    assert existing_attribute_indexes() == {"profile_attr_btree_plan": True}


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_sync_refuses_to_run_inside_a_transaction():
    with transaction.atomic(), pytest.raises(RuntimeError, match="outside a transaction"):
        sync_attribute_indexes()


@postgresql_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("rule", "index"),
    [
        ({"attribute": "plan", "op": "equals", "value": "pro"}, "profile_attr_btree_plan"),
        ({"attribute": "plan", "op": "in", "value": ["pro", "team"]}, "profile_attr_btree_plan"),
        ({"attribute": "age", "op": "gte", "value": 30}, "profile_attr_btree_age"),
        ({"attribute": "age", "op": "lt", "value": 30}, "profile_attr_btree_age"),
        ({"attribute": "signup", "op": "between", "value": ["2025-01-01", "2025-03-31"]}, "profile_attr_btree_signup"),
        (
            {"attribute": "signup", "op": "in_last", "value": {"amount": 30, "unit": "days"}},
            "profile_attr_btree_signup",
        ),
        ({"attribute": "tags", "op": "contains", "value": "vip"}, "profile_attr_gin_tags"),
        ({"attribute": "tags", "op": "contains_any", "value": ["vip", "news"]}, "profile_attr_gin_tags"),
    ],
    ids=lambda case: str(case)[:50],
)
def test_compiled_comparisons_on_indexed_attributes_can_use_their_index(rule, index):
    for name, type_ in (("plan", "string"), ("age", "number"), ("signup", "date"), ("tags", "string_list")):
        AttributeDefinition.objects.create(name=name, type=type_, indexed=True)
    Profile.objects.bulk_create(
        Profile(attributes={"plan": "pro", "age": n, "signup": "2025-02-01", "tags": ["vip"]}) for n in range(50)
    )
    sync_attribute_indexes()
    # Few rows: make the planner show whether the index *can* serve the condition (the benchmark shows it
    # choosing it at 1,000,000 rows).
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = rule_profiles(rule).explain()
    assert index in plan, plan


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_declaring_an_indexed_attribute_builds_its_index_in_a_maintenance_job(redis, personas):
    from audiences.services.attributes import attribute_change, attribute_declare
    from tests.conftest import run_burst_worker

    definition = attribute_declare(actor=personas["ada"], name="tier", type="string", indexed=True)
    # Not in the request: CONCURRENTLY needs a transaction of its own.
    assert "profile_attr_btree_tier" not in existing_attribute_indexes()
    run_burst_worker()
    assert existing_attribute_indexes()["profile_attr_btree_tier"] is True

    attribute_change(
        actor=personas["ada"], definition=definition, type="string", label="", description="", indexed=False
    )
    run_burst_worker()
    assert "profile_attr_btree_tier" not in existing_attribute_indexes()
