"""The messages one profile received, a partial the profile page (audiences) loads with htmx: the campaigns
app serves it because the ledger is its own."""

from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from audiences.models import Profile
from campaigns.models import Delivery
from permissions.access import permission_required

MESSAGES_SHOWN = 50


@permission_required("campaigns.view_delivery")
@require_GET
def profile_messages(request, profile_id):
    # Looked up first: an id past 64 bits is then not found (SQLite could not compare it to the deliveries' link).
    profile = get_object_or_404(Profile, pk=profile_id)
    deliveries = (
        Delivery.objects.filter(profile=profile).select_related("run__campaign").order_by("-id")[: MESSAGES_SHOWN + 1]
    )
    deliveries = list(deliveries)
    context = {"deliveries": deliveries[:MESSAGES_SHOWN], "more": len(deliveries) > MESSAGES_SHOWN}
    return render(request, "campaigns/_profile_messages.html", context)
