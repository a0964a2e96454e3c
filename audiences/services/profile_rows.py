"""How the rows that profiles_upsert decided reach the tables. New rows: on PostgreSQL one COPY a table, the new
profiles' ids taken from the sequence first so that their identities and consent are written in the same pass;
on SQLite, where the quick start runs and speed matters less, the ORM's bulk statements. Changed rows: one
UPDATE ... FROM unnest(...) a table on both (config.rawsql.update).

Every function writes inside the caller's transaction. A unique violation (another process stored one of the
identities a moment ago) comes back as django.db.IntegrityError on both databases, so the caller can read
again and retry.
"""

from collections.abc import Iterable, Sequence
from datetime import datetime

from django.db import connection
from django.db.models import Q

from audiences.models import AudienceMember, Consent, ConsentEvent, Identity, Profile
from config import rawsql

PROFILE_FIELDS = ("email", "phone", "attributes", "timezone", "locale")


def identity_owners(pairs: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """(namespace, value) -> profile id of those of `pairs` that are stored, in one query.

    On PostgreSQL one index probe per pair, whatever the statistics say: as a plain join, a table that grew
    since it was last analyzed (during a large import) was hashed whole, 60 ms a chunk at 150,000 identities
    and growing with the table; LIMIT 1 (identities are unique) keeps the planner from flattening the probe."""
    if not pairs:
        return {}
    if not _postgresql():
        by_namespace: dict[str, list[str]] = {}
        for namespace, value in sorted(pairs):
            by_namespace.setdefault(namespace, []).append(value)
        query = Q()
        for namespace, values in by_namespace.items():
            query |= Q(namespace=namespace, value__in=values)
        rows = Identity.objects.filter(query).values_list("namespace", "value", "profile_id")
        return {(namespace, value): profile_id for namespace, value, profile_id in rows}
    namespaces, values = zip(*pairs, strict=True)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT u.namespace, u.value, i.profile_id
              FROM unnest(%s::text[], %s::text[]) AS u(namespace, value)
             CROSS JOIN LATERAL (
                   SELECT profile_id FROM audiences_identity
                    WHERE namespace = u.namespace AND value = u.value
                    LIMIT 1
                   ) AS i
            """,
            [rawsql.text_array(namespaces), rawsql.text_array(values)],
        )
        return {(namespace, value): profile_id for namespace, value, profile_id in cursor.fetchall()}


def profiles_insert(profiles: Sequence[Profile], *, now: datetime) -> None:
    """Insert new profiles (created_at = updated_at = now) and set their pk."""
    for profile in profiles:
        profile.created_at = profile.updated_at = now
    if not _postgresql() or not profiles:
        Profile.objects.bulk_create(profiles)
        return
    with connection.cursor() as cursor, connection.wrap_database_errors:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('audiences_profile', 'id')) FROM generate_series(1, %s)",
            [len(profiles)],
        )
        for profile, (pk,) in zip(profiles, cursor.fetchall(), strict=True):
            profile.pk = pk
        rows = ((p.pk, p.email, p.phone, _json(p.attributes), p.timezone, p.locale, now, now) for p in profiles)
        _copy(cursor, "audiences_profile", ("id", *PROFILE_FIELDS, "created_at", "updated_at"), rows)


def profiles_update(profiles: Sequence[Profile], *, now: datetime) -> None:
    """Write the addresses, attributes, zone and locale of existing profiles, and updated_at = now: one
    `UPDATE ... FROM unnest(...)` (config.rawsql.update)."""
    for profile in profiles:
        profile.updated_at = now
    rawsql.update(Profile, list(profiles), [*PROFILE_FIELDS, "updated_at"])


def identities_insert(identities: Sequence[tuple[int, str, str]]) -> None:
    """Insert (profile id, namespace, value) identities. IntegrityError if one is held already."""
    if not _postgresql() or not identities:
        Identity.objects.bulk_create(
            Identity(profile_id=profile_id, namespace=namespace, value=value)
            for profile_id, namespace, value in identities
        )
        return
    with connection.cursor() as cursor, connection.wrap_database_errors:
        _copy(cursor, "audiences_identity", ("profile_id", "namespace", "value"), identities)


def consent_write(
    *,
    created: Sequence[tuple[int, str, str]],
    updated: Sequence[tuple[int, str]],
    events: Sequence[tuple[int, str, str]],
    source: str,
    now: datetime,
) -> None:
    """Insert new consent rows (profile id, channel, state) and history events (the same), and write the new
    state of changed rows (consent id, state); all with `source` and the time `now`."""
    rawsql.update(
        Consent,
        [Consent(pk=pk, state=state, source=source, updated_at=now) for pk, state in updated],
        ["state", "source", "updated_at"],
    )
    if not _postgresql():
        Consent.objects.bulk_create(
            Consent(profile_id=profile_id, channel=channel, state=state, source=source, updated_at=now)
            for profile_id, channel, state in created
        )
        ConsentEvent.objects.bulk_create(
            ConsentEvent(profile_id=profile_id, channel=channel, state=state, source=source, created_at=now)
            for profile_id, channel, state in events
        )
        return
    with connection.cursor() as cursor, connection.wrap_database_errors:
        if created:
            rows = ((*row, source, now) for row in created)
            _copy(cursor, "audiences_consent", ("profile_id", "channel", "state", "source", "updated_at"), rows)
        if events:
            rows = ((*row, source, now) for row in events)
            _copy(cursor, "audiences_consentevent", ("profile_id", "channel", "state", "source", "created_at"), rows)


def members_add(audience_id: int, profile_ids: Sequence[int]) -> None:
    """Make the profiles members of the uploaded list; those that are already stay as they are (one
    INSERT ... ON CONFLICT DO NOTHING)."""
    AudienceMember.objects.bulk_create(
        (AudienceMember(audience_id=audience_id, profile_id=profile_id) for profile_id in profile_ids),
        ignore_conflicts=True,
    )


def _postgresql() -> bool:
    return connection.vendor == "postgresql"


def _json(value):
    from psycopg.types.json import Jsonb

    return Jsonb(value)


def _copy(cursor, table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """COPY `rows` into `table` through psycopg's COPY protocol (the raw cursor under Django's wrapper)."""
    statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with cursor.cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
