"""Forms of the import pages: the upload, and the mapping of each column to what it fills.

They check the shape of the input; audiences.services.imports checks the mapping against the schema and stores it.
"""

import json
import re

import phonenumbers
from django import forms
from django.core.exceptions import ValidationError

from audiences import csv_files
from audiences.attributes import attribute_types, infer_type, list_items
from audiences.models import AttributeDefinition, Audience, Channel

NEW = "new"
PREVIEW_SAMPLES = 3  # the first values shown for each column, and split when it fills a list
PREVIEW_CHARACTERS = 500  # of each of them: a cell can be a megabyte long
_SEPARATOR_NAMES = {"|": "vertical bar", ";": "semicolon", ",": "comma"}
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


class TargetSelect(forms.Select):
    """The targets of one column. An option says which identity namespace it fills (data-identity) and whether it
    fills a list attribute (data-list), for the page's script: it offers only mapped identities to match on."""

    def __init__(self, *args, identities: dict[str, str], list_targets: set[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.identities = identities
        self.list_targets = list_targets

    def create_option(self, name, value, *args, **kwargs):
        option = super().create_option(name, value, *args, **kwargs)
        if value in self.identities:
            option["attrs"]["data-identity"] = self.identities[value]
        if value in self.list_targets:
            option["attrs"]["data-list"] = "true"
        return option


class MappingForm(forms.Form):
    """One target per column (plus the name and type of a new attribute, read only for a column mapped to a new
    attribute), how rows are read (the identity they are matched on, the separator of list items, strictness),
    the default region of phone numbers, and the uploaded-list audience the profiles join."""

    default_region = forms.CharField(
        label="Default country for phone numbers",
        max_length=2,
        required=False,
        help_text="Two letters (FR, GB, US): reads numbers written without +country code. A country column wins.",
    )
    match_on = forms.ChoiceField(
        label="Match rows to profiles by",
        choices=[],
        initial="email",
        help_text="Rows are matched to profiles on this identity; a column must fill it. The row's other identities "
        "are added only when no other profile holds them; when one does, the report names that field as a "
        "conflict.",
    )
    list_separator = forms.ChoiceField(
        label="Separator between the items of a list",
        choices=[
            (separator, f"{separator} ({_SEPARATOR_NAMES[separator]})") for separator in csv_files.LIST_SEPARATORS
        ],
        initial="|",
        help_text="The cells of columns that fill a list attribute are split into items on this character; spaces "
        "around an item and empty items are dropped. The first values of those columns show the split.",
    )
    strict = forms.BooleanField(
        label="Reject a whole row when one of its fields is invalid",
        required=False,
        help_text="Off: a row with a usable identity is stored without its bad fields, each named in the report. "
        "On: one bad field rejects the row.",
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
        identities = {value: namespace for value, _ in choices if (namespace := _namespace(value))}
        list_targets = {
            f"attribute:{name}"
            for name, type_ in attribute_types().items()
            if type_ == AttributeDefinition.Type.STRING_LIST
        }
        match_on = {"email": "Email", "phone": "Phone"}  # the primary addresses' namespaces, named once
        for value, label in choices:
            if value.startswith("identity:"):
                match_on.setdefault(identities[value], label)
        self.fields["match_on"].choices = list(match_on.items())
        suggestions = _suggestions(header, [value for value, _ in choices])
        mapped = [namespace for target in suggestions if (namespace := identities.get(target))]
        self.fields["match_on"].initial = "email" if "email" in mapped or not mapped else mapped[0]
        for index, column in enumerate(header):
            self.fields[f"target_{index}"] = forms.ChoiceField(
                label=f"What {column} fills",
                choices=choices,
                initial=suggestions[index],
                widget=TargetSelect(identities=identities, list_targets=list_targets),
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

    def separator(self) -> str:
        """The list separator the page shows (the chosen one, or the default while the choice is invalid)."""
        separator = self["list_separator"].value()
        return separator if separator in csv_files.LIST_SEPARATORS else self.fields["list_separator"].initial

    def columns(self):
        """Per column, for the template: its name, its first values, its three fields, and those values split into
        list items with the chosen separator (the page shows them when the column fills a list attribute)."""
        separator = self.separator()
        for index, column in enumerate(self.header):
            samples = [sample[:PREVIEW_CHARACTERS] for sample in self.samples[index][:PREVIEW_SAMPLES]]
            yield {
                "name": column,
                "samples": samples,
                "target": self[f"target_{index}"],
                "new_name": self[f"new_name_{index}"],
                "new_type": self[f"new_type_{index}"],
                "items": [list_items(sample, separator) for sample in samples],
                "samples_json": json.dumps(samples),
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
                # The new-attribute inputs of this column are not read: nothing in them is an error.
                for name in (f"new_name_{index}", f"new_type_{index}"):
                    self.errors.pop(name, None)
                    cleaned.pop(name, None)
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


def _namespace(target: str) -> str | None:
    """The identity namespace a target fills ("email" for the primary email), or None."""
    if target in ("email", "phone"):
        return target
    kind, _, name = target.partition(":")
    return name if kind == "identity" else None


def _suggestions(header: list[str], targets: list[str]) -> list[str]:
    """A first guess at each column's target from its name; "ignore" when nothing fits. The user confirms.

    A declared identity namespace or attribute of the column's name comes first (`country` fills the attribute
    `country` when there is one, not the country of the phone numbers), then the simple targets, then consent.
    The email and phone namespaces are the primary addresses'. Each target is proposed once, to the first column
    that fits it."""
    declared: dict[str, str] = {}
    for target in targets:  # identities are listed before attributes: they win a name both have
        kind, _, name = target.partition(":")
        if kind in ("identity", "attribute") and target not in ("identity:email", "identity:phone"):
            declared.setdefault(_key(name), target)
    suggested, used = [], {"ignore"}
    for column in header:
        key = _key(column)
        candidates = [declared.get(key)]
        candidates += [target for target, names in _SIMPLE_NAMES.items() if key in names]
        candidates += [
            f"consent:{channel}"
            for channel in Channel.values
            if key in (f"{_key(channel)}consent", f"consent{_key(channel)}", f"{_key(channel)}optin")
        ]
        guess = next((target for target in candidates if target and target not in used), "ignore")
        used.add(guess)
        suggested.append(guess)
    return suggested
