"""Uploading a list into an existing static segment (issue 18, point 6): "add"
or "replace", each entry and exit logged as manual with who uploaded, the
unmatched lines reported; the page, through a real RQ worker. SQLite and
PostgreSQL."""

import io

import pytest
from conftest import csrf_from

from webapp.imports.service import Importer
from webapp.models import Customer, ImportRun, Segment, SegmentChange, SegmentMember, User
from webapp.segments.manual import self_definition

from .test_views import get, work


@pytest.fixture
def people(db):
    return {ext: Customer.create(external_id=ext, email=f"{ext}@example.com").id for ext in ("a", "b", "c", "d")}


def static_segment(ids, code="vip"):
    seg = Segment.create(code=code, name="VIP", type="static", source="list", definition=self_definition(code))
    SegmentMember.insert_many([(seg.id, c) for c in ids], fields=["segment", "customer"]).execute()
    return seg


def import_into(imports_dir, seg, text, mode, user=None, batch_size=None):
    path = imports_dir / f"list-{mode}.csv"
    path.write_text(text, encoding="utf-8")
    run = ImportRun.create(
        kind="segment",
        file_name=path.name,
        file_path=str(path),
        status="queued",
        segment=seg.id,
        options={"mode": mode},
        user=user,
    )
    Importer(run, imports_dir, **({"batch_size": batch_size} if batch_size else {})).execute()
    return ImportRun.get_by_id(run.id)


def members(seg):
    return {m.customer.external_id for m in SegmentMember.select().where(SegmentMember.segment == seg.id)}


def logged(seg):
    return sorted(
        (c.customer.external_id, c.change, c.manual)
        for c in SegmentChange.select().where(SegmentChange.segment == seg.id)
    )


def test_add_keeps_members_and_reports_unmatched(people, imports_dir, make_user):
    uploader = make_user(email="up@example.com", role="marketer")
    seg = static_segment([people["a"], people["b"]])
    run = import_into(imports_dir, seg, "email\nC@example.com\nb\nnobody\n", "add", user=uploader.id)
    assert (run.status, run.rows_imported, run.rows_rejected) == ("done", 2, 1)
    assert [(r["line"], r["reason"]) for r in run.report["rejections"]] == [
        (4, "no customer has this email or external id")
    ]
    assert members(seg) == {"a", "b", "c"} and Segment.get_by_id(seg.id).size == 3
    assert logged(seg) == [("c", "entered", True)]
    assert SegmentChange.get(SegmentChange.segment == seg.id).user_id == uploader.id


def test_replace_removes_those_not_listed_across_batches(people, imports_dir):
    seg = static_segment([people["a"], people["b"], people["c"]])
    run = import_into(imports_dir, seg, "external_id\nb\nd\nzzz\nc\n", "replace", batch_size=2)
    assert (run.status, run.rows_rejected) == ("done", 1)
    assert members(seg) == {"b", "c", "d"} and Segment.get_by_id(seg.id).size == 3
    assert logged(seg) == [("a", "exited", True), ("d", "entered", True)]
    # the same list again changes nothing
    import_into(imports_dir, seg, "external_id\nb\nd\nzzz\nc\n", "replace")
    assert members(seg) == {"b", "c", "d"} and len(logged(seg)) == 2


@pytest.mark.sqlite_only
def test_upload_page_into_a_static_segment(app, auth_client, imports_dir, queue_server, people):
    app.config["IMPORTS_DIR"] = str(imports_dir)
    seg = static_segment([people["a"]])
    html = get(auth_client, f"/imports/segment/{seg.code}")
    assert "Replace the members with them" in html
    response = auth_client.post(
        f"/imports/segment/{seg.code}",
        data={"csrf_token": csrf_from(html), "mode": "replace", "file": (io.BytesIO(b"b\nghost\n"), "l.csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    work(queue_server)
    run = ImportRun.get()
    assert run.segment_id == seg.id and run.options == {"mode": "replace"}
    page = get(auth_client, f"/imports/{run.id}")
    assert "Entries that matched no customer" in page
    assert members(seg) == {"b"}
    user = User.get(User.id == run.user_id)
    assert {c.user_id for c in SegmentChange.select()} == {user.id}
    dynamic = Segment.create(code="dyn", name="Dyn", definition={"version": 1, "blocks": []})
    assert auth_client.get(f"/imports/segment/{dynamic.code}").status_code == 404


@pytest.mark.postgresql_only  # SQLite: the delete is simulated inside the import's transaction, where its
# foreign keys are off, so nothing would cascade; a real delete from the web waits for the write lock there
def test_a_segment_deleted_before_the_replace_ends_leaves_no_rows(people, imports_dir, monkeypatch):
    from webapp.imports import kinds

    seg = static_segment([people["a"], people["b"]])
    write = kinds.SegmentListWriter.write

    def write_then_delete(self, rows, final=False):
        result = write(self, rows, final)
        if final:  # someone deletes the segment between the last batch and the replace's exits
            Segment.delete().where(Segment.id == seg.id).execute()
        return result

    monkeypatch.setattr(kinds.SegmentListWriter, "write", write_then_delete)
    run = import_into(imports_dir, seg, "external_id\nc\n", "replace")
    assert run.status == "failed"
    assert run.error == "The segment was deleted while the list was being imported: nothing more was written."
    # no exits logged for a segment that is gone (no foreign key refuses them on PostgreSQL)
    assert SegmentChange.select().where(SegmentChange.segment == seg.id).count() == 0
    assert run.segment_id is None  # the delete set the run's reference to null, and the outcome still saved
