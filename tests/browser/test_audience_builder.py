"""The rule builder in a browser: a manager builds a rule with a few clicks (htmx fragments, no page reload),
watches the estimate follow, round-trips it through the JSON editor and saves it. The log_in fixture fails the
test on any console error, so a script or style blocked by the Content Security Policy fails it too."""

import json

import pytest
from playwright.sync_api import expect

from audiences.models import AttributeDefinition, Audience, Profile

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _settled(page):
    """Wait until htmx has no request in flight and has settled its answer. Each choice re-renders the whole
    builder: the new builder's controls have no htmx handlers until it settles (htmx's 20 ms settle delay), so a
    choice made in between sends nothing. A fresh-clone CI run showed it: the operator read "is one of" but the
    value field was still the single value's, and the test waited 30 s for the list's."""
    expect(page.locator(".htmx-request, .htmx-swapping, .htmx-settling")).to_have_count(0)


@pytest.fixture
def customers(transactional_db):
    for name, type_ in [("plan", "string"), ("country", "string"), ("age", "number")]:
        AttributeDefinition.objects.create(name=name, type=type_)
    rows = [("pro", "FR", 30), ("pro", "DE", 41), ("pro", "IT", 25), ("free", "FR", 52)]
    return Profile.objects.bulk_create(
        Profile(email=f"c{n}@example.com", attributes={"plan": plan, "country": country, "age": age})
        for n, (plan, country, age) in enumerate(rows)
    )


def test_manager_builds_a_rule_with_clicks_and_saves_it(log_in, customers):
    page = log_in("manny")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audiences").click()
    page.get_by_role("link", name="New audience").click()
    page.get_by_label("Name", exact=True).fill("Pros in France or Germany")
    # A marker on the window: a full page load would lose it.
    page.evaluate("window.stillTheSamePage = true")

    builder = page.locator("#rule-builder")
    builder.get_by_role("button", name="+ Condition").click()
    first = page.locator("#rule-r-0")
    first.get_by_label("What to check").select_option("attribute:plan")
    _settled(page)
    first.get_by_label("Value").fill("pro")
    first.get_by_label("Value").press("Tab")
    estimate = page.locator("#rule-estimate .estimate-number")
    expect(estimate).to_have_text("3")

    builder.get_by_role("button", name="+ Group").last.click()
    country = page.locator("#rule-r-1-0")
    country.get_by_label("What to check").select_option("attribute:country")
    _settled(page)
    country.get_by_label("Operator").select_option("in")
    _settled(page)
    country.get_by_label("Values, separated by commas").fill("FR, DE")
    country.get_by_label("Values, separated by commas").press("Tab")
    expect(estimate).to_have_text("2")
    expect(page.locator("#rule-estimate")).to_contain_text("c0@example.com")

    # Changing the attribute re-renders the condition with the operators of its type.
    page.locator("#rule-r-1").get_by_role("button", name="+ Condition").click()
    age = page.locator("#rule-r-1-1")
    age.get_by_label("What to check").select_option("attribute:age")
    _settled(page)
    expect(age.get_by_label("Operator").locator("option")).to_contain_text(["is", "is not", "is one of"])
    expect(age.get_by_label("Operator").locator("option[value=between]")).to_have_count(1)
    age.get_by_role("button", name="Remove this condition").click()
    expect(page.locator("#rule-r-1-1")).to_have_count(0)

    builder.get_by_role("button", name="JSON").click()
    rule = {
        "all": [
            {"attribute": "plan", "op": "equals", "value": "pro"},
            {"any": [{"attribute": "country", "op": "in", "value": ["FR", "DE"]}]},
        ]
    }
    expect(page.get_by_label("The rule as JSON")).to_be_visible()
    assert json.loads(page.get_by_label("The rule as JSON").input_value()) == rule

    page.get_by_label("The rule as JSON").fill('{"all": [{"attribute": "plan", "op": "bogus"}]}')
    builder.get_by_role("button", name="Builder").click()
    expect(page.locator("#rule-errors")).to_contain_text("all[0].op")

    page.get_by_label("The rule as JSON").fill(json.dumps(rule))
    builder.get_by_role("button", name="Builder").click()
    expect(page.locator("#rule-r-1-0").get_by_label("Values, separated by commas")).to_have_value("FR, DE")
    assert page.evaluate("window.stillTheSamePage") is True

    page.get_by_role("button", name="Create audience").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Pros in France or Germany")
    expect(page.locator(".rule-words")).to_have_text("plan is pro AND country is one of FR, DE")
    expect(page.locator(".estimate .estimate-number")).to_have_text("2")
    assert Audience.objects.get(name="Pros in France or Germany").rule == rule


def test_builder_inputs_and_save_wait_while_the_builder_is_re_rendered(log_in, customers):
    page = log_in("manny")
    page.goto("/audiences/new/")
    page.locator("#rule-builder").get_by_role("button", name="+ Condition").click()
    value = page.locator("#rule-r-0").get_by_label("Value")
    save = page.get_by_role("button", name="Create audience")
    expect(value).to_be_enabled()
    # Let the requests the new condition set off (the estimate, 500 ms later) finish first, so the held request
    # below is the only one in flight.
    page.wait_for_load_state("networkidle")
    held = []

    def hold(route):
        held.append(route)  # the builder's answer waits until released below

    page.route("**/audiences/rule-builder/", hold, times=1)

    page.locator("#rule-r-0").get_by_label("What to check").select_option("attribute:age")

    # Typing into an input about to be replaced, or saving a form whose rule is being re-rendered, would lose it.
    expect(value).to_be_disabled()
    expect(save).to_be_disabled()
    assert len(held) == 1
    held[0].continue_()
    expect(page.locator("#rule-r-0").get_by_label("Operator").locator("option[value=between]")).to_have_count(1)
    expect(value).to_be_enabled()
    expect(save).to_be_enabled()
