"""Forms of the campaign pages. They check the shape of the input; campaigns.services.lifecycle checks the rules."""

import json
import re
import zoneinfo
from datetime import datetime

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db.models import Q
from django.utils import timezone

from audiences.models import Audience
from campaigns import contracts, schedules
from campaigns.models import Campaign
from campaigns.services import lifecycle
from campaigns.services.lifecycle import configuration_purpose
from channels.models import ChannelConfiguration
from config import untrusted
from config.forms import TimeZoneField, add_service_errors
from config.untrusted import MAX_INT


class LocalDateTimeField(forms.DateTimeField):
    """A wall-clock date and time, left naive: the form makes it aware in the time zone the user chose
    (Django's DateTimeField would read it in the server's time zone)."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            return value.replace(tzinfo=None)
        try:
            return datetime.fromisoformat(str(value).strip()).replace(tzinfo=None)
        except ValueError:
            raise ValidationError("Enter a date and time, e.g. 2026-05-04 09:00.", code="invalid") from None


class ConfigurationSelect(forms.Select):
    """Each option says which category of campaign its configuration serves (`data-purpose`: marketing,
    transactional or both), so the page can hide the ones the chosen category may not use."""

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if instance := getattr(value, "instance", None):
            option["attrs"]["data-purpose"] = configuration_purpose(instance)
        return option


class ConfigurationChoiceField(forms.ModelChoiceField):
    """An active channel configuration of any channel, labelled with its channel: "Email · Newsletter relay"."""

    widget = ConfigurationSelect

    def label_from_instance(self, obj):
        return f"{obj.get_channel_display()} · {obj.name}"


class ChoicesByIdField(forms.ModelMultipleChoiceField):
    """Objects chosen by id, refusing a number past what an id holds before the query (SQLite raises
    OverflowError on an integer past 64 bits in `pk IN (...)`, where Django's own check lets it through)."""

    def _check_values(self, value):
        for pk in value:
            try:
                out_of_range = abs(int(str(pk).strip())) > MAX_INT
            except ValueError:
                continue  # not a number at all: Django's check says so
            if out_of_range:
                raise ValidationError(
                    self.error_messages["invalid_pk_value"], code="invalid_pk_value", params={"pk": pk}
                )
        return super()._check_values(value)


class LifecycleErrorsMixin:
    def add_lifecycle_errors(self, error: ValidationError) -> None:
        """Show an error of campaigns.services.lifecycle next to the field it names, or above the form."""
        add_service_errors(self, error, aliases={"timezone_name": "timezone"})


class ContentForm(LifecycleErrorsMixin, forms.Form):
    """A version's content: subject, HTML body and text body."""

    subject = forms.CharField(max_length=500, help_text="Liquid personalization works here too.")
    html_body = forms.CharField(
        label="HTML body",
        required=False,
        widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false", "class": "code"}),
        help_text="Personalize with Liquid, e.g. {{ profile.first_name }}. Values are HTML-escaped.",
    )
    text_body = forms.CharField(
        label="Text body",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "false", "class": "code"}),
        help_text="The plain-text part, e.g. Hello {{ profile.first_name }},",
    )

    def clean(self):
        data = super().clean()
        if not data.get("html_body") and not data.get("text_body") and "html_body" not in self.errors:
            self.add_error("html_body", "Write an HTML body, a text body, or both.")
        return data


