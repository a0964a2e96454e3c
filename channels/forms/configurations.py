"""Forms of the channel configuration pages.

The settings part of a configuration form is generated from the channel's pydantic model (channels.schemas):
one input per model field, chosen by its type, with its description as help text and its bounds as input
attributes. The form only reads the inputs; the pydantic model validates them, and each of its errors is shown
next to the field it names. Secret fields (SECRET_FIELDS) are write-only: their inputs never render a value, a
blank one keeps the stored secret, and a "clear" checkbox removes it.
"""

import enum
import json
import re
import types
from dataclasses import dataclass
from typing import Annotated, Literal, Union, get_args, get_origin

from django import forms
from pydantic import BaseModel, SecretStr, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from audiences.models import Channel, Profile
from channels.models import ChannelConfiguration
from channels.schemas import SECRET_FIELDS, SETTINGS_MODELS, entry_context
from channels.secrets import decrypt_secrets
from config import untrusted

# Secrets that span lines (a service-account JSON file, a PEM private key) get a text area. A field may also ask
# for one with Field(json_schema_extra={"multiline": True}).
_MULTILINE_NAMES = re.compile(r"private_key|service_account|credentials|certificate|_json$|_pem$")
_URL_NAMES = re.compile(r"(^|_)(url|endpoint|uri)$")
# Choice labels where the value alone reads badly.
_CHOICE_LABELS = {"none": "None", "starttls": "STARTTLS", "tls": "TLS (implicit)"}
_ACRONYMS = {"api": "API", "dkim": "DKIM", "fcm": "FCM", "id": "ID", "json": "JSON", "sid": "SID", "smtp": "SMTP"}
_ACRONYMS |= {"sms": "SMS", "tls": "TLS", "uri": "URI", "url": "URL"}
_VALUE_ERROR_PREFIX = re.compile(r"^(Value|Assertion) error, ")
CLEAR_SUFFIX = "__clear"


class WriteOnlyTextarea(forms.Textarea):
    """A text area that never renders a value, not even the one just posted."""

    def format_value(self, value):
        return None


@dataclass(frozen=True)
class SettingSpec:
    """How one field of a settings model is edited."""

    name: str
    kind: str  # text, url, number, integer, choice, bool, secret, lines, json
    nullable: bool
    info: FieldInfo
    choices: tuple = ()
    multiline: bool = False

    @property
    def label(self) -> str:
        if self.info.title:
            return self.info.title
        words = [_ACRONYMS.get(word, word) for word in self.name.split("_")]
        return " ".join(words)[:1].upper() + " ".join(words)[1:]


def _unwrap(annotation) -> tuple[object, bool, list]:
    """(the type without None, whether None is allowed, metadata of an inner Annotated)."""
    nullable = False
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        nullable = len(args) < len(get_args(annotation))
        annotation = args[0] if len(args) == 1 else str
    metadata = []
    if get_origin(annotation) is Annotated:
        annotation, *metadata = get_args(annotation)
    return annotation, nullable, metadata


def setting_specs(channel: str) -> list[SettingSpec]:
    """One spec per field of the channel's settings model, in the model's order."""
    model = SETTINGS_MODELS[channel]
    secrets = set(SECRET_FIELDS.get(channel, ()))
    # The channel's own fields first, then those it shares with other channels (timeouts, rate limits).
    own = set(model.__annotations__)
    fields = sorted(model.model_fields.items(), key=lambda item: item[0] not in own)
    specs = []
    for name, info in fields:
        annotation, nullable, _ = _unwrap(info.annotation)
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        choices = ()
        multiline = bool(extra.get("multiline"))
        if name in secrets or annotation is SecretStr:
            kind, multiline = "secret", multiline or bool(_MULTILINE_NAMES.search(name))
        elif annotation is bool:
            kind = "bool"
        elif get_origin(annotation) is Literal:
            kind, choices = "choice", get_args(annotation)
        elif isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            kind, choices = "choice", tuple(member.value for member in annotation)
        elif annotation is int:
            kind = "integer"
        elif annotation is float:
            kind = "number"
        elif annotation is str:
            kind = "url" if _URL_NAMES.search(name) else "text"
            multiline = multiline or bool(_MULTILINE_NAMES.search(name))
        elif get_origin(annotation) in (list, tuple, set, frozenset) and get_args(annotation)[:1] == (str,):
            kind = "lines"
        elif "url" in getattr(annotation, "__name__", "").lower():
            kind = "url"
        else:
            kind = "json"
        specs.append(SettingSpec(name, kind, nullable, info, choices, multiline))
    return specs


def _bounds(spec: SettingSpec) -> dict:
    bounds = {}
    metadata = list(spec.info.metadata) + _unwrap(spec.info.annotation)[2]
    for item in metadata:
        for attr in ("ge", "gt", "le", "lt", "min_length", "max_length"):
            value = getattr(item, attr, None)
            if value is not None:
                bounds[attr] = value
    return bounds


def _default(spec: SettingSpec):
    if spec.info.default is PydanticUndefined and spec.info.default_factory is None:
        return None
    value = spec.info.get_default(call_default_factory=True)
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _help(spec: SettingSpec) -> str:
    return spec.info.description or ""


