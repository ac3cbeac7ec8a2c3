"""Versions of a segment's definition (issue 18): kept at every save with who
and when, the size at the first run after the save, listed on the segment page
with the difference in the builder's words, restored as a new version; the
migration gives existing segments version 1. SQLite and PostgreSQL."""

import copy
import importlib

from webapp.models import Segment, SegmentRun, SegmentVersion, User
from webapp.segments import runs, service, versions

from .test_pages import run_queued, text

GROUPS = {
    "version": 1,
    "match": "all",
    "blocks": [
        {
            "entity": "customer",
            "match": "all",
            "filters": [{"field": "city", "op": "in", "values": [{"value": "Москва"}]}],
        },
        {
            "entity": "order",
            "match": "all",
            "filters": [{"field": "product_group", "op": "in", "values": [{"value": "Pet food"}]}],
        },
    ],
}


def with_group(definition, *paths):
    changed = copy.deepcopy(definition)
    changed["blocks"][1]["filters"][0]["values"] += [{"value": p} for p in paths]
    return changed


def data(definition, **kw):
    return dict({"code": "cats", "name": "Cats", "definition": definition}, **kw)


def numbers(segment):
    return [
        v.number
        for v in SegmentVersion.select().where(SegmentVersion.segment == segment.id).order_by(SegmentVersion.number)
    ]


def test_every_save_of_the_definition_keeps_a_version_with_who_and_first_run_size(base, make_user, queue_server):
    user = make_user(email="vera@example.com", role="marketer")
    segment = service.create_segment(data(GROUPS, interval_minutes=15), user=user)
    first = SegmentVersion.get(segment=segment.id, number=1)
    assert first.created_by_id == user.id and first.interval_minutes == 15 and first.size is None
    run_queued()
    assert SegmentVersion.get_by_id(first.id).size == 1  # c1: Москва with urinary cat food

    service.update_segment(segment, data(GROUPS, name="Cat lovers", interval_minutes=15), user=user)
    assert numbers(segment) == [1]  # the name alone is not a new version
    service.update_segment(segment, data(with_group(GROUPS, "Tea"), interval_minutes=60), user=user)
    assert numbers(segment) == [1, 2]
    second = SegmentVersion.get(segment=segment.id, number=2)
    assert second.definition == Segment.get_by_id(segment.id).definition and second.interval_minutes == 60
    run_queued()
    assert SegmentVersion.get_by_id(second.id).size == 2  # c1 and c2 (Москва, tea)
    # a later run does not overwrite the first run's size
    runs.request_run(segment, trigger="user")
    run_queued()
    assert SegmentVersion.get_by_id(first.id).size == 1


def test_a_failed_save_keeps_no_version(base, queue_server):
    segment = service.create_segment(data(GROUPS))
    bad = with_group(GROUPS)
    bad["blocks"][0]["filters"][0]["field"] = "nope"
    try:
        service.update_segment(segment, data(bad))
    except service.SegmentError:
        pass
    assert numbers(segment) == [1]


def test_a_segment_made_without_a_version_keeps_its_first_state_at_its_first_edit(base, queue_server):
    segment = Segment.create(code="cats", name="Cats", definition=GROUPS, interval_minutes=15)
    service.update_segment(segment, data(with_group(GROUPS, "Tea"), interval_minutes=15))
    first, second = SegmentVersion.select().where(SegmentVersion.segment == segment.id).order_by(SegmentVersion.number)
    assert first.definition == GROUPS and first.created_by_id is None
    assert second.definition == Segment.get_by_id(segment.id).definition != GROUPS


def test_difference_in_the_builders_words(base, queue_server):
    segment = service.create_segment(data(GROUPS, interval_minutes=15))
    service.update_segment(segment, data(with_group(GROUPS, "Pet food/Cat food/Urinary care"), interval_minutes=60))
    (latest, changes), (first, none) = versions.history(segment.id)
    assert none == [] and latest.number == 2
    setting = next(c for c in changes if c.kind == "setting")
    assert (setting.label, setting.old, setting.new) == ("Recompute every", "15 minutes", "60 minutes")
    values = next(c for c in changes if c.kind == "values")
    assert values.block.number == 2 and values.new.label == "Product group"
    assert values.added == ["Pet food/Cat food/Urinary care"] and values.removed == []


def test_restore_makes_a_new_version_and_recomputes(base, make_user, queue_server):
    user = make_user(email="vera@example.com", role="marketer")
    segment = service.create_segment(data(GROUPS, interval_minutes=15), user=user)
    service.update_segment(segment, data(with_group(GROUPS, "Tea"), interval_minutes=60), user=user)
    run_queued()
    service.restore_version(Segment.get_by_id(segment.id), 1, user=user)
    segment = Segment.get_by_id(segment.id)
    first = SegmentVersion.get(segment=segment.id, number=1)
    assert segment.definition == first.definition and segment.interval_minutes == 15
    third = SegmentVersion.get(segment=segment.id, number=3)
    assert third.restored_from == 1 and third.definition == first.definition
    assert SegmentRun.select().where((SegmentRun.segment == segment.id) & (SegmentRun.status == "queued")).exists()
    try:
        service.restore_version(segment, 9)
    except service.SegmentError as exc:
        assert exc.status == 404
    else:
        raise AssertionError("a missing version restored")


def test_page_lists_versions_and_restores_one(marketer, base, queue_server):
    user = User.get(User.email == "mia@example.com")
    segment = service.create_segment(data(GROUPS, interval_minutes=15), user=user)
    service.update_segment(segment, data(with_group(GROUPS, "Tea"), interval_minutes=60), user=user)
    page = text(marketer.get("/segments/cats"))
    assert "Version 2" in page and "Version 1" in page and "mia@example.com" in page
    assert "now also includes “Tea”" in page and "“Recompute every”: 15 minutes → 60 minutes" in page
    assert 'action="/segments/cats/versions/1/restore"' in page and "data-confirm=" in page
    response = marketer.post("/segments/cats/versions/1/restore")
    assert response.status_code == 302
    assert Segment.get_by_id(segment.id).definition == SegmentVersion.get(segment=segment.id, number=1).definition
    page = text(marketer.get("/segments/cats"))
    assert "restored from version 1" in page and "no longer includes “Tea”" in page
    assert marketer.post("/segments/cats/versions/42/restore").status_code == 404


def test_readers_see_versions_but_cannot_restore(manager, base, queue_server):
    service.create_segment(data(GROUPS))
    service.update_segment(Segment.get(code="cats"), data(with_group(GROUPS, "Tea")))
    page = text(manager.get("/segments/cats"))
    assert "Version 2" in page and "/restore" not in page
    assert manager.post("/segments/cats/versions/1/restore").status_code == 403


def test_migration_gives_existing_segments_version_one(db):
    segment = Segment.create(code="old", name="Old", definition=GROUPS, interval_minutes=30, size=7)
    SegmentVersion.delete().execute()
    db.drop_tables([SegmentVersion])
    migration = importlib.import_module("webapp.migrations.0014_segment_versions")
    migration.up(None, db)
    row = SegmentVersion.get(segment=segment.id)
    assert (row.number, row.definition, row.interval_minutes, row.size) == (1, GROUPS, 30, 7)
    assert SegmentVersion.select().where(SegmentVersion.segment == segment.id).count() == 1
