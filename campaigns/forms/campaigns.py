"""Forms of the campaign pages. They check the shape of the input; campaigns.services.lifecycle checks the rules."""

import zoneinfo
from datetime import datetime
from functools import lru_cache

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from audiences.models import Audience
from campaigns.models import Campaign
from channels.models import ChannelConfiguration
from config.forms import add_service_errors
from config.untrusted import MAX_INT


@lru_cache(maxsize=1)
def _timezone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]


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


class ConfigurationChoiceField(forms.ModelChoiceField):
    """An active channel configuration of any channel, labelled with its channel: "Email · Newsletter relay"."""

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


class CampaignForm(ContentForm):
    name = forms.CharField(max_length=200)
    audience = forms.ModelChoiceField(
        queryset=Audience.objects.all(), empty_label="Choose an audience", help_text="Who receives it."
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
    schedule = forms.ChoiceField(
        label="When to send",
        choices=Campaign.Schedule.choices,
        initial=Campaign.Schedule.ON_ACTIVATION,
        widget=forms.RadioSelect,
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
    timezone = forms.ChoiceField(
        label="Time zone", choices=_timezone_choices, initial="UTC", help_text="Start, end and cron are read here."
    )
    end_at = LocalDateTimeField(label="End", required=False, help_text="No occurrence starts after this.")
    tags = forms.CharField(required=False, max_length=500, help_text="Comma separated, e.g. newsletter, spring")

    def clean_tags(self) -> list[str]:
        return split_tags(self.cleaned_data["tags"])

    def clean(self):
        data = super().clean()
        # The fields of the other schedules are hidden, not emptied, when the user switches: drop them.
        schedule = data.get("schedule")
        if schedule != Campaign.Schedule.RECURRING:
            data["cron"], data["end_at"] = "", None
        if schedule == Campaign.Schedule.ON_ACTIVATION:
            data["start_at"] = None
        zone = zoneinfo.ZoneInfo(data.get("timezone") or "UTC")
        for field in ("start_at", "end_at"):
            if data.get(field) is not None:
                data[field] = timezone.make_aware(data[field], zone)
        return data


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
