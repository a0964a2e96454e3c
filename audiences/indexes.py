"""Indexes chosen from the attribute schema: one per attribute declared `indexed`, on PostgreSQL.

An attribute is indexed on exactly the expression the rule compiler reads it with, `(attributes -> 'name')`:
a btree for comparisons (equals, in, ranges, dates), a GIN for a list of strings (contains, contains_any).
Indexes are built CONCURRENTLY, so profiles stay writable while a large table is indexed; that cannot run
inside a transaction. SQLite has no such indexes: there it is a no-op.
"""

import hashlib
import logging
import re
from dataclasses import dataclass, field

from django.db import connection

from audiences.models import AttributeDefinition, Profile

log = logging.getLogger(__name__)

INDEX_PREFIX = "profile_attr_"
_SAFE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1


@dataclass
class IndexSync:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def attribute_index_name(name: str, type_: str) -> str:
    """The index's name, from the attribute's name and the index's kind: profile_attr_btree_plan,
    profile_attr_gin_tags (a name too long for PostgreSQL is cut and ends with a hash of the attribute)."""
    kind = "gin" if type_ == AttributeDefinition.Type.STRING_LIST else "btree"
    index_name = f"{INDEX_PREFIX}{kind}_{name}"
    if len(index_name) > _MAX_IDENTIFIER:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        index_name = f"{index_name[: _MAX_IDENTIFIER - 9]}_{digest}"
    return index_name


def attribute_index_sql(name: str, type_: str) -> str:
    """CREATE INDEX for one attribute. The name is a validated attribute name, so it is safe as a literal."""
    if not _SAFE_NAME.match(name) or "__" in name:
        raise ValueError(f"not an attribute name: {name!r}")
    method = "gin" if type_ == AttributeDefinition.Type.STRING_LIST else "btree"
    quote = connection.ops.quote_name
    return (
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {quote(attribute_index_name(name, type_))} "
        f"ON {quote(Profile._meta.db_table)} USING {method} (({quote('attributes')} -> '{name}'))"
    )


def sync_attribute_indexes() -> IndexSync:
    """Make the attribute indexes on PostgreSQL match the schema: create one for each attribute declared
    `indexed` (rebuilding one left invalid by an interrupted build), drop those no longer declared.
    Idempotent; runs outside a transaction (CREATE INDEX CONCURRENTLY). Does nothing on SQLite."""
    done = IndexSync()
    if connection.vendor != "postgresql":
        return done
    if connection.in_atomic_block:
        raise RuntimeError("sync_attribute_indexes() builds indexes CONCURRENTLY: call it outside a transaction")
    wanted = {
        attribute_index_name(name, type_): attribute_index_sql(name, type_)
        for name, type_ in AttributeDefinition.objects.filter(indexed=True).values_list("name", "type")
    }
    existing = existing_attribute_indexes()
    with connection.cursor() as cursor:
        for index_name, valid in existing.items():
            if index_name not in wanted or not valid:
                cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {connection.ops.quote_name(index_name)}")
                done.dropped.append(index_name)
                log.info("dropped attribute index %s", index_name)
        for index_name, sql in wanted.items():
            if existing.get(index_name):
                continue
            cursor.execute(sql)
            done.created.append(index_name)
            log.info("created attribute index %s", index_name)
    return done


def existing_attribute_indexes() -> dict[str, bool]:
    """The attribute indexes on the profile table, by name, with whether each is valid (usable)."""
    if connection.vendor != "postgresql":
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT index_class.relname, pg_index.indisvalid
            FROM pg_index
            JOIN pg_class index_class ON index_class.oid = pg_index.indexrelid
            JOIN pg_class table_class ON table_class.oid = pg_index.indrelid
            WHERE table_class.oid = %s::regclass AND starts_with(index_class.relname, %s)
            """,
            [Profile._meta.db_table, INDEX_PREFIX],
        )
        return dict(cursor.fetchall())
