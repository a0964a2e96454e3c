"""Showing a service's ValidationError on the form that called it."""

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError


def add_service_errors(form, error: ValidationError, *, aliases: dict[str, str] | None = None) -> None:
    """Put each message next to the field it names (a service argument renamed by `aliases` to its form
    field), or above the form when it names none the form has."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, messages in error.message_dict.items():
        field = (aliases or {}).get(field, field)
        form.add_error(field if field in form.fields and field != NON_FIELD_ERRORS else None, messages)
