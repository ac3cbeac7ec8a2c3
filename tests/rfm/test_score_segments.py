"""RFM score segments (issue 20, point 13): one system segment per letter and
score, whose members equal the stored scores after a run (and the pandas
scores), with entries and exits logged on a recompute; the builder's "RFM
scores" filter makes the spec's segment-reference block, which counts the
right customers; the segment list and analytics keep the fifteen segments out
of the way. Both databases."""

import datetime

from segments.conftest import marketer  # noqa: F401 - fixture: a logged-in marketer
from segments.formdata import form_fields
from werkzeug.datastructures import MultiDict

from webapp import engine
from webapp.analytics import service as analytics
from webapp.engine import catalogue
from webapp.models import RfmScore, RfmSettings, Segment, SegmentChange, SegmentMember, SegmentRun
from webapp.rfm import service as rfm
from webapp.segments import builder as b

from .conftest import AS_OF, expected_quintiles, expected_values

LETTERS = ("r", "f", "m")


def members(code):
    segment = Segment.get(Segment.code == code)
    return {c for (c,) in SegmentMember.select(SegmentMember.customer).where(SegmentMember.segment == segment).tuples()}


def stored(letter, score):
    return {c for (c,) in RfmScore.select(RfmScore.customer).where(getattr(RfmScore, letter) == score).tuples()}


def compute_as_of(as_of):
    RfmSettings.update(as_of=as_of).where(RfmSettings.id == rfm.get_settings().id).execute()
    return rfm.compute_now(trigger="user", tz="UTC")


def expected(scores, letter, score):
    return {int(cid) for cid, row in scores.iterrows() if int(row[letter]) == score}


def test_score_segments_hold_the_stored_scores(orders):
    run = compute_as_of(AS_OF)
    assert run.status == "done"
    want = expected_quintiles(expected_values(orders))
    seen = 0
    for letter in LETTERS:
        for score in range(1, 6):
            code = f"rfm_{letter}{score}"
            segment = Segment.get(Segment.code == code)
            assert (segment.system, segment.source, segment.type, segment.in_analytics) == (
                True,
                "rfm",
                "dynamic",
                False,
            )
            ids = members(code)
            assert ids == stored(letter, score) == expected(want, letter, score), code
            assert segment.size == len(ids)
            seen += len(ids)
    # every scored customer is in exactly one segment per letter
    assert seen == 3 * run.scored == 3 * len(want)


def test_recompute_logs_score_entries_and_exits(orders):
    early = AS_OF - datetime.timedelta(days=60)
    compute_as_of(early)
    before = {(x, n): stored(x, n) for x in LETTERS for n in range(1, 6)}
    compute_as_of(AS_OF)
    moved = 0
    for letter in LETTERS:
        for score in range(1, 6):
            after = stored(letter, score)
            assert members(f"rfm_{letter}{score}") == after
            segment = Segment.get(Segment.code == f"rfm_{letter}{score}")
            run = SegmentRun.select().where(SegmentRun.segment == segment).order_by(SegmentRun.id.desc()).get()
            log = list(SegmentChange.select().where(SegmentChange.run == run.id))
            entered = {c.customer_id for c in log if c.change == "entered"}
            exited = {c.customer_id for c in log if c.change == "exited"}
            assert entered == after - before[(letter, score)]
            assert exited == before[(letter, score)] - after
            assert (run.trigger, run.status, run.entered, run.exited, run.size) == (
                "rfm",
                "done",
                len(entered),
                len(exited),
                len(after),
            )
            moved += len(entered) + len(exited)
    assert moved > 0
    # the same scores again: nothing moves
    changes = SegmentChange.select().count()
    compute_as_of(AS_OF)
    assert SegmentChange.select().count() == changes


