"""Segment overlap (issue 18, point 3): the mask counts against sets computed
here, the matrix page, the Venn picture, "members of A not in B" opening the
builder with a definition the engine evaluates to exactly that set. SQLite
and PostgreSQL."""

import itertools
import json
import random
import re
from urllib.parse import parse_qs, urlparse

import pytest

from webapp import charts, engine
from webapp.models import Customer, Segment, SegmentMember
from webapp.segments import overlap
from webapp.segments.service import membership_definition


def members(segment, customer_ids):
    SegmentMember.insert_many([(segment.id, c) for c in customer_ids], fields=["segment", "customer"]).execute()
    segment.size = len(customer_ids)
    segment.save()


def make_segments(n, customers, rng):
    sets = []
    for i in range(n):
        seg = Segment.create(code=f"s{i}", name=f"Seg {i}", type="static", definition={"version": 1, "blocks": []})
        chosen = {c for c in customers if rng.random() < 0.3 + 0.05 * i}
        members(seg, sorted(chosen))
        sets.append(chosen)
    return sets


@pytest.fixture
def customers(db):
    Customer.insert_many([{"external_id": f"e{n}"} for n in range(60)]).execute()
    return [c.id for c in Customer.select(Customer.id).order_by(Customer.id)]


def test_mask_counts_match_sets_for_eight_segments(customers):
    rng = random.Random(18)
    sets = make_segments(8, customers, rng)
    result = overlap.overlap([f"s{i}" for i in range(8)])
    for i, j in itertools.product(range(8), repeat=2):
        assert result.count(i, j) == len(sets[i] & sets[j])
    assert result.sizes == [len(s) for s in sets]
    assert result.union == len(set().union(*sets))
    exact = {}
    for c in customers:
        mask = sum(1 << i for i, s in enumerate(sets) if c in s)
        if mask:
            exact[mask] = exact.get(mask, 0) + 1
    assert result.regions == exact
    row = result.matrix[2]
    assert row[5] == (len(sets[2] & sets[5]), len(sets[2] & sets[5]) / len(sets[2]))


def test_picking_too_few_too_many_or_unknown_is_refused(customers):
    make_segments(2, customers, random.Random(1))
    with pytest.raises(overlap.OverlapError, match="at least two"):
        overlap.overlap(["s0", "s0"])
    with pytest.raises(overlap.OverlapError, match="at most 8"):
        overlap.overlap([f"x{i}" for i in range(9)])
    with pytest.raises(overlap.OverlapError, match="nope"):
        overlap.overlap(["s0", "nope"])


def test_empty_segment_has_no_share(customers):
    members(Segment.create(code="a", name="A", definition={"version": 1, "blocks": []}), customers[:3])
    Segment.create(code="b", name="B", definition={"version": 1, "blocks": []})
    result = overlap.overlap(["a", "b"])
    assert result.matrix == [[(3, 1.0), (0, 0.0)], [(0, None), (0, None)]]


def test_difference_definition_is_members_of_a_not_in_b(customers):
    sets = make_segments(2, customers, random.Random(7))
    parsed = engine.parse_definition(membership_definition("s0", "s1"))
    got = {c.id for c in engine.members_query(parsed)}
    assert got == sets[0] - sets[1]


def test_venn_labels_every_region_for_two_and_three():
    two = charts.venn(["A", "B"], {1: 5, 2: 7, 3: 2})
    assert [label[2] for label in two.labels] == ["5", "7", "2"]
    three = charts.venn(["A", "B", "C"], {7: 1})
    assert len(three.circles) == 3 and len(three.labels) == 7
    assert ("A ∩ B ∩ C: 1") in [label[3] for label in three.labels]
    assert charts.venn(["A", "B", "C", "D"], {}) is None


def test_overlap_page_matrix_venn_and_builder_link(marketer, customers):
    sets = make_segments(3, customers, random.Random(3))
    page = marketer.get("/segments/overlap?s=s0&s=s1&s=s2").get_data(as_text=True)
    assert "overlap-matrix" in page and "venn-chart" in page
    both = len(sets[0] & sets[1])
    assert f"<strong>{both}</strong>" in page
    links = re.findall(r'href="(/segments/new\?[^"]+)"', page)
    assert len(links) == 6
    link = links[0].replace("&amp;", "&")
    args = parse_qs(urlparse(link).query)
    assert json.loads(args["definition"][0]) == membership_definition("s0", "s1")
    builder = marketer.get(link).get_data(as_text=True)
    assert "Seg 0, not in Seg 1" in builder
    assert 'value="+s0"' in builder and 'value="-s1"' in builder  # A included, B excluded


def test_overlap_fragment_and_errors(marketer, customers):
    make_segments(2, customers, random.Random(5))
    response = marketer.get("/segments/overlap?s=s0", htmx=True, headers={"HX-Target": "overlap-result"})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "Pick at least two segments" in body and "<html" not in body
    empty = marketer.get("/segments/overlap").get_data(as_text=True)
    assert "Seg 0" in empty and "overlap-matrix" not in empty


def test_builder_link_with_a_bad_definition_shows_the_error(marketer, db):
    response = marketer.get("/segments/new?definition=%7Bnot+json", follow_redirects=True)
    assert response.status_code == 200
    assert "error-box" in response.get_data(as_text=True)
