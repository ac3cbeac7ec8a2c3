"""The builder in Russian and in Vietnamese (issue 15): the seed documents'
examples built by a person whose browser asks for ru or vi, with the engine's
messages in the seed's own words, counts in local digits and no English
catalogue string in what the page (and builder.js) shows.

Labels are found through the catalogue (`T`) or by what the buttons do, never
by English text.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.test_pages_translated import english_patterns
from webapp import formats
from webapp.i18n import _, language
from webapp.segments.builder import relative_words

from .conftest import CHROMIUM, PASSWORD, VIEWPORT, ensure_admin, screenshot
from .test_builder import known_rows, pick, preview_count, quiet, relative, settled  # noqa: F401

pytestmark = pytest.mark.browser

BROWSER_LOCALES = {"ru": "ru-RU", "vi": "vi-VN"}
# The engine's message when a deal block has no pipeline filter, as the seeds word it
# (Bitrix24's «Не задан фильтр «Направление сделки»», its Vietnamese "Quy trình giao dịch").
PIPELINE_MISSING = {"ru": "Не задан фильтр «Направление сделки»", "vi": "Chưa đặt bộ lọc Quy trình giao dịch"}


def T(code, message, **params):
    with language(code):
        return _(message, **params)


@pytest.fixture(params=["ru", "vi"])
def local_page(request, browser, live_server):
    """A logged-in admin's page in a browser that asks for ru or vi; (page, code)."""
    assert CHROMIUM
    code = request.param
    context = browser.new_context(base_url=live_server.url, viewport=VIEWPORT, locale=BROWSER_LOCALES[code])
    context.set_default_timeout(5000)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    ensure_admin()
    page.goto("/login")
    expect(page.locator("html")).to_have_attribute("lang", code)
    page.locator("#email").fill("admin@example.com")
    page.locator("#password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    page.wait_for_url(lambda url: "/login" not in url)
    yield page, code
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def code_of(page):
    return page.locator("html").get_attribute("lang")


def name_segment(page, name):
    """Type the name and wait for the code to follow it: the code's answer comes
    after a pause in typing, and a block added meanwhile could lose its menu to it."""
    page.locator("#name").fill(name)
    expect(page.locator("#code")).not_to_have_value("")
    quiet(page)


def add_block(page, entity):
    before = page.locator("section.block").count()
    page.locator(".add-block > summary").click()
    page.locator(f".add-block .menu-item[hx-vals*='\"add_block:{entity}\"']").click()
    expect(page.locator("section.block")).to_have_count(before + 1)
    quiet(page)
    return page.locator(f"#blocks-{before}"), f"blocks-{before}"


def add_filter(page, block, prefix, field):
    rows = block.locator("ol.filters:not(.conditions) > li.filter")
    before = rows.count()
    block.locator("summary", has_text=T(code_of(page), "+ Add filter")).click()
    block.locator(f".menu-item[hx-vals*='\"add_filter:{prefix}:{field}\"']").click()
    expect(rows).to_have_count(before + 1)
    quiet(page)
    return rows.nth(before)


def no_english(page, code):
    text = page.locator("body").inner_text()
    found = [msgid for msgid, regex in english_patterns(code) if regex.search(" ".join(text.split()))]
    assert found == []


def local_count(page, code):
    """The preview count, checked to read in the language's digits and separators."""
    count = preview_count(page)
    with language(code):
        expect(page.locator("#preview-number")).to_have_text(formats.thousands(count))
    return count


def test_gym_members_of_the_bitrix24_seed(local_page, live_server):
    page, code = local_page
    page.goto("/segments/new")
    name_segment(page, T(code, "Segments") + ": gym")
    customer, prefix = add_block(page, "customer")
    row = add_filter(page, customer, prefix, "type")
    contact = T(code, "Contact")
    pick(page, row, contact[:3], contact)
    deals, prefix = add_block(page, "deal")
    pipeline = deals.locator("li.filter").first  # a deal block starts with its pipeline
    remove = T(code, "Remove filter %(n)s (%(label)s)", n=1, label="\x00").split("\x00")[0]
    pipeline.get_by_role("button", name=re.compile("^" + re.escape(remove))).click()
    expect(deals.locator(".slot-errors").first).to_contain_text(PIPELINE_MISSING[code])
    settled(page)
    no_english(page, code)
    row = add_filter(page, deals, prefix, "pipeline")
    pick(page, row, "mem", "Memberships")
    row = add_filter(page, deals, prefix, "stage_kind")
    with language(code):
        won = formats.label("won")
    pick(page, row, won[:2], won)
    row = add_filter(page, deals, prefix, "custom.membership_type")
    pick(page, row, "ann", "annual")
    assert local_count(page, code) > 0
    no_english(page, code)


def test_birthday_in_3_days_of_the_retailcrm_seed(local_page, live_server, known_rows):  # noqa: F811
    page, code = local_page
    page.goto("/segments/new")
    name_segment(page, T(code, "Birth date"))
    customer, prefix = add_block(page, "customer")
    row = add_filter(page, customer, prefix, "birth_date")
    rev = page.locator("#builder").get_attribute("data-rev")
    row.locator("select.op-select").select_option(value="relative")
    page.wait_for_function("rev => document.querySelector('#builder').dataset.rev !== rev", arg=rev)
    quiet(page)
    row = customer.locator("li.filter").first
    relative(row, from_days=3, to_days=3)
    row.locator("input[name$='-ignore_year']").check()
    with language(code):
        words = relative_words(3, 3, ignore_year=True)
    expect(row.locator("output.words")).to_have_text(words)
    assert local_count(page, code) >= 2
    no_english(page, code)
    if code == "ru":  # the README tour's picture of the builder
        page.locator("body").click(position={"x": 5, "y": 300})
        page.evaluate(
            "window.scrollTo(0, document.querySelector('#filters-h').getBoundingClientRect().top + window.scrollY - 70)"
        )
        page.wait_for_timeout(200)
        screenshot(page, "builder")