def _django_field(spec: SettingSpec) -> forms.Field:
    bounds = _bounds(spec)
    required = spec.info.is_required() and not spec.nullable
    common = {"label": spec.label, "help_text": _help(spec)}
    if spec.kind == "bool":
        return forms.BooleanField(required=False, **common)
    if spec.kind == "choice":
        choices = [(str(value), choice_label(value)) for value in spec.choices]
        if spec.nullable or not required and _default(spec) is None:
            choices.insert(0, ("", "—"))
        return forms.ChoiceField(choices=choices, required=required, **common)
    if spec.kind in ("integer", "number"):
        attrs = (
            {"step": "1", "inputmode": "numeric"} if spec.kind == "integer" else {"step": "any", "inputmode": "decimal"}
        )
        for attr, html in (("ge", "min"), ("le", "max")):
            if attr in bounds:
                attrs[html] = bounds[attr]
        # Numbers without None are required: a blank would not mean "the default".
        return forms.CharField(required=not spec.nullable, widget=forms.NumberInput(attrs=attrs), **common)
    if spec.kind == "secret":
        if spec.multiline:
            widget = WriteOnlyTextarea(attrs={"rows": 6, "spellcheck": "false", "class": "code", "autocomplete": "off"})
        else:
            widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})
        return forms.CharField(required=False, strip=False, widget=widget, **common)
    if spec.kind == "lines":
        widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false"})
        return forms.CharField(required=required, widget=widget, **common)
    if spec.kind == "json":
        widget = forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "code"})
        return forms.CharField(required=required, widget=widget, **common)
    attrs = {"spellcheck": "false"}
    if "max_length" in bounds:
        attrs["maxlength"] = bounds["max_length"]
    if spec.multiline:
        widget = forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "code"})
    elif spec.kind == "url":
        widget = forms.URLInput(attrs=attrs)
    else:
        widget = forms.TextInput(attrs=attrs)
    return forms.CharField(required=required, widget=widget, **common)


def choice_label(value) -> str:
    return _CHOICE_LABELS.get(str(value), str(value).replace("_", " "))


def _shown(spec: SettingSpec, value):
    """A stored setting as its input shows it."""
    if value is None:
        return None
    if spec.kind == "lines":
        return "\n".join(str(item) for item in value)
    if spec.kind == "json":
        return json.dumps(value, indent=2, ensure_ascii=False)
    if spec.kind == "choice":
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@dataclass(frozen=True)
class SecretRow:
    """A write-only input, its "clear" checkbox when a value is stored, and whether one is."""

    field: forms.BoundField
    clear: forms.BoundField | None
    is_set: bool
    required: bool


