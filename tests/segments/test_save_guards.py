"""Saving a segment (issue 20, point 5): no blocks means every customer, so it is
saved only once confirmed, with the count; a pasted definition that does not
load keeps the segment unsaved, its error beside the text with line and
column, and the save button disabled. Both databases."""

import re

from segments.conftest import marketer  # noqa: F401 - fixture: a logged-in marketer
from webapp.models import Customer, Segment

SETTINGS = {"name": "Everyone", "code": "everyone", "type": "dynamic", "active": "y", "match": "all"}
MEN = {
    "blocks-0-entity": "customer",
    "blocks-0-match": "all",
    "blocks-0-filters-0-field": "gender",
    "blocks-0-filters-0-op": "in",
    "blocks-0-filters-0-values": "+male",
}


def text(response):
    return response.get_data(as_text=True)


def test_no_blocks_is_saved_only_once_confirmed_with_the_count(marketer):
    for n in range(1203):
        Customer.create(external_id=f"c{n}")
    asked = marketer.post("/segments/new", data=SETTINGS)
    assert asked.status_code == 200 and not Segment.select().exists()
    box = re.search(r'<div class="confirm-box card" role="alert" id="confirm-all">.*?</div>', text(asked), re.S)
    assert "This segment has no filters: all 1,203 customers." in box.group(0)
    assert 'name="confirm_all" value="1"' in box.group(0)
    # the form keeps what was typed
    assert 'value="Everyone"' in text(asked) and 'value="everyone"' in text(asked)
    saved = marketer.post("/segments/new", data={**SETTINGS, "confirm_all": "1"})
    assert saved.status_code == 302 and Segment.get(Segment.code == "everyone").definition["blocks"] == []
    # a segment with filters saves at once; removing all of them asks again
    assert marketer.post("/segments/new", data={**SETTINGS, "name": "Men", "code": "men", **MEN}).status_code == 302
    asked = marketer.post("/segments/men/edit", data={**SETTINGS, "name": "Men", "code": "men"})
    assert asked.status_code == 200 and "all 1,203 customers" in text(asked)
    assert Segment.get(Segment.code == "men").definition["blocks"] != []
    # already without blocks (confirmed when saved): saved again without asking
    again = marketer.post("/segments/everyone/edit", data={**SETTINGS, "name": "All of them"})
    assert again.status_code == 302 and Segment.get(Segment.code == "everyone").name == "All of them"


def test_pasted_json_that_does_not_load_blocks_saving(marketer):
    Customer.create(external_id="c1", gender="male")
    pasted = '{"version": 1,\n  "blocks": [\n    {"entity": "customer" "filters": []}\n  ]\n}'
    response = marketer.post("/segments/new", data={**SETTINGS, **MEN, "definition_json": pasted})
    assert response.status_code == 422 and not Segment.select().exists()
    page = text(response)
    box = re.search(r'<div id="json-problems">(.*?)</div>\s*<div class="form-actions">', page, re.S).group(1)
    assert "The text is not valid JSON: line 3, column 27: Expecting &#39;,&#39; delimiter" in box
    assert f'data-where="{pasted.index(chr(34) + "filters")}"' in box
    assert re.search(r'<details class="card json-panel" id="json-panel" open>', page)
    assert re.search(r'<textarea id="definition-json"[^>]*aria-invalid="true"', page)
    assert re.search(r'<button type="submit" class="primary" id="save-button" disabled>', page)
    # the htmx "Load into the builder" answers the same message, beside the text
    loaded = marketer.post(
        "/segments/builder", data={**MEN, "action": "load_json", "definition_json": pasted}, htmx=True
    )
    assert loaded.headers["HX-Retarget"] == "#json-problems" and "line 3, column 27" in text(loaded)
    # valid JSON that breaks a rule of the spec: the engine's message, still not saved
    bad = '{"version": 1, "blocks": [{"entity": "deal", "filters": []}]}'
    response = marketer.post("/segments/new", data={**SETTINGS, **MEN, "definition_json": bad})
    assert response.status_code == 422 and "Deal pipeline filter is not set" in text(response)
    assert not Segment.select().exists()
    # fixed (or cleared): saved
    assert marketer.post("/segments/new", data={**SETTINGS, **MEN, "definition_json": " "}).status_code == 302
