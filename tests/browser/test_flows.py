"""The main flows in a real Chromium: setup, login, customer search, the card, custom fields.

Each test leaves a screenshot of its page in docs/screenshots/ (1366x850).
"""

import re

import pytest
from conftest import PASSWORD
from playwright.sync_api import expect

from webapp.fields import service as cf
from webapp.models import Customer, CustomField, CustomValue, User

from .conftest import ADMIN_EMAIL, log_in, screenshot

pytestmark = pytest.mark.browser


def test_setup_creates_the_first_admin_and_logs_in(page):
    # A fresh install: no admin yet (demo managers cannot log in).
    User.delete().where(User.role == "admin").execute()
    page.goto("/customers/")
    expect(page).to_have_url(re.compile(r"/setup$"))
    expect(page.get_by_role("heading", name="Create the first administrator")).to_be_visible()
    page.get_by_label("Your name").fill("Ada Admin")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("status").filter(has_text="Your admin account is ready")).to_be_visible()
    expect(page.locator(".usermenu")).to_contain_text("Ada Admin")
    assert User.get(User.email == ADMIN_EMAIL).role == "admin"
    # the session is real: a protected page opens
    page.get_by_role("link", name="Customers", exact=True).click()
    expect(page.get_by_role("heading", name="Customers", exact=True)).to_be_visible()


def test_login_rejects_a_wrong_password_then_logs_in(page):
    from .conftest import ensure_admin

    ensure_admin()
    page.goto("/customers/")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    screenshot(page, "login")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    log_in(page, go=False)
    # back where the login wall stopped us
    expect(page).to_have_url(re.compile(r"/customers/$"))


def test_search_as_you_type_narrows_the_list(admin_page, live_server):
    page = admin_page
    total = Customer.select().count()
    page.goto("/customers/")
    rows = page.locator("table.customers tbody tr")
    expect(rows).to_have_count(50)
    expect(page.locator(".summary")).to_contain_text(f"1–50 of {total:,}")
    screenshot(page, "customers")

    search = page.get_by_label("Search customers")
    expect(search).to_be_focused()
    search.press_sequentially("ири", delay=40)  # typing, not a form submit
    expect(page).to_have_url(re.compile(r"q=%D0%B8%D1%80%D0%B8"))
    expected = (
        Customer.select()
        .where(
            (Customer.first_name_ci.startswith("ири"))
            | (Customer.last_name_ci.startswith("ири"))
            | (Customer.company_name_ci.startswith("ири"))
            | (Customer.email_ci.startswith("ири"))
        )
        .count()
    )
    assert 1 <= expected < total
    expect(rows).to_have_count(min(expected, 50))
    for name in rows.locator("td.name").all_inner_texts():
        assert any(word.casefold().startswith("ири") for word in name.split()), name

    # several words: first and last name
    search.fill("ирина леб")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Ирина Лебедева")

    # nothing matches: a clear empty state
    search.fill("zzzz-nobody")
    expect(page.get_by_role("heading", name="No customers match")).to_be_visible()

    # the type filter alone
    search.fill("")
    page.get_by_label("Type").select_option("company")
    expect(page).to_have_url(re.compile(r"type=company"))
    companies = Customer.select().where(Customer.type == "company").count()
    expect(page.locator(".summary")).to_contain_text(f"of {companies:,}")
    badges = page.locator("table.customers tbody tr td:nth-child(2)").all_inner_texts()
    assert badges and set(badges) == {"Company"}

    # the pushed URL is a bookmark: opening it gives the same list as a full page
    page.goto(page.url)
    expect(page.get_by_label("Type")).to_have_value("company")
    expect(page.locator(".summary")).to_contain_text(f"of {companies:,}")


def test_paging_through_the_list(admin_page):
    page = admin_page
    total = Customer.select().count()
    page.goto("/customers/")
    first_page_names = page.locator("table.customers td.name").all_inner_texts()
    page.locator(".pager").get_by_role("link", name="2", exact=True).click()
    expect(page).to_have_url(re.compile(r"page=2"))
    expect(page.locator(".summary")).to_contain_text(f"51–100 of {total:,}")
    assert page.locator("table.customers td.name").all_inner_texts() != first_page_names
    page.go_back()
    expect(page.locator(".summary")).to_contain_text(f"1–50 of {total:,}")


