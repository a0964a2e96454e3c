"""What the forms of every app share: a service's ValidationError shown on the form that called it, and the
time zone field."""

import zoneinfo
from functools import lru_cache
from importlib import resources

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils.html import format_html, format_html_join


def add_service_errors(form, error: ValidationError, *, aliases: dict[str, str] | None = None) -> None:
    """Put each message next to the field it names (a service argument renamed by `aliases` to its form
    field), or above the form when it names none the form has."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, messages in error.message_dict.items():
        field = (aliases or {}).get(field, field)
        form.add_error(field if field in form.fields and field != NON_FIELD_ERRORS else None, messages)


@lru_cache(maxsize=1)
def canonical_timezones() -> tuple[str, ...]:
    """The IANA time zones a person picks from: those of the tz database's zone.tab (one or more per country,
    e.g. Europe/Paris, America/New_York) and UTC. Not the deprecated aliases (US/Pacific, GB), the fixed offsets
    (Etc/GMT+5) or the rest of the ~600 names `zoneinfo.available_timezones()` knows. Read from the pinned
    `tzdata` package, which zoneinfo falls back on too."""
    known = zoneinfo.available_timezones()
    table = resources.files("tzdata.zoneinfo").joinpath("zone.tab").read_text(encoding="utf-8")
    names = {"UTC"}
    for line in table.splitlines():
        if line and not line.startswith("#"):
            names.add(line.split("\t")[2])
    return tuple(sorted(names & known))


class TimeZoneInput(forms.TextInput):
    """A text input offering the zones of its field in a <datalist>: the browser searches them as one types, with
    no script; the field checks the value against the same list."""

    zones: list[str] = []

    def render(self, name, value, attrs=None, renderer=None):
        list_id = f"{(attrs or {}).get('id') or name}_zones"
        attrs = {"autocomplete": "off", "spellcheck": "false", **(attrs or {}), "list": list_id}
        options = format_html_join("", '<option value="{}"></option>', ((zone,) for zone in self.zones))
        return format_html(
            '{}<datalist id="{}">{}</datalist>', super().render(name, value, attrs, renderer), list_id, options
        )


class TimeZoneField(forms.ChoiceField):
    """One time zone of `canonical_timezones()`, or the zone the form starts from (a zone stored earlier stays
    valid, even a deprecated alias). Case, and spaces for underscores, are forgiven: "america/new york" is
    America/New_York."""

    widget = TimeZoneInput
    default_error_messages = {
        "invalid_choice": "Select a valid choice: a time zone of the list, such as Europe/Paris or UTC.",
    }

    def __init__(self, **kwargs):
        super().__init__(choices=[(zone, zone) for zone in canonical_timezones()], **kwargs)
        self.widget.zones = list(canonical_timezones())

    def get_bound_field(self, form, field_name):
        stored = form.get_initial_for_field(self, field_name)
        if isinstance(stored, str) and stored and not self.valid_value(stored):
            try:
                zoneinfo.ZoneInfo(stored)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                pass
            else:
                self.choices = [(stored, stored), *self.choices]
                self.widget.zones = [stored, *self.widget.zones]
        return super().get_bound_field(form, field_name)

    def to_python(self, value):
        value = super().to_python(value).strip()
        if value and not self.valid_value(value):
            spelled = value.replace(" ", "_").casefold()
            value = next((zone for zone, _ in self.choices if zone.casefold() == spelled), value)
        return value
