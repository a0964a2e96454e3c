"""ProfileInput: one profile as the API and imports give it, validated and normalized against the schema in use
(identity namespaces, declared attributes).

Validate with the schema as context, loaded once per batch:

    schema = ProfileSchema.load(default_region="FR")
    ProfileInput.model_validate(data, context={"schema": schema})

Errors name the field: ("email",), ("attributes", "city"), ("identities", "crm_id"), ("phone",), ...
Without a context the schema is read from the database for each validation: fine for one profile, slow for many.
"""

import functools
import re
import unicodedata
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from audiences.attributes import AttributeValueError, coerce
from audiences.models import AttributeDefinition, Channel, Consent, IdentityNamespace
from config import untrusted

MAX_EMAIL = 254
# What an error repeats of a name from the input (the longest namespace or attribute name fits) and of a problem.
MAX_NAME_SHOWN = 64
MAX_PROBLEM_SHOWN = 200
MAX_IDENTITY = 320
_ATEXT = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def excerpt(value: object, limit: int = 40) -> str:
    """`value` quoted for a message, cut to `limit` characters: an input can be a megabyte long."""
    return repr(untrusted.excerpt(value, limit))


class EmailError(ValueError):
    """Not an email address we can send to; the message says why."""


class PhoneError(ValueError):
    """Not a phone number; the message says why."""


def normalize_email(value: str) -> str:
    """The address with its domain in lower case (Unicode form, as IDNA decodes it), the local part kept as given.

    Internationalized addresses (RFC 6531: UTF-8 in the local part, IDNA domains) are accepted. Quoted local
    parts, comments and IP-address domains are refused: no marketing list needs them and few relays take them.
    """
    text = unicodedata.normalize("NFC", value.strip())
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain:
        raise EmailError("not an email address: an @ between a name and a domain is needed")
    if len(local.encode()) > 64:
        raise EmailError("the part before @ is longer than 64 bytes")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise EmailError("the part before @ has a misplaced dot")
    for char in local:
        if char not in _ATEXT and char != "." and (ord(char) < 128 or not char.isprintable() or char.isspace()):
            raise EmailError(f"the character {char!r} is not allowed before @")
    domain = _normalize_domain(domain)
    address = f"{local}@{domain}"
    if len(address) > MAX_EMAIL:
        raise EmailError(f"longer than {MAX_EMAIL} characters")
    return address


def _normalize_domain(domain: str) -> str:
    if domain.startswith("["):
        raise EmailError("IP addresses are not accepted as a domain")
    try:
        ascii_domain = domain.lower().encode("idna").decode("ascii")
    except UnicodeError:
        raise EmailError(f"{excerpt(domain)} is not a valid domain name") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2:
        raise EmailError(f"the domain {excerpt(domain)} has no dot: a full domain such as example.com is needed")
    if len(ascii_domain) > 253 or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise EmailError(f"{excerpt(domain)} is not a valid domain name")
    try:
        return ascii_domain.encode("ascii").decode("idna")
    except UnicodeError:  # an xn-- label that is not valid Punycode
        raise EmailError(f"{excerpt(domain)} is not a valid domain name") from None


