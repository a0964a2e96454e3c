"""Writes to the attribute schema: declaring attributes (one on the settings page, or those an import or an
upsert names, in bulk) and changing a declaration. Values of an attribute never mix types."""

from django.core.exceptions import ValidationError
from django.db import transaction

from audiences.models import AttributeDefinition
from audiences.selectors.profiles import attribute_has_values
from config import queues
from permissions.services.audit import audit_record


class AttributeDeclarationError(ValueError):
    """A declared attribute clashes with the schema (same name, other type) or has an invalid name or type."""


def attributes_declare(declared: dict[str, str], *, actor=None) -> None:
    """Create the AttributeDefinition of each declared name -> type that does not exist yet.

    An attribute that exists with the same type is fine; with another type it is an AttributeDeclarationError,
    as is a name or type the schema refuses. Values of an attribute never mix types.
    """
    existing = dict(AttributeDefinition.objects.filter(name__in=list(declared)).values_list("name", "type"))
    for name, type_ in declared.items():
        if name in existing:
            if existing[name] != type_:
                raise AttributeDeclarationError(
                    f"attribute {name!r} is already declared as {existing[name]}, not {type_}"
                )
            continue
        definition = AttributeDefinition(name=name, type=type_, created_by=actor)
        try:
            definition.full_clean()
        except ValidationError as error:
            messages = "; ".join(message for messages in error.message_dict.values() for message in messages)
            raise AttributeDeclarationError(f"attribute {name!r}: {messages}") from None
        definition.save()


@transaction.atomic
def attribute_declare(
    *, actor, name: str, type: str, label: str = "", description: str = "", indexed: bool = False
) -> AttributeDefinition:
    """Declare a new attribute with its one type. Imports and the API then validate values against it."""
    definition = AttributeDefinition(
        name=name.strip(), type=type, label=label.strip(), description=description.strip(), indexed=indexed
    )
    definition.created_by = actor if getattr(actor, "is_authenticated", False) else None
    definition.full_clean()  # the name's pattern, the type's choices, uniqueness
    definition.save()
    if indexed:
        _sync_indexes_on_commit()
    audit_record(
        actor=actor,
        action="attribute.declared",
        obj=definition,
        after={"name": definition.name, "type": type, "indexed": indexed},
    )
    return definition


@transaction.atomic
def attribute_change(
    *, actor, definition: AttributeDefinition, type: str, label: str, description: str, indexed: bool
) -> AttributeDefinition:
    """Change a declared attribute. Its type may change only while no profile holds a value of it, so values
    of one attribute never mix types in storage."""
    definition = AttributeDefinition.objects.select_for_update().get(pk=definition.pk)
    before = {"type": definition.type, "label": definition.label, "indexed": definition.indexed}
    if type != definition.type and attribute_has_values(definition.name):
        raise ValidationError(
            {"type": f"Profiles already hold values of {definition.name}: its type can no longer change."}
        )
    definition.type, definition.label, definition.description, definition.indexed = (
        type,
        label.strip(),
        description.strip(),
        indexed,
    )
    definition.full_clean()
    definition.save()
    after = {"type": definition.type, "label": definition.label, "indexed": definition.indexed}
    if before["indexed"] != after["indexed"] or (definition.indexed and before["type"] != after["type"]):
        _sync_indexes_on_commit()
    if before != after:
        audit_record(actor=actor, action="attribute.changed", obj=definition, before=before, after=after)
    return definition


def _sync_indexes_on_commit() -> None:
    """Build or drop attribute indexes in a maintenance job: CREATE INDEX CONCURRENTLY cannot run in the
    request's transaction, and a large table takes a while. If Redis is down, the next change (or
    `manage.py sync_attribute_indexes`) catches up."""

    queues.enqueue_on_commit(queues.MAINTENANCE, "audiences.jobs.sync_attribute_indexes")
