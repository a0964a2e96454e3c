"""The calendar: four weeks of the sends still to come of the active scheduled campaigns."""

from datetime import timedelta

from django.shortcuts import render
from django.utils import timezone

from campaigns import selectors
from campaigns.forms.lists import CalendarForm
from permissions.access import permission_required


@permission_required("campaigns.view_campaign")
def campaign_calendar(request):
    form = CalendarForm(request.GET or None)
    now = timezone.now()
    today = timezone.localdate(now)
    first_day = form.week_start(today=today)
    period = selectors.calendar_period(first_day=first_day, now=now)
    context = {
        "form": form,
        "period": period,
        "today": today,
        "first_day": first_day,
        "last_day": first_day + timedelta(days=selectors.CALENDAR_DAYS - 1),
        "previous_period": first_day - timedelta(days=selectors.CALENDAR_DAYS),
        "next_period": first_day + timedelta(days=selectors.CALENDAR_DAYS),
        "this_week": today - timedelta(days=today.weekday()),
        "weeks": selectors.CALENDAR_WEEKS,
        "shown_a_day": selectors.CALENDAR_SHOWN_A_DAY,
        "counted_a_day": selectors.CALENDAR_COUNTED_A_DAY,
        "campaigns_limit": selectors.CALENDAR_CAMPAIGNS,
    }
    return render(request, "campaigns/calendar.html", context)
