"""What a marketer hit in a day's work (issue 20), in Chromium: the segment page's
Export and mailing buttons, an event day turned into a segment and an export
(4); saving no blocks and broken pasted JSON (5); the value picker closing and
event chips by name (8); a new trigger started for the current members (9);
the builder's ready-made filters (11; the reactivation starter is in
test_reactivation_browser.py); the home page and the task list an admin lands on (12)."""

import datetime
import re

import pytest
from playwright.sync_api import expect

from webapp.db import database
from webapp.events.service import day_customers
from webapp.models import Customer, EventType, Order, Segment, SegmentMember, Task, Trigger, TriggerExecution, User
from webapp.segments.builder import shortcut_block

from .test_builder import add_block, add_filter, cli_count, new_segment, preview_count, quiet, settled, shown_definition

pytestmark = pytest.mark.browser


def stamp():
    return datetime.datetime.now().strftime("%H%M%S%f")


def busiest_day(code):
    """(event type, the local day with the most occurrences of it)."""
    event = EventType.get(EventType.code == code)
    row = database.execute_sql(
        "SELECT DATE(occurred_at), COUNT(*) FROM event_occurrence WHERE event_type_id = ? "
        "GROUP BY 1 ORDER BY 2 DESC, 1 DESC LIMIT 1",
        (event.id,),
    ).fetchone()
    return event, datetime.date.fromisoformat(row[0])


