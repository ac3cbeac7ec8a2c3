"""Static segments shaped by hand (issue 18, point 6): one customer added or
removed from the card or the member list, logged as manual with who did it;
a snapshot of a dynamic segment. SQLite and PostgreSQL."""

import pytest

from webapp import engine
from webapp.models import ChangedCustomer, Customer, Segment, SegmentChange, SegmentFigures, SegmentMember, User
from webapp.segments import manual
from webapp.segments.service import SegmentError

from .test_pages import MEN, text


@pytest.fixture
def people(db):
    return {
        ext: Customer.create(external_id=ext, email=f"{ext}@example.com", gender=gender).id
        for ext, gender in (("a", "male"), ("b", "female"), ("c", "male"))
    }


def static(code="vip", ids=()):
    seg = Segment.create(
        code=code, name=code.upper(), type="static", source="list", definition=manual.self_definition(code)
    )
    for cid in ids:
        SegmentMember.create(segment=seg, customer=cid)
    return seg


def member_ids(seg):
    return {m.customer_id for m in SegmentMember.select().where(SegmentMember.segment == seg.id)}


def test_add_and_remove_one_customer_are_logged_with_who(people, make_user):
    user = make_user(email="mia@example.com", role="marketer")
    seg = static(ids=[people["a"]])
    SegmentFigures.create(segment_id=seg.id, at=seg.created_at, members=1)
    assert manual.add_customer(seg, people["b"], user=user) is True
    assert manual.add_customer(seg, people["b"], user=user) is False  # already in: nothing logged twice
    assert member_ids(seg) == {people["a"], people["b"]} and Segment.get_by_id(seg.id).size == 2
    assert manual.remove_customer(seg, people["a"], user=user) is True
    assert manual.remove_customer(seg, people["a"], user=user) is False
    log = [(c.customer_id, c.change, c.manual, c.user_id) for c in SegmentChange.select().order_by(SegmentChange.id)]
    assert log == [(people["b"], "entered", True, user.id), (people["a"], "exited", True, user.id)]
    assert {c.customer_id for c in ChangedCustomer.select()} == {people["a"], people["b"]}
    assert not SegmentFigures.select().where(SegmentFigures.segment_id == seg.id).exists()  # figures read again


def test_dynamic_segments_are_not_changed_by_hand(people):
    dyn = Segment.create(code="men", name="Men", definition=MEN)
    with pytest.raises(SegmentError, match="dynamic"):
        manual.add_customer(dyn, people["a"])
    with pytest.raises(SegmentError, match="dynamic"):
        manual.remove_customer(dyn, people["a"])
    assert not SegmentMember.select().exists() and not SegmentChange.select().exists()


def test_snapshot_copies_current_members_into_a_static_segment(people, make_user):
    user = make_user(email="mia@example.com", role="marketer")
    dyn = Segment.create(code="men", name="Men", definition=MEN)
    with pytest.raises(SegmentError, match="not been computed"):
        manual.snapshot(dyn)
    Segment.update(computed_at=dyn.created_at).where(Segment.id == dyn.id).execute()
    for cid in (people["a"], people["c"]):
        SegmentMember.create(segment=dyn, customer=cid)
    copy = manual.snapshot(Segment.get_by_id(dyn.id), "March men", user=user)
    assert (copy.type, copy.source, copy.size, copy.name, copy.code) == (
        "static",
        "list",
        2,
        "March men",
        "men_snapshot",
    )
    assert member_ids(copy) == {people["a"], people["c"]}
    # its definition names itself: the engine gives exactly its members
    assert {c.id for c in engine.members_query(engine.parse_definition(copy.definition))} == member_ids(copy)
    log = {
        (c.customer_id, c.change, c.manual, c.user_id)
        for c in SegmentChange.select().where(SegmentChange.segment == copy.id)
    }
    assert log == {(people["a"], "entered", True, user.id), (people["c"], "entered", True, user.id)}
    # the source changes; the snapshot does not
    SegmentMember.delete().where(SegmentMember.segment == dyn.id).execute()
    assert member_ids(copy) == {people["a"], people["c"]}
    assert manual.snapshot(Segment.get_by_id(dyn.id)).code == "men_snapshot_2"


def test_member_list_add_remove_and_snapshot_pages(marketer, people):
    seg = static(ids=[people["a"]])
    page = text(marketer.get("/segments/vip"))
    assert "Add a customer by email or external id" in page and "Upload a list of emails" in page
    response = marketer.post("/segments/vip/members/add", data={"customer": "B@example.com"})
    assert response.status_code == 302
    assert member_ids(seg) == {people["a"], people["b"]}
    response = marketer.post("/segments/vip/members/add", data={"customer": "nobody"}, follow_redirects=True)
    assert "No single customer has the email or external id “nobody”." in text(response)
    marketer.post(f"/segments/vip/members/{people['a']}/remove")
    assert member_ids(seg) == {people["b"]}
    change = SegmentChange.get(SegmentChange.customer == people["a"])
    assert change.user_id == User.get(User.email == "mia@example.com").id
    # a dynamic segment offers a snapshot instead
    men = Segment.create(code="men", name="Men", definition=MEN, active=True)

    SegmentMember.create(segment=men, customer=people["c"])
    Segment.update(computed_at=men.created_at, size=1).where(Segment.id == men.id).execute()
    page = text(marketer.get("/segments/men"))
    assert "Save the members as a static segment" in page and "Add a customer by email" not in page
    response = marketer.post("/segments/men/snapshot")
    assert response.status_code == 302 and response.headers["Location"].endswith("/segments/men_snapshot")
    copy = Segment.get(Segment.code == "men_snapshot")
    assert member_ids(copy) == {people["c"]}


def test_card_adds_and_removes_by_hand(marketer, manager, people):
    seg = static(ids=[])
    body = text(marketer.get(f"/segments/customers/{people['a']}/history", htmx=True))
    assert "Add to a static segment" in body and 'value="vip"' in body
    response = marketer.post(
        f"/segments/customers/{people['a']}/add",
        data={"code": "vip"},
        htmx=True,
        headers={"HX-Target": "customer-segments"},
    )
    body = text(response)
    assert response.status_code == 200 and "Added to “VIP”." in body and "by hand, mia@example.com" in body
    assert member_ids(seg) == {people["a"]}
    response = marketer.post(
        f"/segments/vip/members/{people['a']}/remove", htmx=True, headers={"HX-Target": "customer-segments"}
    )
    assert "Removed from “VIP”." in text(response) and member_ids(seg) == set()
    # managers read, they do not change
    assert "Add to a static segment" not in text(manager.get(f"/segments/customers/{people['a']}/history", htmx=True))
    assert manager.post(f"/segments/customers/{people['a']}/add", data={"code": "vip"}).status_code == 403