class ScheduleForm(forms.Form):
    """A scheduled campaign's schedule, on the create form and in its live preview (the next occurrences)."""

    # Not required: a client that does not send it creates a scheduled campaign, as before kinds were asked.
    kind = forms.ChoiceField(
        choices=Campaign.Kind.choices,
        initial=Campaign.Kind.SCHEDULED,
        required=False,
        widget=forms.RadioSelect,
        help_text="Scheduled: sent to an audience on activation, at a date or on a recurrence. API-triggered: "
        "sent when a program calls the trigger API, to the people it names or to the audience.",
    )
    schedule = forms.ChoiceField(
        label="When to send",
        choices=Campaign.Schedule.choices,
        initial=Campaign.Schedule.ON_ACTIVATION,
        widget=forms.RadioSelect,
    )
    send_time = forms.TimeField(
        label="At",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="The local time of each occurrence, in the chosen time zone.",
    )
    weekdays = forms.TypedMultipleChoiceField(
        label="On",
        choices=[(str(number), name) for number, name in enumerate(schedules.WEEKDAY_NAMES)],
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    month_days = forms.TypedMultipleChoiceField(
        label="On days of the month",
        choices=[(str(day), str(day)) for day in range(1, 32)] + [(str(schedules.LAST_DAY), "Last day")],
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="A month without the day (the 31st in April) is skipped; “Last day” is every month's last.",
    )
    start_at = LocalDateTimeField(
        label="Start",
        required=False,
        help_text="The send time, or when a recurrence begins; in the chosen time zone.",
    )
    cron = forms.CharField(
        max_length=100,
        required=False,
        widget=forms.TextInput(attrs={"placeholder": "0 9 * * 1", "spellcheck": "false", "class": "code"}),
        help_text="minute hour day-of-month month day-of-week; '0 9 * * 1' is Mondays at 09:00.",
    )
    timezone = TimeZoneField(
        label="Time zone",
        initial="UTC",
        help_text="Times, start and end are read here. Type a city or region to search: Europe/Paris, Asia/Tokyo.",
    )
    end_at = LocalDateTimeField(label="End", required=False, help_text="No occurrence starts after this.")
    in_profile_timezone = forms.BooleanField(
        label="Deliver at this time in each profile's own time zone",
        required=False,
        help_text="Each profile gets each occurrence at its local time in its own zone (the campaign's zone for "
        "profiles without one): the run starts when the time is first reached anywhere.",
    )

    def clean_kind(self) -> str:
        return self.cleaned_data["kind"] or Campaign.Kind.SCHEDULED

    def clean(self):
        data = super().clean()
        # Fields hidden by a switch (of kind or schedule) are not emptied in the page: drop them here.
        schedule = data.get("schedule")
        if data.get("kind") == Campaign.Kind.API_TRIGGERED:
            # Sent when called: start and end are the window in which calls are accepted.
            schedule = data["schedule"] = Campaign.Schedule.ON_ACTIVATION
            data["in_profile_timezone"] = False
        else:
            if schedule not in Campaign.REPEATING_SCHEDULES:
                data["end_at"] = None
            if schedule == Campaign.Schedule.ON_ACTIVATION:
                data["start_at"], data["in_profile_timezone"] = None, False
        if schedule != Campaign.Schedule.RECURRING:
            data["cron"] = ""
        if schedule not in (Campaign.Schedule.DAILY, Campaign.Schedule.WEEKLY, Campaign.Schedule.MONTHLY):
            data["send_time"] = None
        if schedule != Campaign.Schedule.WEEKLY:
            data["weekdays"] = []
        if schedule != Campaign.Schedule.MONTHLY:
            data["month_days"] = []
        zone = zoneinfo.ZoneInfo(data.get("timezone") or "UTC")
        for field in ("start_at", "end_at"):
            if data.get(field) is not None:
                data[field] = timezone.make_aware(data[field], zone)
        return data

    def schedule_values(self) -> dict:
        """The cleaned schedule, as CampaignSettings.SCHEDULE_FIELDS names it (a field that did not clean: its
        default)."""
        data = self.cleaned_data
        return {
            "schedule": data.get("schedule") or Campaign.Schedule.ON_ACTIVATION,
            "start_at": data.get("start_at"),
            "cron": data.get("cron") or "",
            "send_time": data.get("send_time"),
            "weekdays": sorted(set(data.get("weekdays") or [])),
            "month_days": sorted(set(data.get("month_days") or [])),
            "timezone": data.get("timezone") or "UTC",
            "end_at": data.get("end_at"),
            "in_profile_timezone": bool(data.get("in_profile_timezone")),
        }

    def schedule_fields(self) -> dict:
        """The cleaned kind and schedule as campaigns.services.lifecycle.campaign_create takes them."""
        fields = self.schedule_values()
        return {"kind": self.cleaned_data["kind"], "timezone_name": fields.pop("timezone"), **fields}

    def unsaved_campaign(self) -> Campaign:
        """A campaign holding only this schedule, for campaigns.schedules to read (never saved)."""
        return Campaign(kind=self.cleaned_data["kind"], **self.schedule_values())


class CampaignForm(ContentForm, ScheduleForm):
    """A campaign's settings and its first version's content (CampaignEditForm: a new version's)."""

    name = forms.CharField(max_length=200)
    description = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What the campaign is for, for your colleagues; never sent.",
    )
    audience = forms.ModelChoiceField(
        queryset=Audience.objects.all(),
        required=False,
        empty_label="Choose an audience",
        help_text="Who receives it. Required for a scheduled campaign; an API-triggered one needs an audience only "
        "to be triggered for the whole audience (trigger-audience): calls naming recipients do without.",
    )
    channel_configuration = ConfigurationChoiceField(
        queryset=ChannelConfiguration.objects.filter(is_active=True).order_by("channel", "name"),
        empty_label="Choose a configuration",
        label="Channel configuration",
        help_text="The channel and configuration it is sent through.",
    )
    category = forms.ChoiceField(
        choices=Campaign.Category.choices,
        initial=Campaign.Category.MARKETING,
        widget=forms.RadioSelect,
        help_text="Marketing respects consent; transactional is for messages a person needs (receipts, resets).",
    )
    create_profiles = forms.BooleanField(
        label="Create profiles for unknown recipients",
        required=False,
        help_text="A trigger call naming someone without a profile creates the profile (with the identity, "
        "attributes and address the call carries); left unchecked, such a recipient is rejected.",
    )
    tags = forms.CharField(required=False, max_length=500, help_text="Comma separated, e.g. newsletter, spring")

    def clean_tags(self) -> list[str]:
        return split_tags(self.cleaned_data["tags"])

    def clean(self):
        data = super().clean()
        if data.get("kind") != Campaign.Kind.API_TRIGGERED:
            data["create_profiles"] = False
        self._add_rule_errors(data)
        return data

    def _add_rule_errors(self, data) -> None:
        """The rules campaigns.services.lifecycle checks on save, shown with the form's own errors at once (not
        after a second submit) on the fields that have none yet; the service checks them again."""
        campaign = Campaign(
            kind=data.get("kind") or Campaign.Kind.SCHEDULED,
            category=data.get("category") or Campaign.Category.MARKETING,
            **{name: value for name, value in self.settings().items() if value is not None},
        )
        # A schedule is checked against the clock where it is new: a draft's, or a live campaign's changed one.
        edited = self.campaign
        if edited is None or edited.status == Campaign.Status.DRAFT or edited.schedule_differs(campaign):
            now = timezone.now()
        else:
            now = None
        errors = lifecycle.settings_errors(campaign, now=now)
        errors |= lifecycle.content_errors(
            lifecycle.Content(data.get("subject", ""), data.get("html_body", ""), data.get("text_body", ""))
        )
        for field, message in errors.items():
            if field in self.fields and field not in self.errors and field in data:
                self.add_error(field, message)

    campaign = None  # CampaignEditForm: the campaign edited

    def settings(self) -> dict:
        """The cleaned versioned settings, as CampaignSettings names them (campaigns.services.lifecycle)."""
        data = self.cleaned_data
        return {
            "name": data.get("name", ""),
            "description": data.get("description", ""),
            "tags": data.get("tags") or [],
            "audience": data.get("audience"),
            "channel_configuration": data.get("channel_configuration"),
            **self.schedule_values(),
        }


