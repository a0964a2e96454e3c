"""The mapping page of an import (issue 15): guesses that prefer the declared schema, new-attribute inputs read only
for columns set to a new attribute, the list separator and its preview, the identity rows are matched on, and list
items held to the limit of a text."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from audiences.attributes import MAX_STRING, AttributeValueError, coerce
from audiences.forms.imports import MappingForm
from audiences.models import AttributeDefinition, ImportRowError, Profile, ProfileImport
from audiences.services import imports as services

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": tmp_path}},
    }


def declare(name: str, type_: str) -> None:
    AttributeDefinition.objects.create(name=name, type=type_)


def mapping_form(header: list[str], samples: list[list[str]] | None = None, data=None) -> MappingForm:
    return MappingForm(data, header=header, samples=samples or [[] for _ in header])


def guesses(form: MappingForm) -> list[str]:
    return [form[f"target_{index}"].value() for index in range(len(form.header))]


def initial_data(form: MappingForm, **changes) -> dict:
    """What the browser posts: every field at its initial value, then the changes."""
    data = {name: form[name].value() or "" for name in form.fields}
    data.update(changes)
    return data


def uploaded(client, personas, content: bytes) -> ProfileImport:
    client.force_login(personas["manny"])
    return services.import_create(actor=personas["manny"], upload=SimpleUploadedFile("contacts.csv", content))


def map_url(profile_import: ProfileImport) -> str:
    return reverse("audiences:import_map", args=[profile_import.pk])


# Guesses ------------------------------------------------------------------------------------------------


def test_a_column_named_like_a_declared_attribute_is_proposed_as_that_attribute():
    declare("country", AttributeDefinition.Type.STRING)

    assert guesses(mapping_form(["Email", "country"])) == ["email", "attribute:country"]


def test_without_such_an_attribute_the_simple_target_is_proposed():
    assert guesses(mapping_form(["Email", "country"])) == ["email", "country"]


def test_each_target_is_proposed_once_the_next_column_gets_the_next_fitting_one():
    declare("country", AttributeDefinition.Type.STRING)

    assert guesses(mapping_form(["email", "Country", "country code", "pays"])) == [
        "email",
        "attribute:country",
        "country",
        "ignore",
    ]


def test_names_match_whatever_their_case_spaces_and_underscores():
    declare("first_name", AttributeDefinition.Type.STRING)

    # crm_id is a built-in identity namespace; email and phone are the primary addresses' namespaces.
    assert guesses(mapping_form(["E-mail", "CRM ID", "First name", "Mobile", "Email consent"])) == [
        "email",
        "identity:crm_id",
        "attribute:first_name",
        "phone",
        "consent:email",
    ]


# New-attribute inputs -------------------------------------------------------------------------------------


def test_the_new_attribute_inputs_of_a_mapped_column_are_ignored_whatever_they_hold():
    declare("country", AttributeDefinition.Type.STRING)
    form = mapping_form(["email", "country"])
    data = initial_data(form, new_name_0="Not a name!", new_type_0="no such type", new_name_1="x" * 500)

    bound = mapping_form(["email", "country"], data=data)

    assert bound.is_valid(), bound.errors
    assert bound.cleaned_data["mapping"] == {"email": "email", "country": "attribute:country"}
    assert bound.cleaned_data["new_attributes"] == {}


def test_the_new_attribute_inputs_of_a_new_attribute_column_are_checked_and_named():
    form = mapping_form(["email", "Shoe size", "Hobby"])
    data = initial_data(
        form, target_1="new", new_name_1="Shoe Size", target_2="new", new_name_2="hobby", new_type_2="no such type"
    )

    bound = mapping_form(["email", "Shoe size", "Hobby"], data=data)

    assert not bound.is_valid()
    assert set(bound.errors) == {"new_name_1", "new_type_2"}
    assert "lower-case letters" in bound.errors["new_name_1"][0]
    assert "no such type" in bound.errors["new_type_2"][0]


def test_a_page_posted_with_garbage_in_unused_new_attribute_inputs_starts_the_import(client, personas):
    profile_import = uploaded(client, personas, b"email,city\nann@example.com,Lyon\n")
    page = client.get(map_url(profile_import))
    data = {name: page.context["form"][name].value() or "" for name in page.context["form"].fields}
    data.update(target_1="ignore", new_name_1="\u00a0Bad name", new_type_1="nope")

    response = client.post(map_url(profile_import), data)

    assert response.status_code == 302, response.context["form"].errors
    assert not AttributeDefinition.objects.exists()
    profile_import.refresh_from_db()
    assert profile_import.mapping == {"email": "email", "city": "ignore"}


def test_the_page_marks_the_new_attribute_inputs_and_the_list_targets_for_the_stylesheet(client, personas):
    declare("tags", AttributeDefinition.Type.STRING_LIST)
    declare("city", AttributeDefinition.Type.STRING)
    profile_import = uploaded(client, personas, b"email,tags\nann@example.com,a|b\n")

    content = client.get(map_url(profile_import)).content.decode()

    # audiences.css shows a column's new-attribute inputs only while "new" is chosen, and its list preview only
    # while the chosen option fills a list (data-list), or "new" with the type string_list.
    assert content.count('class="new-attribute"') == 2
    assert re.search(r'<option value="attribute:tags" data-list="true"[^>]*>', content)
    assert not re.search(r'<option value="attribute:city"[^>]*data-list', content)
    assert 'src="/static/js/import_map.js"' in content


# The list separator and its preview ----------------------------------------------------------------------


def test_the_separators_offered_are_the_ones_the_import_knows():
    form = mapping_form(["email"])

    assert [value for value, _ in form.fields["list_separator"].choices] == ["|", ";", ","]
    assert form["list_separator"].value() == "|"
    bound = mapping_form(["email"], data=initial_data(form, list_separator="/"))
    assert not bound.is_valid()
    assert "list_separator" in bound.errors


def test_the_preview_splits_the_first_values_with_the_chosen_separator():
    header, samples = ["email", "tags"], [["a@example.com"], ["vip;beta;churn-risk", " one | two ;; ", "x"]]
    form = mapping_form(header, samples)

    assert list(form.columns())[1]["items"] == [["vip;beta;churn-risk"], ["one", "two ;;"], ["x"]]
    chosen = mapping_form(header, samples, data=initial_data(form, list_separator=";"))
    assert list(chosen.columns())[1]["items"] == [["vip", "beta", "churn-risk"], ["one | two"], ["x"]]


def test_the_page_shows_the_split_of_a_list_column_for_the_separator_it_was_sent(client, personas):
    declare("tags", AttributeDefinition.Type.STRING_LIST)
    profile_import = uploaded(client, personas, b"email,tags\nann@example.com,vip;beta;churn-risk\n")
    page = client.get(map_url(profile_import))
    form = page.context["form"]
    assert form["target_1"].value() == "attribute:tags"

    def chips(content: str) -> list[str]:
        row = re.search(r'<th scope="row">tags</th>(.*?)</tr>', content, re.DOTALL).group(1)
        return re.findall(r'<span class="list-item">([^<]*)</span>', row)

    assert chips(page.content.decode()) == ["vip;beta;churn-risk"]
    # Posted with another separator and a mapping the server refuses, the page comes back split the new way.
    data = {name: form[name].value() or "" for name in form.fields}
    response = client.post(map_url(profile_import), {**data, "list_separator": ";", "target_0": "ignore"})
    assert response.status_code == 200
    assert chips(response.content.decode()) == ["vip", "beta", "churn-risk"]


def test_a_list_column_is_stored_split_on_the_chosen_separator(client, personas):
    declare("tags", AttributeDefinition.Type.STRING_LIST)
    profile_import = uploaded(client, personas, b"email,tags\nann@example.com,vip;beta;churn-risk\n")
    page = client.get(map_url(profile_import))
    data = {name: page.context["form"][name].value() or "" for name in page.context["form"].fields}

    response = client.post(map_url(profile_import), {**data, "list_separator": ";"})

    assert response.status_code == 302, response.context["form"].errors
    assert services.import_run(import_id=profile_import.pk) == ProfileImport.Status.DONE
    assert Profile.objects.get().attributes == {"tags": ["vip", "beta", "churn-risk"]}


# The identity rows are matched on ---------------------------------------------------------------------------


def test_match_on_offers_each_identity_once_and_starts_on_email_when_a_column_fills_it():
    form = mapping_form(["CRM ID", "email"])

    values = [value for value, _ in form.fields["match_on"].choices]
    assert values[:2] == ["email", "phone"]
    assert len(values) == len(set(values))
    assert "crm_id" in values
    assert form["match_on"].value() == "email"


def test_match_on_starts_on_the_first_mapped_identity_without_an_email_column():
    assert mapping_form(["Name", "CRM ID", "Mobile"])["match_on"].value() == "crm_id"
    assert mapping_form(["Mobile", "CRM ID"])["match_on"].value() == "phone"
    assert mapping_form(["Name"])["match_on"].value() == "email"


def test_matching_on_an_identity_no_column_fills_is_refused_on_the_page(client, personas):
    profile_import = uploaded(client, personas, b"email,crm\nann@example.com,C1\n")
    page = client.get(map_url(profile_import))
    data = {name: page.context["form"][name].value() or "" for name in page.context["form"].fields}

    response = client.post(map_url(profile_import), {**data, "match_on": "crm_id"})

    assert response.status_code == 200
    assert "rows are matched on &#x27;crm_id&#x27;, but no column fills it" in response.content.decode()
    profile_import.refresh_from_db()
    assert profile_import.status == ProfileImport.Status.UPLOADED


# List items are limited as texts ----------------------------------------------------------------------------


def test_a_huge_list_item_is_refused_with_a_message_naming_the_item():
    with pytest.raises(AttributeValueError, match=r"item 1 \('xxxxxxxxxxxxxxxxxxxx…', 70,000 characters\)"):
        coerce(AttributeDefinition.Type.STRING_LIST, "x" * 70_000)
    with pytest.raises(AttributeValueError, match=r"item 2 .* is longer than 2,000 characters"):
        coerce(AttributeDefinition.Type.STRING_LIST, ["fine", "y" * (MAX_STRING + 1)])
    assert coerce(AttributeDefinition.Type.STRING_LIST, ["z" * MAX_STRING]) == ["z" * MAX_STRING]


def test_an_imported_cell_of_70000_characters_is_not_stored_as_one_list_item(client, personas):
    declare("tags", AttributeDefinition.Type.STRING_LIST)
    content = b"email,tags\nann@example.com," + b"t" * 70_000 + b"\nbob@example.com,a|b\n"
    profile_import = uploaded(client, personas, content)
    services.import_start(
        profile_import=profile_import, actor=personas["manny"], mapping={"email": "email", "tags": "attribute:tags"}
    )

    assert services.import_run(import_id=profile_import.pk) == ProfileImport.Status.DONE

    error = ImportRowError.objects.get(profile_import=profile_import)
    assert (error.line, error.column) == (2, "tags")
    assert "item 1 ('tttttttttttttttttttt…', 70,000 characters) is longer than 2,000 characters" in error.problem
    stored = {profile.email: profile.attributes.get("tags") for profile in Profile.objects.all()}
    assert stored["bob@example.com"] == ["a", "b"]
    assert stored.get("ann@example.com") is None  # stored without the field, or not at all
