"""The name attributes the profiles page searches, upper-cased in columns of their own, and their indexes holding
the profile's id, on PostgreSQL (audiences.selectors.profiles._search_condition).

0007 and 0008 indexed expressions (`upper(attributes ->> 'first_name')`). PostgreSQL never reads an expression
index without the table (an index-only scan needs every column the condition names, and `attributes` is in no
index), so a search for `Julie Rou` read 990 table pages for its 1,010 matches: 2.5 of its 4 ms in the database
at a million profiles. A stored generated column is a plain column, and an index on it that includes `id` answers
"which profiles" alone: the same search reads 27 index pages and no table page (a page all-visible since the last
VACUUM; autovacuum keeps most of them so).

`search_name`, `search_full_name`, `search_first_name` and `search_last_name` hold `upper()` of NAME_ATTRIBUTES,
whatever their declared type, computed by PostgreSQL on every write (the indexes computed the same expressions, two
for a pair index). The model does not declare them: SQLite needs none (the quick start's search is correct
without), and no statement of the product writes them (PostgreSQL refuses a value for a generated column). Adding
them rewrites the table and rebuilds every index it has (the attribute indexes of audiences.indexes included), under
a lock that holds reads and writes of profiles meanwhile: 14 s for a million profiles with the benchmark's indexes.
The lock is waited for 5 s at a time, 12 times at most: waiting, the statement would queue every read of profiles
behind a long transaction; then the migration stops, to be run again. The indexes are built CONCURRENTLY, as in
0007, then 0007's name indexes and 0008's pair indexes are dropped: the new ones replace them. Column statistics
of 1,000 buckets, as 0007 gave its indexes (a prefix's estimate picks the search's plan). SQLite: nothing.
"""

import time

from django.db import OperationalError, migrations

NAMES = ("name", "full_name", "first_name", "last_name")
BOTH_NAMES = "search_first_name IS NOT NULL AND search_last_name IS NOT NULL"
INDEXES = {
    # Partial: a profile without the attribute has no entry to write (0007's were full, for the statistics of
    # their expressions; a column has its own). A condition on the start of a name implies the predicate.
    **{
        f"profile_search_by_{name}": f"(search_{name} text_pattern_ops) INCLUDE (id) WHERE search_{name} IS NOT NULL"
        for name in NAMES
    },
    # As 0008's: a pair's condition implies the predicate, a condition on one name does not, so the planner weighs
    # these for pairs only.
    "profile_search_by_first_last": (
        f"(search_first_name text_pattern_ops, search_last_name text_pattern_ops) INCLUDE (id) WHERE {BOTH_NAMES}"
    ),
    "profile_search_by_last_first": (
        f"(search_last_name text_pattern_ops, search_first_name text_pattern_ops) INCLUDE (id) WHERE {BOTH_NAMES}"
    ),
}
# 0007's and 0008's, which the new ones replace (and the reverse builds again).
OLD_INDEXES = {
    **{f"profile_search_{name}": f"(upper(attributes ->> '{name}') text_pattern_ops)" for name in NAMES},
    "profile_search_first_last": (
        "(upper(attributes ->> 'first_name') text_pattern_ops, upper(attributes ->> 'last_name') text_pattern_ops) "
        "WHERE upper(attributes ->> 'first_name') IS NOT NULL AND upper(attributes ->> 'last_name') IS NOT NULL"
    ),
    "profile_search_last_first": (
        "(upper(attributes ->> 'last_name') text_pattern_ops, upper(attributes ->> 'first_name') text_pattern_ops) "
        "WHERE upper(attributes ->> 'first_name') IS NOT NULL AND upper(attributes ->> 'last_name') IS NOT NULL"
    ),
}
STATISTICS_TARGET = 1000
LOCK_WAIT = "5s"
LOCK_ATTEMPTS = 12


def _build(cursor, indexes: dict[str, str]) -> None:
    """CREATE INDEX CONCURRENTLY each, an invalid one (an interrupted build) dropped and built again."""
    cursor.execute(
        """
        SELECT index_class.relname FROM pg_index
        JOIN pg_class index_class ON index_class.oid = pg_index.indexrelid
        WHERE pg_index.indrelid = 'audiences_profile'::regclass AND NOT pg_index.indisvalid
        """
    )
    invalid = {name for (name,) in cursor.fetchall()}
    for name, definition in indexes.items():
        if name in invalid:
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        cursor.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON audiences_profile {definition}")


def _rewrite(cursor, statement: str) -> None:
    """Run the statement that rewrites the table, waiting at most LOCK_WAIT for its lock at each of LOCK_ATTEMPTS
    tries: while it waits, every read and write of profiles queues behind it, so it gives way to a long
    transaction rather than stall the product behind it."""
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        cursor.execute(f"SET lock_timeout = '{LOCK_WAIT}'")
        try:
            cursor.execute(statement)
        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", None) != "55P03":  # not lock_not_available
                raise
            if attempt == LOCK_ATTEMPTS:
                raise OperationalError(
                    f"audiences 0009: another transaction held the profiles table through {LOCK_ATTEMPTS} waits of "
                    f"{LOCK_WAIT}; run migrate again when it has ended"
                ) from error
            time.sleep(1)
        else:
            return
        finally:
            cursor.execute("RESET lock_timeout")


def add_columns(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        _rewrite(
            cursor,
            "ALTER TABLE audiences_profile "
            + ", ".join(
                f"ADD COLUMN IF NOT EXISTS search_{name} text "
                f"GENERATED ALWAYS AS (upper(attributes ->> '{name}')) STORED"
                for name in NAMES
            ),
        )
        cursor.execute(
            "ALTER TABLE audiences_profile "
            + ", ".join(f"ALTER COLUMN search_{name} SET STATISTICS {STATISTICS_TARGET}" for name in NAMES)
        )
        _build(cursor, INDEXES)
        for name in OLD_INDEXES:
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        cursor.execute("ANALYZE audiences_profile")


def drop_columns(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        _build(cursor, OLD_INDEXES)
        for name in OLD_INDEXES:  # as 0007 and 0008 left them
            if name.removeprefix("profile_search_") in NAMES:
                cursor.execute(f"ALTER INDEX {name} ALTER COLUMN 1 SET STATISTICS {STATISTICS_TARGET}")
            else:
                for column in (1, 2):
                    cursor.execute(f"ALTER INDEX {name} ALTER COLUMN {column} SET STATISTICS 0")
        for name in INDEXES:
            cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
        cursor.execute(
            "ALTER TABLE audiences_profile " + ", ".join(f"DROP COLUMN IF EXISTS search_{name}" for name in NAMES)
        )
        cursor.execute("ANALYZE audiences_profile")


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run in a transaction

    dependencies = [("audiences", "0008_profile_search_name_pairs")]

    operations = [migrations.RunPython(add_columns, drop_columns, elidable=False)]
