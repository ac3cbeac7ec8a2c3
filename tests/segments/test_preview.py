"""The live preview (count, first members, messages at their block and filter),
the value pickers' options, relative dates in words, pasting JSON."""

import json
import re

from webapp import engine
from webapp.models import Segment

from .test_pages import text


def count_in(page):
    match = re.search(r'<output id="preview-number" class="big-number" data-count="(\d+)">', page)
    return int(match.group(1)) if match else None


EXCEPT_MOSCOW = {
    "match": "all",
    "rev": "r1",
    "blocks-0-entity": "customer",
    "blocks-0-match": "all",
    "blocks-0-filters-0-field": "city",
    "blocks-0-filters-0-op": "in",
    "blocks-0-filters-0-values": "-москва",
}


def test_preview_counts_with_the_engine(marketer, base):
    response = marketer.post("/segments/preview", htmx=True, data=EXCEPT_MOSCOW)
    assert response.headers["X-Builder-Rev"] == "r1"
    page = text(response)
    definition = {
        "version": 1,
        "match": "all",
        "blocks": [
            {
                "entity": "customer",
                "match": "all",
                "filters": [{"field": "city", "op": "in", "values": [{"value": "москва", "exclude": True}]}],
            }
        ],
    }
    expected = engine.count(engine.parse_definition(definition))
    assert expected == 5  # everyone but the three in Москва (any spelling), the one without a city included
    assert count_in(page) == expected and "customers match" in page
    assert "preview-members" not in page  # the count only, until "Apply filters"
    # the current definition, canonical, for the JSON view
    current = re.search(r'<pre id="json-current" class="json" hx-swap-oob="true">(.*?)</pre>', page, re.S).group(1)
    assert json.loads(current.replace("&#34;", '"').replace("&quot;", '"')) == definition
    # every slot is refreshed (emptied) out of band
    assert re.search(
        r'<div id="err-blocks-0-filters-0" class="slot-errors" aria-live="polite" hx-swap-oob="true">\s*</div>', page
    )


def test_apply_filters_lists_the_first_members_with_links(marketer, base):
    page = text(marketer.post("/segments/preview", htmx=True, data=dict(EXCEPT_MOSCOW, members="1")))
    links = re.findall(r'<a href="/customers/(\d+)"', page)
    assert sorted(int(n) for n in links) == sorted(base[c].id for c in ("c3", "c4", "c5", "c7", "c8"))
    assert "All 5" in page


def test_preview_puts_messages_at_their_block_and_filter(marketer, base):
    page = text(
        marketer.post(
            "/segments/preview",
            htmx=True,
            data={
                "match": "all",
                "blocks-0-entity": "customer",
                "blocks-0-match": "all",
                "blocks-0-filters-0-field": "city",
                "blocks-0-filters-0-op": "in",
                "blocks-0-filters-1-field": "birth_date",
                "blocks-0-filters-1-op": "relative",
                "blocks-0-filters-1-from_n": "3",
                "blocks-0-filters-1-from_dir": "ahead",
                "blocks-0-filters-1-to_n": "1",
                "blocks-0-filters-1-to_dir": "ahead",
                "blocks-1-entity": "deal",
                "blocks-1-match": "all",
                "blocks-1-having_match": "all",
                "blocks-1-filters-0-field": "amount",
                "blocks-1-filters-0-op": "between",
                "blocks-1-filters-0-from": "10",
            },
        )
    )
    assert count_in(page) is None and "Fix 3 problems to see the count." in page

    def slot(key):
        return re.search(rf'<div id="err-{key}" [^>]*>(.*?)</div>', page, re.S).group(1)

    assert "City: choose at least one value" in slot("blocks-0-filters-0")
    assert "Birth date: “from_days” is after “to_days”" in slot("blocks-0-filters-1")
    assert "Deal pipeline filter is not set" in slot("blocks-1")
    assert slot("blocks-1-filters-0").strip() == "" and slot("blocks-0").strip() == ""


def test_options_offer_database_values_by_folded_prefix(marketer, base):
    page = text(marketer.get("/segments/options/city?q=моск&free=1", htmx=True))
    assert re.findall(r'data-value="([^"]+)"', page) == ["Москва"]  # one entry for every spelling
    page = text(marketer.get("/segments/options/city", htmx=True))
    assert re.findall(r'data-value="([^"]+)"', page) == ["Berlin", "Hà Nội", "Paris", "Москва"]
    page = text(marketer.get("/segments/options/city?q=zzz&free=1", htmx=True))
    assert "Press Enter to use what you typed" in page
    page = text(marketer.get("/segments/options/product_group", htmx=True))
    assert re.findall(r'data-value="([^"]+)"[^>]*style="--depth: (\d)"', page) == [
        ("Pet food", "0"),
        ("Pet food/Cat food", "1"),
        ("Pet food/Cat food/Urinary care", "2"),
        ("Tea", "0"),
        ("Tea/Chinese tea", "1"),
    ]
    page = text(marketer.get("/segments/options/product_group?q=urinary", htmx=True))
    assert re.findall(r'data-value="([^"]+)"', page) == ["Pet food/Cat food/Urinary care"]
    page = text(marketer.get("/segments/options/product?q=tea", htmx=True))
    assert re.findall(r'data-label="([^"]+)"', page) == ["TEA-CH-01 — Da Hong Pao"]
    page = text(marketer.get("/segments/options/enum?entity=customer&field=gender&q=fe", htmx=True))
    assert re.findall(r'data-value="([^"]+)"', page) == ["female"] and "Female" in page
    assert "Nothing matches." in text(marketer.get("/segments/options/enum?entity=customer&field=gender&q=x"))
    assert marketer.get("/segments/options/passwords").status_code == 404


