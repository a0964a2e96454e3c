"""Model rows read and written with hand-written SQL, for the hot paths where building a statement with the ORM
costs more than running it: on the trigger API, a one-row ORM query took about 0.5 ms of CPU in the web process
and the same statement through a cursor 0.12 ms (docs/benchmarks.md, "Trigger API"). The rows still become model
instances through the fields' own conversions (JSON, dates on SQLite), so the code that uses them does not change.

Only for a few statements a request, each with a test through the code that uses it on both databases; everything
else uses the ORM.
"""

from django.db import connection
from django.db.models import Model


def columns(model: type[Model], names: list[str], alias: str) -> str:
    """`alias.column, ...` (`column, ...` without an alias) for the model's fields `names` (attribute names:
    `campaign_id` for a foreign key)."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{model._meta.get_field(_field_name(model, name)).column}" for name in names)


def instance(model: type[Model], names: list[str], values) -> Model:
    """A model instance from a row's `values` for the fields `names`, converted as the ORM converts them; the
    fields not read are deferred (loaded on first use, by a query: read what the code uses)."""
    converted = {}
    for name, value in zip(names, values, strict=True):
        field = model._meta.get_field(_field_name(model, name))
        if value is not None:
            column = field.get_col(model._meta.db_table)
            for convert in [*connection.ops.get_db_converters(column), *field.get_db_converters(connection)]:
                value = convert(value, column, connection)
        converted[field.attname] = value
    # from_db takes the values in the order of the model's fields.
    ordered = [field.attname for field in model._meta.concrete_fields if field.attname in converted]
    return model.from_db(connection.alias, ordered, [converted[name] for name in ordered])


def insert(model: type[Model], rows: list[Model]) -> None:
    """Insert `rows` (new instances of `model`) in one statement and set their primary keys, as bulk_create does,
    with each field's own preparation (defaults, auto_now_add, JSON); no signals, as bulk_create."""
    if not rows:
        return
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    params = []
    for row in rows:
        # As bulk_create: a foreign key set to an instance saved since takes its primary key now.
        row._prepare_related_fields_for_save(operation_name="insert")
        params.extend(field.get_db_prep_save(field.pre_save(row, True), connection) for field in fields)
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "  # noqa: S608
        f"VALUES {', '.join([placeholders] * len(rows))} RETURNING {quote(model._meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        keys = [key for (key,) in cursor.fetchall()]
    # PostgreSQL and SQLite return the inserted rows' keys in the order of VALUES for a single multi-row INSERT.
    for row, key in zip(rows, keys, strict=True):
        row.pk = key
        row._state.adding = False
        row._state.db = connection.alias


def fetch(model: type[Model], names: list[str], sql: str, params) -> list[Model]:
    """Run `sql`, whose columns are the fields `names` of `model` in that order, and make each row an instance."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [instance(model, names, row) for row in cursor.fetchall()]


def value(model: type[Model], name: str, given):
    """A parameter for a comparison with the field `name`, as the ORM would pass it (a UUID without dashes and a
    date as text on SQLite)."""
    return model._meta.get_field(_field_name(model, name)).get_db_prep_value(given, connection)


def update(model: type[Model], rows: list[Model], names: list[str], *, where: str = "", params=()) -> int:
    """Write the fields `names` of each of `rows` (each its own values) in one statement per 200 rows, `UPDATE ...
    FROM` the rows' values, where `where` also holds (columns of the table as `t.column`). Returns the rows
    written. The ORM's bulk_update writes a CASE WHEN per field, which it builds and compiles per row."""
    if not rows:
        return 0
    fields = [model._meta.pk, *(model._meta.get_field(_field_name(model, name)) for name in names)]
    quote = connection.ops.quote_name
    # PostgreSQL types a VALUES list by its first row: cast it, so a NULL there is a date, not text. SQLite has
    # no column types to match (and a CAST there would turn a date into a number).
    cast = connection.vendor == "postgresql"
    first = "SELECT " + ", ".join(
        f"CAST(%s AS {field.db_type(connection)}) AS {quote(field.column)}" if cast else f"%s AS {quote(field.column)}"
        for field in fields
    )
    other = "SELECT " + ", ".join(["%s"] * len(fields))
    assignments = ", ".join(f"{quote(field.column)} = v.{quote(field.column)}" for field in fields[1:])
    condition = f" AND ({where})" if where else ""
    written = 0
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 200):
            chunk = rows[start : start + 200]
            values = []
            for row in chunk:
                values.extend(field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields)
            # A UNION of one-row SELECTs rather than VALUES: PostgreSQL and SQLite name its columns alike. And no
            # WITH: SQLite's driver gives no row count for a statement that starts with one.
            sql = (
                f"UPDATE {quote(model._meta.db_table)} AS t SET {assignments} "  # noqa: S608
                f"FROM ({' UNION ALL '.join([first] + [other] * (len(chunk) - 1))}) AS v "
                f"WHERE t.{quote(model._meta.pk.column)} = v.{quote(model._meta.pk.column)}{condition}"
            )
            cursor.execute(sql, [*values, *params])
            written += cursor.rowcount
    return written


def _field_name(model: type[Model], name: str) -> str:
    """The field an attribute name belongs to: `campaign_id` is the field `campaign`."""
    for field in model._meta.concrete_fields:
        if field.attname == name:
            return field.name
    return name
