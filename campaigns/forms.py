"""Forms of the campaign pages. They check the shape of the input; campaigns.lifecycle checks the rules."""

import zoneinfo
from datetime import datetime
from functools import lru_cache

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils import timezone

from audiences.models import Audience, Channel
from campaigns.models import Campaign
from channels.models import ChannelConfiguration


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


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    audience = forms.ModelChoiceField(
        queryset=Audience.objects.all(), empty_label="Choose an audience", help_text="Who receives it."
    )
    channel_configuration = forms.ModelChoiceField(
        queryset=ChannelConfiguration.objects.filter(channel=Channel.EMAIL, is_active=True),
        empty_label="Choose a configuration",
        label="Channel configuration",
        help_text="The email configuration it is sent through.",
    )
    category = forms.ChoiceField(
        choices=Campaign.Category.choices,
        initial=Campaign.Category.MARKETING,
        widget=forms.RadioSelect,
        help_text="Marketing respects consent; transactional is for messages a person needs (receipts, resets).",
    )
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
        tags = (tag.strip() for tag in self.cleaned_data["tags"].split(","))
        return list(dict.fromkeys(tag for tag in tags if tag))

    def clean(self):
        data = super().clean()
        if not data.get("html_body") and not data.get("text_body") and "html_body" not in self.errors:
            self.add_error("html_body", "Write an HTML body, a text body, or both.")
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

    def add_lifecycle_errors(self, error: ValidationError) -> None:
        """Show an error of campaigns.lifecycle next to the field it names, or above the form."""
        if not hasattr(error, "error_dict"):
            self.add_error(None, error)
            return
        for field, messages in error.message_dict.items():
            field = {"timezone_name": "timezone"}.get(field, field)
            self.add_error(field if field in self.fields and field != NON_FIELD_ERRORS else None, messages)
