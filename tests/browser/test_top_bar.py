"""The top bar at a common laptop width (1366 px): one line for an administrator, whose settings pages are in a
Settings menu that opens without a script and whose links work."""

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SETTINGS_LINKS = [
    "Channels",
    "Suppression",
    "Approval policies",
    "Delivery rules",
    "Users",
    "Roles",
    "API keys",
    "Audit log",
]


def _at_laptop_width(page):
    page.set_viewport_size({"width": 1366, "height": 768})
    page.reload()
    return page


def _bar_rows(page) -> int:
    """How many rows the bar's items take: the distinct vertical centres of the brand, the links, the menu's
    summary, the bell and the user menu."""
    return page.evaluate(
        """() => {
          const items = document.querySelectorAll(['.topbar-inner > .brand', '.mainnav > a',
            '.mainnav > details > summary', '.topbar-inner > .bell', '.usermenu > summary'].join(', '));
          return new Set([...items].map(item => {
            const box = item.getBoundingClientRect();
            return Math.round(box.top + box.height / 2);
          })).size;
        }"""
    )


def test_the_administrators_bar_fits_one_line_and_the_settings_menu_leads_to_each_page(log_in):
    ada = _at_laptop_width(log_in("ada"))
    bar = ada.locator(".topbar")
    menu = ada.locator("nav[aria-label='Main'] details.navmenu")

    assert _bar_rows(ada) == 1
    assert bar.bounding_box()["height"] <= 3.25 * 15 + 1  # .topbar-inner's one-line height
    assert ada.evaluate("document.documentElement.scrollWidth") <= 1366  # nothing pushed off the side
    expect(menu.locator(".navmenu-panel")).to_be_hidden()

    menu.get_by_text("Settings", exact=True).click()
    expect(menu).to_have_attribute("open", "")
    links = menu.locator(".navmenu-panel a")
    expect(links).to_have_text(SETTINGS_LINKS)
    assert bar.bounding_box()["height"] <= 3.25 * 15 + 1  # the open panel lies over the page, not in the bar

    links.get_by_text("Audit log").click()
    expect(ada.get_by_role("heading", name="Audit log", level=1)).to_be_visible()
    expect(menu).to_have_class("navmenu navmenu-current")  # the current page's menu is marked, closed
    expect(menu).not_to_have_attribute("open", "")

    for name in SETTINGS_LINKS:
        menu.locator("summary").click()
        menu.locator(".navmenu-panel").get_by_role("link", name=name, exact=True).click()
        expect(menu.locator('.navmenu-panel a[aria-current="page"]')).to_have_text(name)  # in the closed menu
        assert _bar_rows(ada) == 1, name


def test_the_menu_opens_from_the_keyboard(log_in):
    ada = _at_laptop_width(log_in("ada"))
    summary = ada.locator("details.navmenu > summary")

    summary.focus()
    ada.keyboard.press("Enter")
    expect(ada.locator("details.navmenu")).to_have_attribute("open", "")
    ada.keyboard.press("Tab")
    expect(ada.locator(".navmenu-panel a").first).to_be_focused()
    ada.keyboard.press("Enter")
    expect(ada.get_by_role("heading", name="Channel configurations", level=1)).to_be_visible()


def test_each_role_sees_only_the_settings_it_may_open(log_in):
    manny = _at_laptop_width(log_in("manny"))
    manny.locator("details.navmenu > summary").click()
    expect(manny.locator(".navmenu-panel a")).to_have_text(["Channels"])

    vera = _at_laptop_width(log_in("vera"))
    expect(vera.locator("details.navmenu")).to_have_count(0)
    assert _bar_rows(vera) == 1