def test_event_day_to_segment_export_and_mailing(admin_page, live_server):
    page = admin_page
    event, day = busiest_day("website_visit")
    _rows, total = day_customers(event.id, day, "UTC", 1, 10)
    page.goto(f"/events/{event.id}?day={day.isoformat()}")
    day_list = page.locator("#day-customers")
    expect(day_list).to_contain_text(f"{total:,} customer")

    # Export: the day's customers, as a CSV
    day_list.get_by_role("link", name="Export").click()
    expect(page.locator("p.lead")).to_contain_text(f"{total:,} customer")
    with page.expect_download() as info:
        page.get_by_role("button", name="Export").click()
    rows = open(info.value.path(), encoding="utf-8").read().splitlines()
    assert len(rows) == total + 1 and info.value.suggested_filename.startswith(f"website_visit-{day.isoformat()}-")

    # Make a segment: the builder opens on the day's Events block, named after it
    page.goto(f"/events/{event.id}?day={day.isoformat()}")
    page.locator("#day-customers").get_by_role("link", name="Make a segment").click()
    expect(page.locator("section.block")).to_have_count(1)
    expect(page.locator("#blocks-0 .chip-label")).to_have_text(event.name)  # the name, not the code
    assert preview_count(page) == total
    name = page.get_by_label("Name").input_value()
    assert name == f"{event.name} on {day.isoformat()}"
    suffix = stamp()
    page.get_by_label("Name").fill(f"{name} {suffix}")
    # the code follows the name after a short pause in typing: wait for it, not only for quiet htmx
    expect(page.locator("#code")).to_have_value(re.compile(rf"_{suffix}$"))
    quiet(page)
    code = page.locator("#code").input_value()
    page.get_by_role("button", name="Create segment").click()
    expect(page).to_have_url(re.compile(rf"/segments/{code}$"))

    # the segment's page: Export and a mailing to it
    page.get_by_role("link", name="Export", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Export the members of")
    page.go_back()
    page.get_by_role("link", name="New mailing to this segment").click()
    segment = Segment.get(Segment.code == code)
    expect(page.get_by_label("Segment")).to_have_value(str(segment.id))


def test_no_blocks_asks_and_broken_json_blocks_saving(admin_page):
    page = admin_page
    new_segment(page, f"All of them {stamp()}")
    code = page.locator("#code").input_value()
    page.get_by_role("button", name="Create segment").click()
    box = page.locator("#confirm-all")
    expect(box).to_contain_text(f"This segment has no filters: all {Customer.select().count():,} customers.")
    assert not Segment.select().where(Segment.code == code).exists()

    # a broken paste: the message beside the text, the caret at the error, saving disabled
    page.get_by_text("— the definition as text").click()
    text = page.get_by_label("Paste a definition")
    broken = '{"version": 1,\n "blocks": [}'
    text.fill(broken)
    page.get_by_role("button", name="Load into the builder").click()
    problems = page.locator("#json-problems")
    expect(problems).to_contain_text("line 2, column 13")
    expect(text).to_have_attribute("aria-invalid", "true")
    expect(text).to_be_focused()
    assert text.evaluate("t => t.selectionStart") == broken.index("}")
    save = page.get_by_role("button", name="Create segment")
    expect(save).to_be_disabled()
    text.fill("")
    expect(save).to_be_enabled()
    expect(problems).to_be_empty()

    page.get_by_role("button", name="Save with every customer").click()
    expect(page).to_have_url(re.compile(rf"/segments/{code}$"))
    assert Segment.get(Segment.code == code).definition["blocks"] == []


def test_value_picker_closes_after_a_choice(admin_page):
    page = admin_page
    new_segment(page, f"Picker {stamp()}")
    block = add_block(page, "Customer")
    city = add_filter(page, block, "City")
    search = city.locator(".chip-search")
    suggestions = city.locator(".suggestions")
    search.click()
    search.fill("мос")
    # wait for the answer to "мос": the list the click on the box asked for can still be on screen
    page.wait_for_function(
        """(box) => {
            const options = [...box.querySelectorAll('[role=option]')];
            return options.length > 0
                && options.every((o) => (o.dataset.label || o.textContent).toLowerCase().includes('мос'));
        }""",
        arg=suggestions.element_handle(),
        timeout=15000,
    )
    option = suggestions.get_by_role("option").first
    chosen = option.get_attribute("data-label")
    option.click()
    expect(city.locator(".chips .chip-label").first).to_have_text(chosen)
    expect(search).to_be_focused()
    page.wait_for_timeout(600)  # a late answer (the focus reload) must not bring the list back
    settled(page)
    expect(suggestions.get_by_role("option")).to_have_count(0)
    # Enter picks and closes too; Escape and a click outside close it
    search.fill("сан")
    expect(suggestions.get_by_role("option").first).to_be_visible()
    search.press("Escape")
    expect(suggestions.get_by_role("option")).to_have_count(0)
    search.fill("ка")
    expect(suggestions.get_by_role("option").first).to_be_visible()
    page.get_by_role("heading", name="Filters").click()
    expect(suggestions.get_by_role("option")).to_have_count(0)
    # the next filter's input is not covered: it takes a click
    source = add_filter(page, block, "Source")
    source.locator(".chip-search").click()
    expect(source.locator(".chip-search")).to_be_focused()

    # an Events block's chip says the event's name
    events = add_block(page, "Events")
    row = add_filter(page, events, "Event")
    row.locator(".chip-search").click()
    row.locator(".chip-search").fill("website")
    label = EventType.get(EventType.code == "website_visit").name
    row.locator(".suggestions").get_by_role("option", name=label).click()
    expect(row.locator(".chips .chip-label")).to_have_text(label)
    page.get_by_role("button", name="Apply filters").click()
    settled(page)
    # drawn again by the server (a block added): still the name
    add_block(page, "Customer")
    expect(page.locator("#blocks-1 .chips .chip-label")).to_have_text(label)


def test_ready_made_filters(admin_page, live_server, tmp_path):
    page = admin_page
    new_segment(page, f"Ready-made {stamp()}")

    def shortcut(label, days=None):
        before = page.locator("section.block").count()
        page.locator(".shortcut-menu > summary").click()
        if days is not None:
            page.get_by_label("N days:").fill(str(days))
        item = page.locator(".shortcut-menu .menu-item", has=page.locator("strong", has_text=re.compile(f"^{label}$")))
        item.click()
        expect(page.locator("section.block")).to_have_count(before + 1)
        quiet(page)

    shortcut("Never ordered")
    never = Customer.select().where(~Customer.id.in_(Order.select(Order.customer))).count()
    assert 0 < never < Customer.select().count()
    assert preview_count(page) == never
    page.locator("#blocks-0").get_by_role("button", name="Delete block").click()
    expect(page.locator("section.block")).to_have_count(0)
    quiet(page)
    shortcut("Did not open an email in N days", days=45)
    shortcut("No order in N days", days=200)
    definition = shown_definition(page)
    assert definition["blocks"] == [shortcut_block("no_open", 45), shortcut_block("no_order", 200)]
    count = preview_count(page)
    assert 0 < count == cli_count(live_server, tmp_path, definition)


def test_new_trigger_started_for_current_members(admin_page, queue_server):
    page = admin_page
    members = list(Customer.select().where(Customer.email.is_null(False)).order_by(Customer.id).limit(4))
    segment = Segment.create(
        code=f"start_{stamp()}",
        name=f"Start existing {stamp()}",
        type="static",
        source="list",
        definition={"version": 1, "match": "all", "blocks": []},
    )
    for c in members:
        SegmentMember.create(segment=segment, customer=c)
    page.goto("/triggers/new")
    name = f"Welcome {segment.code}"
    page.get_by_label("Name").fill(name)
    expect(page.locator("#start-existing")).not_to_contain_text("already in the segment")
    page.get_by_label("Segment", exact=True).select_option(str(segment.id))
    offer = page.get_by_label("Also start it now for the 4 customers already in the segment")
    expect(offer).not_to_be_checked()  # off by default
    page.get_by_label("When a customer").select_option("exited")
    expect(offer).to_have_count(0)  # only for entries
    page.get_by_label("When a customer").select_option("entered")
    expect(offer).to_be_visible()
    page.wait_for_load_state("networkidle")
    offer.check()
    expect(page.locator("#steps-0-action")).to_have_value("email")  # a new trigger's first step
    page.locator("#steps-0-subject").fill("Hello {{ first_name }}")
    page.locator("#steps-0-body").fill("<p>Welcome</p>")
    page.get_by_role("button", name="Save trigger").click()
    expect(page.get_by_role("status").filter(has_text="started for 4 customers")).to_be_visible()
    trigger = Trigger.get(Trigger.name == name)
    assert TriggerExecution.select().where(TriggerExecution.trigger == trigger.id).count() == 4


def test_admin_lands_on_all_open_tasks_and_the_home_page(admin_page, live_server):
    page = admin_page
    manager = User.get_or_none(User.email == "olga.manager@example.com")
    if manager is None:
        from webapp.accounts.service import create_user

        manager = create_user("olga.manager@example.com", "secret-password-1", role="manager", name="Olga")
    title = f"Call about the order {stamp()}"
    Task.create(customer=live_server.known_id, assignee=manager, title=title)
    page.goto("/")
    expect(page.locator("#home-tasks")).to_contain_text(title)
    expect(page.locator("#home-work")).to_be_visible()
    expect(page.locator("#home-changes")).to_be_visible()
    page.get_by_role("navigation", name="Main").get_by_role("link", name=re.compile("^Tasks")).click()
    expect(page.get_by_role("link", name="Everyone’s")).to_have_attribute("aria-current", "page")
    expect(page.locator("table.tasks-table")).to_contain_text(title)
