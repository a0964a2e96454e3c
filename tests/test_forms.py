from django import forms
from django.core.exceptions import ValidationError

from config.forms import add_service_errors


class _Form(forms.Form):
    name = forms.CharField()
    timezone = forms.CharField()


def _bound():
    form = _Form({"name": "x", "timezone": "UTC"})
    assert form.is_valid()
    return form


def test_messages_land_on_the_fields_they_name_renamed_fields_included():
    form = _bound()
    add_service_errors(
        form,
        ValidationError({"name": "taken", "timezone_name": "unknown zone", "elsewhere": "not a form field"}),
        aliases={"timezone_name": "timezone"},
    )
    assert form.errors["name"] == ["taken"]
    assert form.errors["timezone"] == ["unknown zone"]
    assert form.non_field_errors() == ["not a form field"]


def test_an_error_naming_no_field_goes_above_the_form():
    form = _bound()
    add_service_errors(form, ValidationError("Only an active campaign can be paused."))
    assert form.non_field_errors() == ["Only an active campaign can be paused."]
