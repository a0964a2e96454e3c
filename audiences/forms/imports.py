"""Forms of the import pages: the upload, and the mapping of each column to what it fills.

They check the shape of the input; audiences.services.imports checks the mapping against the schema and stores it.
"""

import re

import phonenumbers
from django import forms
from django.core.exceptions import ValidationError

from audiences import csv_files
from audiences.attributes import infer_type
from audiences.models import AttributeDefinition, Audience, Channel

NEW = "new"
_ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_SIMPLE_NAMES = {
    "email": {"email", "emailaddress", "mail", "courriel", "primaryemail"},
    "phone": {"phone", "phonenumber", "mobile", "mobilephone", "cell", "tel", "telephone", "msisdn", "sms"},
    "country": {"country", "countrycode", "pays"},
    "timezone": {"timezone", "tz", "zone"},
    "locale": {"locale", "language", "lang", "langue"},
}


class UploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8 text (with or without a BOM), separated by commas, semicolons or tabs, with a header line.",
    )


class MappingForm(forms.Form):
    """One target per column (plus the name and type of a new attribute), the default region of phone numbers,
    and the uploaded-list audience the profiles join."""

    default_region = forms.CharField(
        label="Default country for phone numbers",
        max_length=2,
        required=False,
        help_text="Two letters (FR, GB, US): reads numbers written without +country code. A country column wins.",
    )
    audience_choice = forms.ChoiceField(
        label="Add the profiles to a list",
        choices=[("none", "No"), ("existing", "An existing uploaded list"), ("new", "A new uploaded list")],
        initial="none",
        widget=forms.RadioSelect,
    )
    audience = forms.ModelChoiceField(
        queryset=Audience.objects.filter(kind=Audience.Kind.UPLOADED), required=False, label="Existing list"
    )
    new_audience_name = forms.CharField(max_length=200, required=False, label="Name of the new list")

    def __init__(self, *args, header: list[str], samples: list[list[str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.header = header
        self.samples = samples
        choices = [*csv_files.target_choices(), (NEW, "New attribute…")]
        suggestions = _suggestions(header, {value for value, _ in choices})
        for index, column in enumerate(header):
            self.fields[f"target_{index}"] = forms.ChoiceField(
                label=f"What {column} fills", choices=choices, initial=suggestions[index]
            )
            self.fields[f"new_name_{index}"] = forms.CharField(
                label="Attribute name", required=False, max_length=64, initial=_attribute_name(column)
            )
            self.fields[f"new_type_{index}"] = forms.ChoiceField(
                label="Type",
                choices=AttributeDefinition.Type.choices,
                initial=infer_type(samples[index]),
                help_text="Guessed from the first values of the file: check it.",
            )

    def columns(self):
        """Per column, for the template: its name, a few sample values and its three fields."""
        for index, column in enumerate(self.header):
            yield {
                "name": column,
                "samples": self.samples[index][:3],
                "target": self[f"target_{index}"],
                "new_name": self[f"new_name_{index}"],
                "new_type": self[f"new_type_{index}"],
            }

    def clean_default_region(self):
        region = self.cleaned_data["default_region"].strip().upper()
        if region and region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValidationError(f"{region} is not a country code phone numbers know.")
        return region

    def clean(self):
        cleaned = super().clean()
        mapping, new_attributes = {}, {}
        for index, column in enumerate(self.header):
            target = cleaned.get(f"target_{index}")
            if target != NEW:
                mapping[column] = target
                continue
            name = (cleaned.get(f"new_name_{index}") or "").strip()
            if not _ATTRIBUTE_NAME.match(name) or "__" in name:
                self.add_error(
                    f"new_name_{index}",
                    "Use lower-case letters, digits and single underscores, starting with a letter.",
                )
            elif name in {attribute for attribute, _ in new_attributes.values()}:
                self.add_error(f"new_name_{index}", f"Two columns declare the attribute {name}.")
            new_attributes[column] = (name, cleaned.get(f"new_type_{index}"))
        choice = cleaned.get("audience_choice")
        if choice == "existing" and not cleaned.get("audience"):
            self.add_error("audience", "Choose the list.")
        if choice == "new" and not cleaned.get("new_audience_name", "").strip():
            self.add_error("new_audience_name", "Name the new list.")
        cleaned["mapping"] = mapping
        cleaned["new_attributes"] = new_attributes
        return cleaned


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _attribute_name(column: str) -> str:
    name = re.sub(r"[^a-z0-9]+", "_", column.lower()).strip("_")
    name = re.sub(r"_+", "_", name)
    if not name or not name[0].isalpha():
        name = f"a_{name}".rstrip("_")
    return name[:64]


def _suggestions(header: list[str], targets: set[str]) -> list[str]:
    """A first guess at each column's target from its name; "ignore" when nothing fits. The user confirms."""
    suggested, used = [], set()
    for column in header:
        key, guess = _key(column), "ignore"
        for target, names in _SIMPLE_NAMES.items():
            if key in names:
                guess = target
        for kind in ("identity", "attribute"):
            candidate = f"{kind}:{_attribute_name(column)}"
            if guess == "ignore" and candidate in targets:
                guess = candidate
        for channel in Channel.values:
            if key in (f"{_key(channel)}consent", f"consent{_key(channel)}", f"{_key(channel)}optin"):
                guess = f"consent:{channel}"
        if guess in used:
            guess = "ignore"
        used.add(guess)
        suggested.append(guess)
    return suggested
