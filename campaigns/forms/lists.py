"""The forms of campaigns/views/lists.py and calendar.py: the list's filters and sort, the calendar's week."""

from datetime import date, timedelta

from django import forms
from django.core.exceptions import ValidationError

from audiences.models import Channel
from campaigns import schedules, selectors
from campaigns.models import Campaign
from config import untrusted

STATUS_CHOICES = [
    ("", "Any but archived"),
    ("draft", "Draft"),
    ("in_review", "In review"),
    *((status.value, status.label) for status in Campaign.Status if status != Campaign.Status.DRAFT),
    ("archived", "Archived"),
]


class CampaignListForm(forms.Form):
    """The list's filters, from the query string. A filter with an error is not applied, and says why."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "Name or description"}),
    )
    status = forms.ChoiceField(label="Status", required=False, choices=STATUS_CHOICES)
    kind = forms.ChoiceField(label="Kind", required=False, choices=[("", "Any kind"), *Campaign.Kind.choices])
    category = forms.ChoiceField(
        label="Category", required=False, choices=[("", "Any category"), *Campaign.Category.choices]
    )
    channel = forms.ChoiceField(label="Channel", required=False, choices=[("", "Any channel"), *Channel.choices])
    tag = forms.ChoiceField(label="Tag", required=False)
    owner = forms.ChoiceField(label="Owner", required=False)
    sort = forms.ChoiceField(
        label="Sort by",
        required=False,
        choices=[(key, words) for key, (words, _) in selectors.CAMPAIGN_SORTS.items()],
    )

    def __init__(self, *args, tags=(), owners=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tag"].choices = [("", "Any tag"), *((tag, tag) for tag in tags)]
        self.fields["owner"].choices = [("", "Anyone"), *((str(user.pk), user.get_username()) for user in owners)]

    def clean_q(self) -> str:
        query = self.cleaned_data["q"].strip()
        if (problem := untrusted.text_problem(query)) is not None:
            raise ValidationError(f"The search {problem}.")
        return query

    def filters(self) -> dict:
        """The valid filters as campaigns_listed's arguments; a field with an error is left out."""
        if not self.is_bound:
            return {}
        self.is_valid()
        data = {name: value for name, value in self.cleaned_data.items() if name not in self.errors}
        owner = data.pop("owner", "")
        return {
            "query": data.pop("q", ""),
            "owner_id": int(owner) if owner else None,
            **{name: value for name, value in data.items() if value},
        }


class CalendarForm(forms.Form):
    """The calendar's week: `start`, any day of it (the week starts on the Monday)."""

    start = forms.DateField(label="Week of", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean_start(self) -> date | None:
        day = self.cleaned_data["start"]
        first, last = schedules.SCHEDULE_YEARS
        if day is not None and not first <= day.year < last:
            raise ValidationError(f"Enter a date between {first} and {last - 1}.")
        return day

    def week_start(self, *, today: date) -> date:
        """The Monday of the week asked for, or of this week when none (or no valid one) was."""
        day = self.cleaned_data.get("start") if self.is_valid() else None
        day = day or today
        return day - timedelta(days=day.weekday())
