"""Indexes for the profiles page's search (audiences.selectors.profiles.profiles_search), on PostgreSQL.

Each is on exactly the expression Django compiles the search to: `UPPER(email) LIKE UPPER('zoe.m%')` for the start
of an email, `UPPER(attributes ->> 'first_name') LIKE ...` for the start of a name, `phone IN (...)`. The
`text_pattern_ops` operator class lets a LIKE prefix use the index whatever the database's collation. Identities are
found by the (namespace, value) unique index that exists already.

They are expressions the model's Meta cannot declare for PostgreSQL alone (`OpClass` needs django.contrib.postgres
and breaks SQLite), so this migration creates them itself and leaves the model's state unchanged. Built
CONCURRENTLY (profiles stay writable while a large table is indexed), so outside a transaction; an index left
invalid by an interrupted build is built again. Names never start with `profile_attr_`: those are the attribute
indexes audiences.indexes keeps in step with the schema, and drops when undeclared. SQLite: nothing (the quick
start's search is correct there without them).
"""

from django.db import migrations

STATISTICS_TARGET = 1000
INDEXES = {
    "profile_search_email": "(upper(email) text_pattern_ops)",
    "profile_search_phone": "(phone)",
    # NAME_ATTRIBUTES of the search. Not partial: the planner keeps statistics of a full expression index only,
    # and they tell it how many rows a name prefix matches.
    "profile_search_name": "(upper(attributes ->> 'name') text_pattern_ops)",
    "profile_search_full_name": "(upper(attributes ->> 'full_name') text_pattern_ops)",
    "profile_search_first_name": "(upper(attributes ->> 'first_name') text_pattern_ops)",
    "profile_search_last_name": "(upper(attributes ->> 'last_name') text_pattern_ops)",
}


def create_indexes(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT index_class.relname FROM pg_index
            JOIN pg_class index_class ON index_class.oid = pg_index.indexrelid
            WHERE pg_index.indrelid = 'audiences_profile'::regclass AND NOT pg_index.indisvalid
            """
        )
        invalid = {name for (name,) in cursor.fetchall()}
        for name, expression in INDEXES.items():
            if name in invalid:
                cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            cursor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON audiences_profile {expression}")
            if name != "profile_search_phone":
                # A finer histogram of the prefixes (1,000 buckets, not 100): the search picks its plan by how many
                # rows a prefix matches, and with 100 buckets of 10,000 profiles each that estimate was 10x off.
                cursor.execute(f"ALTER INDEX {name} ALTER COLUMN 1 SET STATISTICS {STATISTICS_TARGET}")
        # The planner's statistics of the new expressions: without them it guesses that a prefix matches 0.5% of
        # the profiles, and walks the whole table backwards for a search that matches none.
        cursor.execute("ANALYZE audiences_profile")


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for name in INDEXES:
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("audiences", "0006_import_per_field")]

    operations = [migrations.RunPython(create_indexes, drop_indexes, elidable=False)]