def normalize_phone(value: str, region: str | None) -> str:
    """The number in E.164. Without a leading + (or an international prefix the region knows, such as 00 in
    France), the number is read as a national number of `region`."""
    region = (region or "").strip().upper() or None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as error:
        if error.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise PhoneError(
                f"{excerpt(value)} has no country code and no default region was given (write it as +33 ...)"
            ) from None
        raise PhoneError(f"{excerpt(value)} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        where = phonenumbers.region_code_for_number(number) or f"+{number.country_code}"
        raise PhoneError(f"{excerpt(value)} is not a valid phone number for {where}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


@dataclass(frozen=True)
class ProfileSchema:
    """What a ProfileInput is checked against: identity namespaces with their kind, attribute types, and the
    region of phone numbers written without a country code."""

    namespaces: dict[str, str] = field(default_factory=dict)
    attribute_types: dict[str, str] = field(default_factory=dict)
    default_region: str = ""

    @classmethod
    def load(cls, *, declared: dict[str, str] | None = None, default_region: str = "") -> "ProfileSchema":
        """The schema in the database, plus attributes the caller `declared` (name -> type) but not yet saved."""
        attribute_types = dict(AttributeDefinition.objects.values_list("name", "type"))
        for name, type_ in (declared or {}).items():
            attribute_types.setdefault(name, type_)
        return cls(
            namespaces=dict(IdentityNamespace.objects.values_list("name", "kind")),
            attribute_types=attribute_types,
            default_region=default_region,
        )


class ProfileInput(BaseModel):
    """One profile to create or update. Absent fields are left untouched; in `attributes`, a null value removes
    the attribute. `email` and `phone` are the primary addresses and also identities of the namespaces email
    and phone. `country` (ISO 3166 alpha-2) reads this profile's phone numbers written without a country code."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    identities: dict[str, str] = {}
    email: str | None = None
    phone: str | None = None
    country: str | None = None
    attributes: dict[str, Any] = {}
    consent: dict[str, str] = {}
    timezone: str | None = None
    locale: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        # Lone surrogates and NULs (from JSON escapes or a CSV cell) would be stored, then break every page and
        # send that shows them: refused here, on the way in from the API and from imports alike.
        try:
            untrusted.check_json_value(data)
        except untrusted.UntrustedInputError as error:
            loc = tuple(error.where.split(".", 1)) if error.where else ()
            raise ValidationError.from_exception_data(
                "ProfileInput", [{"type": PydanticCustomError("storable", error.problem), "loc": loc, "input": None}]
            ) from None
        return data

    @model_validator(mode="after")
    def _check_against_schema(self, info: ValidationInfo) -> "ProfileInput":
        schema = (info.context or {}).get("schema") or ProfileSchema.load()
        errors: list[tuple[tuple, str, Any]] = []
        region = self.country or schema.default_region
        if self.country and self.country.upper() not in phonenumbers.SUPPORTED_REGIONS:
            errors.append(
                (
                    ("country",),
                    f"{excerpt(self.country)} is not a country code (use two letters, such as FR)",
                    self.country,
                )
            )
            region = schema.default_region

        if self.email is not None:
            try:
                self.email = normalize_email(self.email)
            except EmailError as error:
                errors.append((("email",), str(error), self.email))
        if self.phone is not None:
            try:
                self.phone = normalize_phone(self.phone, region)
            except PhoneError as error:
                errors.append((("phone",), str(error), self.phone))

        identities = {}
        for namespace, value in self.identities.items():
            kind = schema.namespaces.get(namespace)
            try:
                identities[namespace] = normalize_identity(kind, namespace, value, region)
            except ValueError as error:
                errors.append((("identities", namespace), str(error), value))
        self.identities = identities

        attributes = {}
        for name, value in self.attributes.items():
            type_ = schema.attribute_types.get(name)
            if type_ is None:
                errors.append((("attributes", name), f"unknown attribute {excerpt(name)}: declare it first", value))
                continue
            try:
                attributes[name] = coerce(type_, value)
            except AttributeValueError as error:
                errors.append((("attributes", name), str(error), value))
        self.attributes = attributes

        for channel, state in self.consent.items():
            if channel not in Channel.values:
                errors.append((("consent", channel), f"unknown channel {excerpt(channel)}", state))
            elif state not in Consent.State.values:
                errors.append((("consent", channel), "expected opted_in, opted_out or unknown", state))

        if self.timezone is not None and self.timezone not in _timezones():
            errors.append(
                (
                    ("timezone",),
                    f"{excerpt(self.timezone)} is not an IANA time zone (such as Europe/Paris)",
                    self.timezone,
                )
            )
        if self.locale is not None:
            if _LOCALE.match(self.locale.replace("_", "-")) and len(self.locale) <= 16:
                self.locale = self.locale.replace("_", "-")
            else:
                errors.append(
                    (("locale",), f"{excerpt(self.locale)} is not a locale (such as fr or fr-FR)", self.locale)
                )

        if not errors and not self.identity_pairs():
            errors.append(((), "no identity: give an email, a phone or an identity in a namespace", None))
        if errors:
            raise ValidationError.from_exception_data(
                "ProfileInput",
                [
                    {"type": PydanticCustomError("profile", message), "loc": loc, "input": value}
                    for loc, message, value in errors
                ],
            )
        return self

    def identity_pairs(self) -> list[tuple[str, str]]:
        """Every (namespace, value) this input names, the primary addresses included, without repeats."""
        pairs = dict.fromkeys(self.identities.items())
        if self.email:
            pairs[("email", self.email)] = None
        if self.phone:
            pairs[("phone", self.phone)] = None
        return list(pairs)


def normalize_identity(kind: str | None, namespace: str, value: str, region: str) -> str:
    if kind is None:
        raise ValueError(f"unknown identity namespace {excerpt(namespace)}")
    if kind == IdentityNamespace.Kind.EMAIL:
        return normalize_email(value)
    if kind == IdentityNamespace.Kind.PHONE:
        return normalize_phone(value, region)
    if not value:
        raise ValueError("empty identity")
    if len(value) > MAX_IDENTITY:
        raise ValueError(f"longer than {MAX_IDENTITY} characters")
    return value


def error_list(error: ValidationError) -> list[tuple[str, str]]:
    """(field, problem) pairs of a validation error; field is a dotted path ("attributes.city") or "".

    Names in the path and the problem are cut short: they can come from the input (an unknown key) and are
    shown back to whoever sent it.
    """
    return [
        (".".join(_cut(str(part), MAX_NAME_SHOWN) for part in item["loc"]), _cut(item["msg"], MAX_PROBLEM_SHOWN))
        for item in error.errors()
    ]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
