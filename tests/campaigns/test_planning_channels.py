"""Planning a run into the ledger (plan_run): the channel's suppression list is read as the channel compares
addresses, so the report counts who is excluded from the moment the run is planned; and a chunk of the
audience costs a fixed number of queries on every channel, not one per recipient."""

import pytest
from django.utils import timezone

from audiences.models import Profile
from campaigns.engine import planning, scheduler
from campaigns.models import Delivery
from campaigns.selectors import delivery_counts
from campaigns.services.lifecycle import campaign_activate
from channels.models import Suppression
from channels.services.suppression import suppress_addresses
from tests.campaigns.test_execution import make_campaign
from tests.campaigns.test_failures import make_profiles as make_profiles_with_phones
from tests.campaigns.test_failures import sms_configuration
from tests.campaigns.test_outcomes import planned
from tests.conftest import make_email_configuration


@pytest.mark.django_db(transaction=True)
def test_the_report_counts_suppressed_addresses_as_excluded_as_soon_as_the_run_is_planned(
    redis, smtp_server, marketer, everyone
):
    fine = Profile.objects.create(email="fine@example.com")
    # Imported as written; the suppression list keeps addresses lower-cased, as the email channel compares them.
    bounced = Profile.objects.create(email="Bounced@Example.com")
    suppress_addresses(channel="email", addresses=["bounced@example.com"], reason=Suppression.Reason.HARD_BOUNCE)

    run_id = planned(marketer, everyone, make_email_configuration(port=smtp_server.port))

    ledger = {d.profile_id: (d.status, d.reason) for d in Delivery.objects.filter(run_id=run_id)}
    assert ledger == {fine.pk: ("pending", ""), bounced.pk: ("excluded", "suppressed")}
    counts = delivery_counts(run_id=run_id)
    assert (counts.targeted, counts.excluded, counts.pending) == (2, 1, 1)
    assert smtp_server.messages == []  # nothing sent yet: this is what planning wrote


@pytest.mark.parametrize("channel", ["email", "sms"])
@pytest.mark.django_db(transaction=True)
def test_planning_reads_every_recipients_address_without_a_query_per_recipient(
    redis, marketer, everyone, settings, django_assert_max_num_queries, channel
):
    settings.CAMPAIGNS_PLAN_CHUNK = 100  # the whole audience in one chunk
    people = make_profiles_with_phones(40)
    if channel == "email":
        configuration = make_email_configuration(port=1)
    else:
        configuration = sms_configuration("http://127.0.0.1:9")
    campaign = make_campaign(marketer, configuration, everyone)
    campaign_activate(campaign=campaign, actor=marketer)
    [run_id] = scheduler.start_due_runs(now=timezone.now())

    with django_assert_max_num_queries(30):  # a fixed number per chunk, far fewer than its 40 recipients
        planning.plan_run(run_id=run_id)

    addresses = set(Delivery.objects.filter(run_id=run_id).values_list("address", flat=True))
    assert addresses == {person.address_for(channel) for person in people}