def test_stage_options_follow_the_chosen_pipelines_and_segments_skip_themselves(marketer, base):
    from browser import sample_data as s

    s.stage("Wholesale", "Shipped", "won")
    s.stage("Memberships", "Trial", "open")
    s.stage("Wholesale", "Won", "won")
    page = text(marketer.get("/segments/options/stage", htmx=True))
    assert re.findall(r'data-value="([^"]+)"', page) == ["Won", "Trial", "Shipped"]
    assert "Memberships, Wholesale" in page  # "Won" is a stage of both
    page = text(marketer.get("/segments/options/stage?pipeline=wholesale", htmx=True))
    assert re.findall(r'data-value="([^"]+)"', page) == ["Shipped", "Won"]
    Segment.create(code="men", name="Men", definition={"version": 1, "blocks": []})
    Segment.create(code="vip", name="VIP", definition={"version": 1, "blocks": []})
    page = text(marketer.get("/segments/options/segment?exclude=men", htmx=True))
    assert re.findall(r'data-value="([^"]+)"', page) == ["vip"]


def test_relative_words_follow_the_typed_days(marketer):
    words = marketer.post(
        "/segments/words",
        htmx=True,
        data={
            "prefix": "blocks-0-filters-1",
            "blocks-0-filters-1-op": "relative",
            "blocks-0-filters-1-from_n": "3",
            "blocks-0-filters-1-from_dir": "ago",
            "blocks-0-filters-1-to_n": "0",
        },
    )
    assert text(words) == "from 3 days ago to today"
    words = marketer.post(
        "/segments/words",
        htmx=True,
        data={
            "prefix": "blocks-0-filters-1",
            "blocks-0-filters-1-op": "relative",
            "blocks-0-filters-1-from_n": "3",
            "blocks-0-filters-1-from_dir": "ahead",
            "blocks-0-filters-1-to_n": "3",
            "blocks-0-filters-1-to_dir": "ahead",
            "blocks-0-filters-1-ignore_year": "1",
        },
    )
    assert text(words) == "in 3 days, in any year"
    assert text(marketer.post("/segments/words", htmx=True, data={"prefix": "../etc"})) == ""


def test_pasted_json_is_checked_like_the_builder(marketer, base):
    response = marketer.post("/segments/builder", htmx=True, data={"action": "load_json", "definition_json": "{oops"})
    assert response.headers["HX-Retarget"] == "#json-problems"
    assert "The text is not valid JSON" in text(response) and "The builder is unchanged" in text(response)
    bad = {"version": 1, "blocks": [{"entity": "deal", "filters": [{"field": "amount", "op": "between"}]}]}
    response = marketer.post(
        "/segments/builder", htmx=True, data={"action": "load_json", "definition_json": json.dumps(bad)}
    )
    assert response.headers["HX-Retarget"] == "#json-problems"
    assert "Block 1 (Deals), filter 1: Deal amount: set “from” or “to”" in text(response)
    good = {
        "version": 1,
        "blocks": [
            {
                "entity": "customer",
                "filters": [{"field": "city", "op": "in", "values": [{"value": "Москва", "exclude": True}]}],
            }
        ],
    }
    response = marketer.post(
        "/segments/builder", htmx=True, data={"action": "load_json", "definition_json": json.dumps(good)}
    )
    assert "HX-Retarget" not in response.headers and response.headers["HX-Trigger-After-Settle"] == "builder-changed"
    assert 'name="blocks-0-filters-0-values" value="-Москва"' in text(response)


def test_structural_changes_rerender_the_builder_with_focus(marketer, base):
    response = marketer.post("/segments/builder", htmx=True, data={"match": "any", "action": "add_block:deal"})
    page = text(response)
    assert 'name="match" value="any" checked' in page
    assert 'name="blocks-0-entity" value="deal"' in page and 'name="blocks-0-filters-0-field"' in page
    assert re.search(r'id="blocks-0-filters-0-search"[^>]*autofocus', page)  # ready to pick a pipeline
    assert "Deal pipeline: choose at least one value" in page
    response = marketer.post(
        "/segments/builder",
        htmx=True,
        data={
            "match": "all",
            "blocks-0-entity": "customer",
            "blocks-0-match": "all",
            "blocks-0-filters-0-field": "city",
            "blocks-0-filters-0-op": "in",
            "blocks-0-filters-0-values": "+Paris",
            "action": "add_filter:blocks-0:gender",
        },
    )
    page = text(response)
    assert 'value="+Paris"' in page and 'name="blocks-0-filters-1-field"' in page
    # an htmx answer is the builder only, never a whole page
    assert "<html" not in page
