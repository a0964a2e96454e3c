"""Issue 15's mapping page in a browser: the preview of a list column follows the chosen separator, a column's
new-attribute inputs show only while it is set to "New attribute…", and "Match rows to profiles by" offers only the
identities a column fills. The import then stores the lists split as previewed."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from audiences.models import AttributeDefinition, IdentityNamespace, Profile, ProfileImport
from audiences.services import imports as services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CONTACTS = b"""email,tags,interests,client,city
ann@example.com,vip;beta;churn-risk,cooking;hiking,C1,Lyon
bob@example.com,vip,,C2,Paris
"""


@pytest.fixture
def schema(settings, tmp_path, transactional_db):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}},
    }
    # A transactional test starts from empty tables: the built-in namespace comes back as the migration made it.
    IdentityNamespace.objects.get_or_create(name="crm_id", defaults={"label": "CRM id", "builtin": True})
    AttributeDefinition.objects.create(name="tags", type=AttributeDefinition.Type.STRING_LIST)


def test_the_preview_follows_the_separator_and_new_attribute_inputs_show_only_for_a_new_attribute(
    log_in, schema, redis
):
    manny = log_in("manny")
    manny.goto(reverse("audiences:import_create"))
    manny.get_by_label("CSV file").set_input_files(
        files=[{"name": "contacts.csv", "mimeType": "text/csv", "buffer": CONTACTS}]
    )
    manny.get_by_role("button", name="Upload and map columns").click()
    expect(manny.get_by_role("heading", name="Map the columns of contacts.csv")).to_be_visible()

    def row(column):
        return manny.locator("tr", has=manny.get_by_role("rowheader", name=column, exact=True))

    tags, interests, client, city = row("tags"), row("interests"), row("client"), row("city")
    # tags fills a declared list: its first values are previewed, split on "|" for now.
    expect(tags.get_by_label("What tags fills")).to_have_value("attribute:tags")
    first_value = tags.locator(".list-preview li").first.locator(".list-item")
    expect(first_value).to_have_text(["vip;beta;churn-risk"])

    manny.get_by_label("Separator between the items of a list").select_option(";")
    expect(first_value).to_have_text(["vip", "beta", "churn-risk"])
    expect(tags.locator(".list-preview")).to_contain_text("split on “;”")

    # No column is set to a new attribute: no new-attribute input shows, and no other column has a preview.
    for column in (tags, interests, client, city):
        expect(column.get_by_label("Attribute name")).to_be_hidden()
        expect(column.get_by_label("Type", exact=True)).to_be_hidden()
    for column in (interests, client, city):
        expect(column.locator(".list-preview")).to_be_hidden()

    interests.get_by_label("What interests fills").select_option(label="New attribute…")
    expect(interests.get_by_label("Attribute name")).to_be_visible()
    expect(interests.get_by_label("Attribute name")).to_have_value("interests")
    expect(interests.get_by_label("Type", exact=True)).to_be_visible()
    for column in (tags, client, city):
        expect(column.get_by_label("Attribute name")).to_be_hidden()
    expect(interests.locator(".list-preview")).to_be_hidden()  # a new text attribute is not a list
    interests.get_by_label("Type", exact=True).select_option(label="List of texts")
    expect(interests.locator(".list-preview li").first.locator(".list-item")).to_have_text(["cooking", "hiking"])
    manny.get_by_label("Separator between the items of a list").select_option(",")
    expect(interests.locator(".list-preview li").first.locator(".list-item")).to_have_text(["cooking;hiking"])
    manny.get_by_label("Separator between the items of a list").select_option(";")

    # Rows are matched on email, the only identity a column fills; crm_id is offered once a column fills it.
    match_on = manny.get_by_label("Match rows to profiles by")
    expect(match_on).to_have_value("email")
    expect(match_on.locator("option[value='crm_id']")).to_be_disabled()
    client.get_by_label("What client fills").select_option("identity:crm_id")
    expect(match_on.locator("option[value='crm_id']")).to_be_enabled()
    row("email").get_by_label("What email fills").select_option("ignore")
    expect(match_on).to_have_value("crm_id")  # email is no longer mapped
    row("email").get_by_label("What email fills").select_option("email")

    manny.get_by_role("button", name="Start the import").click()
    expect(manny.get_by_role("status")).to_contain_text("Import queued")
    profile_import = ProfileImport.objects.get()
    assert (profile_import.match_on, profile_import.list_separator) == ("crm_id", ";")

    assert services.import_run(import_id=profile_import.pk) == ProfileImport.Status.DONE
    stored = {profile.email: profile.attributes for profile in Profile.objects.all()}
    assert stored == {
        "ann@example.com": {"tags": ["vip", "beta", "churn-risk"], "interests": ["cooking", "hiking"]},
        "bob@example.com": {"tags": ["vip"]},
    }
