"""The campaign list: search, filters and sorting from the query string, paginated, with each campaign's status
label (campaigns.selectors.campaign_status_label) and next run."""

from django.core.paginator import Paginator
from django.shortcuts import render

from campaigns import schedules, selectors
from campaigns.forms.lists import CampaignListForm
from permissions.access import permission_required

CAMPAIGNS_PER_PAGE = 50


@permission_required("campaigns.view_campaign")
def campaign_list(request):
    form = CampaignListForm(
        request.GET or None, tags=selectors.campaign_tags_in_use(), owners=selectors.campaign_owners()
    )
    filters = form.filters()
    page = Paginator(selectors.campaigns_listed(**filters), CAMPAIGNS_PER_PAGE).get_page(request.GET.get("page"))
    page.object_list = selectors.campaigns_page(rows=page.object_list, sort=filters.get("sort", ""))
    for campaign in page.object_list:
        campaign.status_label = selectors.campaign_status_label(campaign=campaign)
        campaign.next_occurrence = schedules.next_run_occurrence(campaign)
    context = {
        "form": form,
        "page": page,
        "campaigns": page.object_list,
        "filtered": any(value for name, value in filters.items() if name != "sort"),
        "show_archived": filters.get("status") == "archived",
    }
    return render(request, "campaigns/list.html", context)
