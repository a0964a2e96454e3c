"""The messages one profile received, a partial the profile page (audiences) loads with htmx: the campaigns
app serves it because the ledger is its own."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from campaigns.models import Delivery
from permissions.access import permission_required

MESSAGES_SHOWN = 50


@permission_required("campaigns.view_delivery")
@require_GET
def profile_messages(request, profile_id):
    deliveries = (
        Delivery.objects.filter(profile_id=profile_id)
        .select_related("run__campaign")
        .order_by("-id")[: MESSAGES_SHOWN + 1]
    )
    deliveries = list(deliveries)
    context = {"deliveries": deliveries[:MESSAGES_SHOWN], "more": len(deliveries) > MESSAGES_SHOWN}
    return render(request, "campaigns/_profile_messages.html", context)