class CampaignEditForm(CampaignForm):
    """Every versioned setting and the content of a campaign, edited into a draft version. The kind and category
    are the campaign's for good; shown, not editable. `version_token` names the version as the page showed it."""

    # Not required, unbounded: a missing or wrong token is refused by the service with a message saying to reload.
    version_token = forms.CharField(widget=forms.HiddenInput, required=False, strip=False)

    def __init__(self, *args, campaign: Campaign, version, **kwargs):
        initial = {
            **{name: getattr(version, name) for name in Campaign.SETTINGS_FIELDS},
            "tags": ", ".join(version.tags),
            "audience": version.audience_id,
            "channel_configuration": version.channel_configuration_id,
            "kind": campaign.kind,
            "category": campaign.category,
            "subject": version.subject,
            "html_body": version.html_body,
            "text_body": version.text_body,
        }
        zone = zoneinfo.ZoneInfo(version.timezone) if schedules.zone_of(version) else zoneinfo.ZoneInfo("UTC")
        for name in ("start_at", "end_at"):
            if initial[name] is not None:
                initial[name] = initial[name].astimezone(zone).replace(tzinfo=None)
        initial["weekdays"] = [str(day) for day in version.weekdays]
        initial["month_days"] = [str(day) for day in version.month_days]
        initial["version_token"] = lifecycle.version_token(version)
        super().__init__(*args, initial=initial, **kwargs)
        self.campaign = campaign
        for name in ("kind", "category"):
            self.fields[name].disabled = True
        del self.fields["create_profiles"]
        # A configuration made inactive since stays listed while the campaign uses it (saving then says why not).
        self.fields["channel_configuration"].queryset = ChannelConfiguration.objects.filter(
            Q(is_active=True) | Q(pk=version.channel_configuration_id)
        ).order_by("channel", "name")