def test_card_shows_profile_orders_deals_and_messages(admin_page, live_server):
    page = admin_page
    page.goto("/customers/")
    page.get_by_label("Search customers").press_sequentially("irina.leb", delay=30)
    link = page.get_by_role("link", name="Ирина Лебедева")
    expect(link).to_have_count(1)
    link.click()
    expect(page).to_have_url(re.compile(rf"/customers/{live_server.known_id}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Ирина Лебедева")

    profile = page.locator("section", has=page.get_by_role("heading", name="Profile"))
    expect(profile).to_contain_text("Москва")
    expect(profile).to_contain_text("1990-05-17")
    expect(profile.locator(".badges .badge", has_text=re.compile("^vip$", re.I))).to_have_count(1)
    expect(profile.locator(".badge.ok")).to_have_text("Email: yes")
    expect(profile.locator(".badge.bad")).to_have_text("SMS: no")

    orders = page.locator("#orders")
    expect(orders.locator("h2 .count")).to_have_text("2")
    expect(orders).to_contain_text("Беговые кроссовки")
    expect(orders).to_contain_text("Спорт/Обувь")
    expect(orders).to_contain_text("9,231.00")  # 8,990.00 + 2 × 120.50
    expect(orders).to_contain_text("Delivery: courier")

    deals = page.locator("#deals")
    expect(deals.locator("tbody tr")).to_have_count(2)
    expect(deals.locator(".badge.ok")).to_have_text("Won")
    expect(deals).to_contain_text("25,000.00")
    expect(deals).to_contain_text("Membership type: annual")
    expect(deals).to_contain_text("Lost reason: Выбрала другой клуб")

    messages = page.locator("#messages")
    expect(messages.locator("h2 .count")).to_have_text("25")
    rows = messages.locator("tbody:not(.more) tr")
    expect(rows).to_have_count(20)
    # newest first
    expect(rows.first).to_contain_text("2024-05-25")
    screenshot(page, "customer_card")

    more = messages.get_by_role("button", name="Show 5 more")
    more.focus()
    page.keyboard.press("Enter")
    expect(rows).to_have_count(25)
    expect(rows.last).to_contain_text("2024-05-01")
    expect(messages.get_by_role("button", name=re.compile("Show"))).to_have_count(0)


def test_unknown_customer_is_a_404_page(admin_page):
    response = admin_page.goto("/customers/999999")
    assert response.status == 404
    expect(admin_page.get_by_role("heading", name="Not found")).to_be_visible()


def test_add_a_custom_field_and_see_it_on_the_card(admin_page, live_server):
    page = admin_page
    page.goto("/fields/")
    page.get_by_role("link", name="Add field").click()
    page.get_by_label("Applies to").select_option("customer")
    page.get_by_label("Name").press_sequentially("Loyalty level", delay=20)
    # the code follows the name as it is typed
    expect(page.get_by_label("Code")).to_have_value("loyalty_level")
    options = page.get_by_label("Options")
    expect(options).to_be_hidden()
    page.get_by_label("Type").select_option("enum")
    expect(options).to_be_visible()
    page.get_by_role("button", name="Create field").click()
    # an enum without options is refused, next to the options box
    expect(page.locator("#options-error")).to_have_text("An enum field needs at least one option.")
    page.get_by_label("Options").fill("Bronze\nSilver\nGold")
    page.get_by_role("button", name="Create field").click()
    expect(page.get_by_role("status").filter(has_text="Field “Loyalty level” created")).to_be_visible()
    row = page.locator("#entity-customer tr", has_text="Loyalty level")
    expect(row).to_contain_text("custom.loyalty_level")
    expect(row).to_contain_text("Silver")
    page.evaluate("window.scrollTo(0, 0)")  # the flash above the list, for the picture
    screenshot(page, "custom_fields")

    page.goto(f"/customers/{live_server.known_id}")
    custom = page.locator("section", has=page.get_by_role("heading", name="Custom fields"))
    expect(custom.locator("dt", has_text="Loyalty level")).to_be_visible()
    expect(custom.locator("dt:has-text('Loyalty level') + dd")).to_have_text("—")

    field = cf.get_field("customer", "loyalty_level")
    cf.set_value(field, live_server.known_id, "Gold")
    page.reload()
    expect(custom.locator("dt:has-text('Loyalty level') + dd")).to_have_text("Gold")


def test_delete_a_field_through_the_confirmation(admin_page, live_server):
    page = admin_page
    field = cf.get_field("customer", "shoe_size") or cf.create_field("customer", "shoe_size", "Shoe size", "integer")
    cf.set_value(field, live_server.known_id, 38)
    page.goto("/fields/")
    # keyboard only: focus the Delete link of that row and press Enter
    page.get_by_role("link", name="Delete Shoe size").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Delete the field “Shoe size”?")).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text("1 stored value of this field will be deleted")
    # Cancel has the focus: Enter there keeps the field
    expect(page.get_by_role("link", name="Cancel")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(page.get_by_role("button", name="Delete field")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status").filter(has_text="Field “Shoe size” deleted with 1 value.")).to_be_visible()
    expect(page.locator("#entity-customer")).not_to_contain_text("Shoe size")
    assert CustomField.get_or_none(CustomField.id == field.id) is None
    assert CustomValue.select().where(CustomValue.field == field.id).count() == 0