class ConfigurationForm(forms.Form):
    """A configuration's name and its channel's settings; `settings` holds the validated model after is_valid()."""

    name = forms.CharField(max_length=200, help_text="How campaigns and people refer to it, e.g. “Newsletter relay”.")

    def __init__(self, data=None, *, channel: str, configuration: ChannelConfiguration | None = None):
        self.channel = channel
        self.configuration = configuration
        self.specs = setting_specs(channel)
        self._stored_secrets = decrypt_secrets(configuration.encrypted_secrets) if configuration else {}
        super().__init__(data, initial=self._initial())
        self.settings: BaseModel | None = None
        for spec in self.specs:
            field = self.fields[spec.name] = _django_field(spec)
            if spec.kind == "secret" and self.secret_is_set(spec.name):
                field.widget.attrs["placeholder"] = "set — leave blank to keep"
                self.fields[spec.name + CLEAR_SUFFIX] = forms.BooleanField(
                    required=False, label=f"Clear the stored {spec.label.lower()}"
                )

    def _initial(self) -> dict:
        stored = self.configuration.settings if self.configuration else {}
        initial = {"name": self.configuration.name} if self.configuration else {}
        for spec in self.specs:
            if spec.kind == "secret":
                continue
            value = stored[spec.name] if spec.name in stored else _default(spec)
            initial[spec.name] = _shown(spec, value)
        return initial

    def secret_is_set(self, name: str) -> bool:
        return bool(self._stored_secrets.get(name))

    # For the template: the settings inputs in the model's order, then the write-only ones with their clear box.

    def settings_fields(self) -> list:
        return [self[spec.name] for spec in self.specs if spec.kind != "secret"]

    def secret_rows(self) -> list[SecretRow]:
        rows = []
        for spec in self.specs:
            if spec.kind == "secret":
                clear = self[spec.name + CLEAR_SUFFIX] if spec.name + CLEAR_SUFFIX in self.fields else None
                is_set = self.secret_is_set(spec.name)
                rows.append(SecretRow(self[spec.name], clear, is_set, spec.info.is_required() and not is_set))
        return rows

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        others = ChannelConfiguration.objects.filter(name__iexact=name)
        if self.configuration is not None:
            others = others.exclude(pk=self.configuration.pk)
        if others.exists():
            raise forms.ValidationError("Another configuration has this name: choose another.", code="unique")
        return name

    def clean(self):
        data = super().clean()
        values = {}
        for spec in self.specs:
            if spec.name in self.errors:
                continue
            try:
                present, value = self._value(spec, data)
            except ValueError as error:
                self.add_error(spec.name, str(error))
                continue
            if present:
                values[spec.name] = value
        try:
            self.settings = SETTINGS_MODELS[self.channel].model_validate(values, context=entry_context())
        except ValidationError as error:
            self._add_settings_errors(error, values)
        return data

    def _value(self, spec: SettingSpec, data: dict) -> tuple[bool, object]:
        """(whether the model gets a value for this field, the value) from the cleaned input."""
        raw = data.get(spec.name)
        if spec.kind == "secret":
            if data.get(spec.name + CLEAR_SUFFIX):
                return True, None if spec.nullable else ""
            if raw:
                return True, raw.strip() if not spec.multiline else raw.strip("\r\n")
            stored = self._stored_secrets.get(spec.name)
            return (True, stored) if stored else (False, None)
        if spec.kind == "bool":
            return True, bool(raw)
        if raw in (None, ""):
            if spec.nullable:
                return True, None
            return (False, None) if spec.kind != "text" else (True, "")
        if spec.kind == "choice":
            by_text = {str(value): value for value in spec.choices}
            return True, by_text.get(raw, raw)
        if spec.kind in ("integer", "number"):
            for convert in (int, float) if spec.kind == "integer" else (float,):
                try:
                    return True, convert(raw)
                except ValueError:
                    pass
            return True, raw  # the model says what is wrong with it
        if spec.kind == "lines":
            return True, [line.strip() for line in raw.splitlines() if line.strip()]
        if spec.kind == "json":
            try:
                return True, untrusted.loads(raw, max_bytes=100_000)
            except untrusted.UntrustedInputError as error:
                where = f" (at {error.where})" if error.where else ""
                raise ValueError(f"Enter valid JSON: the value {error.problem}{where}.") from None
        return True, raw

    def _add_settings_errors(self, error: ValidationError, values: dict) -> None:
        secrets = [
            value for name, value in {**self._stored_secrets, **values}.items() if self._is_secret(name) and value
        ]
        for item in error.errors(include_url=False, include_input=False):
            loc = item["loc"]
            field = loc[0] if loc and loc[0] in self.fields else None
            if field is not None and self.has_error(field):
                continue
            message = _message(item)
            if len(loc) > 1 or (loc and field is None):
                where = ".".join(str(part) for part in (loc[1:] if field else loc))
                message = f"{where}: {message}"
            for secret in secrets:
                message = message.replace(str(secret), "[secret]")
            self.add_error(field, message)

    def _is_secret(self, name: str) -> bool:
        return any(spec.name == name and spec.kind == "secret" for spec in self.specs)


def _message(item: dict) -> str:
    if item["type"] == "missing":
        return "This field is required."
    message = _VALUE_ERROR_PREFIX.sub("", item["msg"])
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


# Send test -------------------------------------------------------------------------------------------------

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")


class SendTestForm(forms.Form):
    """Where a test message goes: an address that suits the channel, the profile whose inbox gets it (in-app),
    or nothing when the configuration itself says where (a webhook's URL)."""

    ADDRESS = {
        Channel.EMAIL: ("Email address", "email", "The test message is sent to this address."),
        Channel.SMS: ("Phone number", "tel", "In international format, e.g. +33612345678."),
        Channel.PUSH: ("Device token", "text", "The FCM registration token of a device of yours."),
        Channel.IN_APP: ("Profile ID", "text", "The test message goes into this profile's inbox, e.g. yours."),
    }

    def __init__(self, data=None, *, channel: str):
        super().__init__(data)
        self.channel = channel
        if channel in self.ADDRESS:
            label, input_type, help_text = self.ADDRESS[channel]
            widget = forms.TextInput(attrs={"type": input_type, "spellcheck": "false", "autocomplete": "off"})
            self.fields["to"] = forms.CharField(label=label, max_length=4096, help_text=help_text, widget=widget)

    def clean_to(self) -> str:
        to = self.cleaned_data["to"].strip()
        if self.channel == Channel.EMAIL and not _EMAIL.match(to):
            raise forms.ValidationError("Enter an email address, e.g. you@example.com.")
        if self.channel == Channel.SMS:
            to = re.sub(r"[\s().-]", "", to)
            if not _PHONE.match(to):
                raise forms.ValidationError("Enter the number in international format, e.g. +33612345678.")
        if self.channel == Channel.PUSH and re.search(r"\s", to):
            raise forms.ValidationError("A device token has no spaces.")
        if self.channel == Channel.IN_APP:
            to = to.removeprefix("#")
            if not re.fullmatch(r"[0-9]{1,18}", to) or not Profile.objects.filter(pk=int(to)).exists():
                raise forms.ValidationError("Enter the ID of a profile, as its page shows it (e.g. 42).")
        return to

    @property
    def address(self) -> str:
        return self.cleaned_data.get("to", "")