def split_tags(value: str) -> list[str]:
    tags = (tag.strip() for tag in value.split(","))
    return list(dict.fromkeys(tag for tag in tags if tag))


class ReviewDecisionForm(LifecycleErrorsMixin, forms.Form):
    """A decision on the review page. `review_key` names the submission the approver looked at."""

    review_key = forms.CharField(widget=forms.HiddenInput)
    comment = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Required when requesting changes: say what needs to change.",
    )


# The context contract ----------------------------------------------------------------------------------------


class ContextFieldForm(forms.Form):
    """One field of a context contract, one row of the editor. The example is JSON, as a call carries it."""

    name = forms.CharField(
        max_length=64,
        validators=[
            RegexValidator(
                contracts.NAME, "Letters, digits and underscores, not starting with a digit (e.g. reset_url)."
            )
        ],
        widget=forms.TextInput(attrs={"spellcheck": "false", "class": "code"}),
    )
    type = forms.ChoiceField(choices=[(kind, kind) for kind in contracts.TYPES], initial="string")
    required = forms.BooleanField(required=False)
    example = forms.CharField(
        required=False,
        max_length=contracts.MAX_EXAMPLE_BYTES,
        strip=False,
        widget=forms.TextInput(attrs={"spellcheck": "false", "class": "code"}),
        help_text='As JSON: "text" in double quotes, 42, true, ["a list"], {"an": "object"}.',
    )
    description = forms.CharField(required=False, max_length=contracts.MAX_DESCRIPTION)

    def has_changed(self):
        """Whether the row says anything: without a name, example, description or tick it is blank (and ignored,
        whatever its type: the select always sends one)."""
        return any(self[name].data for name in ("name", "required", "example", "description"))

    def clean_example(self):
        text = self.cleaned_data["example"].strip()
        if not text:
            return None
        try:
            return untrusted.loads(text, where="", max_bytes=contracts.MAX_EXAMPLE_BYTES)
        except untrusted.UntrustedInputError as refusal:
            hint = " Text goes in double quotes." if refusal.problem.startswith("is not JSON") else ""
            raise ValidationError(f"The example {refusal.problem}.{hint}", code="invalid") from None

    def clean(self):
        data = super().clean()
        # The contract's own rules (an example of the declared type, bounded text), shown on this row.
        if not self.errors:
            try:
                contracts.parse_contract([self.entry()])
            except ValidationError as invalid:
                for message in invalid.message_dict["context_contract"]:
                    self.add_contract_error(message)
        return data

    def entry(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "type": data["type"],
            "required": data["required"],
            "example": data["example"],
            "description": data["description"],
        }

    def add_contract_error(self, message: str) -> None:
        """A contracts.parse_contract message ("Field 2 (order_id): the example must be ...") on this row, next
        to the input it is about."""
        problem = _CONTRACT_ENTRY.sub("", message, count=1)
        field = next((name for word, name in _PROBLEM_FIELDS if problem.startswith(word)), None)
        self.add_error(field, problem[:1].upper() + problem[1:])


_CONTRACT_ENTRY = re.compile(r"^Field \d+(?: \([^)]*\))?: ")
_PROBLEM_FIELDS = (
    ("the name", "name"),
    ("the type", "type"),
    ("required", "required"),
    ("the example", "example"),
    ("the description", "description"),
)


