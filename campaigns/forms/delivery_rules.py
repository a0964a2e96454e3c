"""The delivery rule forms: the shape of a frequency cap and of a quiet-hours window; campaigns.services.delivery_rules
checks the rules (a name taken, one window per channel, a window ending when it starts)."""

from django import forms

from audiences.models import Channel
from campaigns.forms.campaigns import LifecycleErrorsMixin
from campaigns.models import FrequencyCap, QuietHours
from campaigns.services.delivery_rules import LIMIT_MAX, LIMIT_MIN, CapRules, QuietHoursRules


class FrequencyCapForm(LifecycleErrorsMixin, forms.Form):
    name = forms.CharField(max_length=200)
    limit = forms.IntegerField(
        min_value=LIMIT_MIN,
        max_value=LIMIT_MAX,
        help_text=f"Marketing messages a profile may get within the period, {LIMIT_MIN} to {LIMIT_MAX}.",
    )
    period = forms.ChoiceField(
        choices=FrequencyCap.Period.choices,
        help_text="Rolling: the last 60 minutes, 24 hours, 7 days or 30 days before a message is due.",
    )
    channel = forms.ChoiceField(
        choices=[("", "Across channels"), *Channel.choices],
        required=False,
        help_text="Across channels counts the messages of every channel together.",
    )
    is_active = forms.BooleanField(label="Active", required=False, initial=True)

    @classmethod
    def for_cap(cls, cap: FrequencyCap, data=None):
        initial = {
            "name": cap.name,
            "limit": cap.limit,
            "period": cap.period,
            "channel": cap.channel,
            "is_active": cap.is_active,
        }
        return cls(data, initial=initial)

    def rules(self) -> CapRules:
        data = self.cleaned_data
        return CapRules(
            name=data["name"],
            limit=data["limit"],
            period=data["period"],
            channel=data["channel"],
            is_active=data["is_active"],
        )


class QuietHoursForm(LifecycleErrorsMixin, forms.Form):
    channel = forms.ChoiceField(choices=Channel.choices, help_text="One window per channel.")
    start = forms.TimeField(
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="Each profile's local time the window opens, e.g. 21:00 (the campaign's time zone when the "
        "profile has none).",
    )
    end = forms.TimeField(
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="The local time it closes, e.g. 08:00: the next day when before the start.",
    )
    action = forms.ChoiceField(
        label="A message due inside the window is",
        choices=QuietHours.Action.choices,
        initial=QuietHours.Action.DELAY,
        widget=forms.RadioSelect,
    )
    is_active = forms.BooleanField(label="Active", required=False, initial=True)

    @classmethod
    def for_window(cls, window: QuietHours, data=None):
        initial = {
            "channel": window.channel,
            "start": window.start,
            "end": window.end,
            "action": window.action,
            "is_active": window.is_active,
        }
        return cls(data, initial=initial)

    def rules(self) -> QuietHoursRules:
        data = self.cleaned_data
        return QuietHoursRules(
            channel=data["channel"],
            start=data["start"],
            end=data["end"],
            action=data["action"],
            is_active=data["is_active"],
        )
