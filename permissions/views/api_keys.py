"""API key pages under /settings/api-keys/. Views check permissions, parse input and call
permissions.services.api_keys.

A key's secret exists only in the response to the request that created it: it is never stored, put in the
session or a message, passed in a URL, or logged.
"""

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_POST

from permissions import hooks
from permissions.access import permission_required
from permissions.forms.api_keys import ApiKeyForm
from permissions.models import ApiKey
from permissions.services import api_keys

KEYS_PER_PAGE = 50


@permission_required("permissions.view_apikey")
def api_key_list(request):
    keys = ApiKey.objects.select_related("created_by", "revoked_by")
    page = Paginator(keys, KEYS_PER_PAGE).get_page(request.GET.get("page"))
    names = _campaign_names(page.object_list)
    rows = [(key, _scope_summary(key, names)) for key in page.object_list]
    return render(request, "permissions/api_keys.html", {"page": page, "rows": rows})


@permission_required("permissions.add_apikey")
@never_cache
@sensitive_variables("secret")
def api_key_create(request):
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        key, secret = api_keys.api_key_create(
            actor=request.user,
            name=data["name"],
            all_triggered_campaigns=data["all_triggered_campaigns"],
            campaign_ids=[campaign.pk for campaign in data["campaigns"]],
            profiles=data["profiles"],
            rate_per_second=data["rate_per_second"],
        )
        # Shown in this response only (never_cache makes it no-store): no redirect, so nothing carries it on.
        context = {"key": key, "secret": secret, "scope": _scope_summary(key, _campaign_names([key]))}
        return render(request, "permissions/api_keys_created.html", context, status=201)
    return render(request, "permissions/api_keys_create.html", {"form": form})


@permission_required("permissions.view_apikey")
def api_key_detail(request, pk):
    key = get_object_or_404(ApiKey.objects.select_related("created_by", "revoked_by"), pk=pk)
    context = {
        "key": key,
        "scope": _scope_summary(key, _campaign_names([key])),
        "default_rate": settings.API_KEY_DEFAULT_RATE,
    }
    return render(request, "permissions/api_keys_detail.html", context)


@permission_required("permissions.change_apikey")
@require_POST
def api_key_revoke(request, pk):
    key = get_object_or_404(ApiKey, pk=pk)
    if key.revoked_at is not None:
        messages.info(request, "This key was already revoked.")
    else:
        api_keys.api_key_revoke(actor=request.user, key=key)
        messages.success(request, "Revoked: the next request with this key is refused (401).")
    return redirect("permissions:api_key_detail", pk=key.pk)


def _campaign_names(keys) -> dict[int, str]:
    ids = {campaign_id for key in keys for campaign_id in key.campaign_ids}
    if not ids:
        return {}
    return hooks.key_campaigns.get().names(ids)


def _scope_summary(key: ApiKey, names: dict[int, str]) -> dict:
    """What a key may do, in words: `all_campaigns`, the chosen `campaigns` as (id, name or None), `profiles`."""
    return {
        "all_campaigns": key.all_triggered_campaigns,
        "campaigns": [(campaign_id, names.get(campaign_id)) for campaign_id in key.campaign_ids],
        "profiles": key.profiles,
    }