class BaseContractFormSet(forms.BaseFormSet):
    """The editor's rows: the contract's fields, then blank rows to add some. A blank row is ignored; a row
    ticked "Remove", or cleared, is dropped."""

    def __init__(self, *args, contract: list[dict] | None = None, **kwargs):
        if contract is not None:
            kwargs["initial"] = [{**entry, "example": _example_text(entry["example"])} for entry in contract]
        super().__init__(*args, **kwargs)
        # The service's refusals that name no row (campaigns.services.lifecycle.campaign_update_contract).
        self.contract_errors: list[str] = []

    def get_form_kwargs(self, index):
        # Any row may be left blank, a declared one too: clearing a row drops its field, as Remove does.
        return {"empty_permitted": True}

    def add_fields(self, form, index):
        super().add_fields(form, index)
        if forms.formsets.DELETION_FIELD_NAME in form.fields:
            form.fields[forms.formsets.DELETION_FIELD_NAME].label = "Remove"

    def kept_forms(self) -> list[ContextFieldForm]:
        """The rows that make the contract, in order: neither blank nor removed."""
        return [
            form
            for form in self.forms
            if form.has_changed() and not (self.can_delete and self._should_delete_form(form))
        ]

    def clean(self):
        seen = {}
        for form in self.kept_forms():
            name = form.cleaned_data.get("name")
            if name and name in seen:
                form.add_error("name", f"Row {seen[name]} already declares {name}.")
            elif name:
                seen[name] = self.forms.index(form) + 1

    def contract(self) -> list[dict]:
        return [form.entry() for form in self.kept_forms()]

    def add_contract_errors(self, error: ValidationError) -> None:
        """Put each message of campaigns.services.lifecycle.campaign_update_contract on the row it names
        ("Field 2" is the second row kept), or above the rows."""
        kept = self.kept_forms()
        messages = error.message_dict.get("context_contract", []) if hasattr(error, "error_dict") else error.messages
        for message in messages:
            match = re.match(r"Field (\d+)\b", message)
            number = int(match.group(1)) if match else 0
            if 1 <= number <= len(kept):
                kept[number - 1].add_contract_error(message)
            else:
                self.contract_errors.append(message)

    def row_errors(self) -> list[str]:
        """Each problem as "Row 2 (order_id): Name: ...", for the summary above the rows."""
        if not self.is_bound:
            return []
        summary = [*self.non_form_errors(), *self.contract_errors]
        for number, form in enumerate(self.forms, start=1):
            if self.can_delete and self._should_delete_form(form):
                continue
            name = form.data.get(form.add_prefix("name"), "") if form.is_bound else ""
            where = f"Row {number}" + (f" ({untrusted.excerpt(name)})" if name else "")
            for field, errors in form.errors.items():
                label = (form.fields[field].label or field.capitalize()) if field in form.fields else ""
                for message in errors:
                    # "Name: This field is required.", but not "Example: The example is not JSON".
                    named = not label or label.lower() in message.lower()
                    summary.append(f"{where}: {message}" if named else f"{where}: {label}: {message}")
        return summary


def _example_text(example) -> str:
    return "" if example is None else json.dumps(example, ensure_ascii=False)


ContractFormSet = forms.formset_factory(
    ContextFieldForm,
    formset=BaseContractFormSet,
    extra=3,
    can_delete=True,
    max_num=contracts.MAX_FIELDS,
    validate_max=True,
    absolute_max=contracts.MAX_FIELDS + 3,
)


class PreviewProfileForm(forms.Form):
    """The content preview's profile picker (a GET form): a search, or the profile chosen among its results."""

    preview_q = forms.CharField(
        label="Preview as",
        required=False,
        max_length=320,
        widget=forms.TextInput(attrs={"placeholder": "an email address, or #42", "type": "search"}),
        help_text="A profile's email address (or its start), phone number or #id.",
    )
    preview_profile = forms.IntegerField(
        required=False, min_value=1, max_value=MAX_INT, widget=forms.HiddenInput, label="Profile"
    )

    def clean_preview_q(self) -> str:
        query = self.cleaned_data["preview_q"].strip()
        if (problem := untrusted.text_problem(query)) is not None:
            raise ValidationError(f"The search {problem}.")
        return query