def test_a_definition_on_scores_counts_the_right_customers(orders):
    compute_as_of(AS_OF)
    want = expected_quintiles(expected_values(orders))
    cases = [
        ({"r": [5], "f": [4, 5]}, want[(want.r == 5) & want.f.isin([4, 5])]),
        ({"r": [4, 5], "m": [5]}, want[want.r.isin([4, 5]) & (want.m == 5)]),
        ({"f": [1]}, want[want.f == 1]),
        ({"r": [1, 2], "f": [3], "m": [2, 3, 4]}, want[want.r.isin([1, 2]) & (want.f == 3) & want.m.isin([2, 3, 4])]),
    ]
    for chosen, rows in cases:
        definition = engine.parse_definition({"version": 1, "blocks": [b.rfm_score_block(chosen)]})
        ids = {int(c) for c in rows.index}
        assert ids, chosen  # the generated history has customers in every case
        assert {c for (c,) in engine.customer_query(definition).tuples()} == ids, chosen
        assert engine.count(definition) == len(ids)


def test_builder_rfm_scores_filter(app, marketer, orders):
    before = marketer.get("/segments/new").get_data(as_text=True)
    assert "Available after the first RFM computation." in before and 'name="rfm_r"' not in before
    compute_as_of(AS_OF)
    assert 'name="rfm_r"' in marketer.get("/segments/new").get_data(as_text=True)
    response = marketer.post(
        "/segments/builder",
        data=MultiDict([("match", "all"), ("action", "rfm_scores"), ("rfm_r", "5"), ("rfm_f", "4"), ("rfm_f", "5")]),
        htmx=True,
    )
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    definition = b.definition_from_form(MultiDict(form_fields(html)), catalogue())
    assert engine.to_json(engine.parse_definition(definition))["blocks"] == [
        {
            "entity": "segment",
            "match": "all",
            "filters": [
                {"field": "segment", "op": "in", "values": [{"value": "rfm_r5", "exclude": False}]},
                {
                    "field": "segment",
                    "op": "in",
                    "values": [{"value": "rfm_f4", "exclude": False}, {"value": "rfm_f5", "exclude": False}],
                },
            ],
        }
    ]
    assert "RFM: R5" in html and "RFM: F4" in html  # chips read the segments' names
    # nothing ticked: no block, the menu stays open with the reason
    response = marketer.post("/segments/builder", data={"match": "all", "action": "rfm_scores"}, htmx=True)
    html = response.get_data(as_text=True)
    assert "Tick at least one score." in html and "blocks-0-entity" not in html


def test_score_segments_are_kept_out_of_the_way(app, marketer, orders):
    compute_as_of(AS_OF)
    listed = marketer.get("/segments/").get_data(as_text=True)
    assert "rfm_champions" in listed and "rfm_r5" not in listed
    assert "15 RFM score segments (R, F or M from 1 to 5) are not listed." in listed
    shown = marketer.get("/segments/?scores=1").get_data(as_text=True)
    assert "rfm_r5" in shown and "rfm_m1" in shown and "are not listed" not in shown
    # a search that only they match says where they are
    found = marketer.get("/segments/?q=rfm_r").get_data(as_text=True)
    assert "No segments match" in found and "5 RFM score segments" in found
    # analytics: not offered, and not among the defaults even when made available
    available = analytics.analytics_segments()
    assert not [s for s in available if s.code.startswith(("rfm_r", "rfm_f", "rfm_m"))]
    Segment.update(in_analytics=True).where(Segment.code.in_(["rfm_r5", "rfm_f5"])).execute()
    defaults = {s.code for s in analytics.default_segments(analytics.analytics_segments())}
    assert defaults and not defaults & {"rfm_r5", "rfm_f5"}
    # the segment picker: the classes and the marketer's segments first, then the scores
    picker = marketer.get("/segments/options/segment?q=rfm").get_data(as_text=True)
    assert max(picker.index(f"rfm_{key}<") for key in ("champions", "lost", "cant_lose")) < picker.index("rfm_f1<")
    assert "rfm_r5<" in marketer.get("/segments/options/segment?q=rfm_r").get_data(as_text=True)
    # the home page's entries and exits of today: the classes, not the scores
    home = marketer.get("/").get_data(as_text=True)
    assert "RFM: champions" in home and "RFM: R5" not in home and "RFM: M1" not in home
    # the segment page says what the segment is
    page = marketer.get("/segments/rfm_m3").get_data(as_text=True)
    assert "An RFM score segment: the customers whose M score is 3" in page
    rfm_page = marketer.get("/rfm/").get_data(as_text=True)
    assert "RFM score segments" in rfm_page and "/segments/rfm_f2" in rfm_page
