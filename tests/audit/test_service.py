"""The audit log: written by the services with whoever acts, read and filtered by admins."""

import datetime

from conftest import csrf_from

from webapp.audit import service as audit
from webapp.fields import service as fields
from webapp.models import AuditEvent, User


def test_record_names_the_acting_user_else_the_system(db, make_user):
    admin = make_user()
    audit.acting(None)
    assert audit.record(None, "field.create").actor_email == ""  # a job, the CLI: the system
    audit.acting(admin, "10.0.0.7")
    event = audit.record(None, "segment.delete", admin, {"when": datetime.date(2026, 1, 2)})
    assert (event.actor_id, event.actor_email, event.address) == (admin.id, "admin@example.com", "10.0.0.7")
    assert (event.object_type, event.object_id, event.object_label) == ("app_user", admin.id, "admin@example.com")
    stored = AuditEvent.get_by_id(event.id)
    assert stored.details == {"when": "2026-01-02"}
    # a failed sign-in names the email typed, with no user
    failed = audit.record("someone@example.com", "auth.login_failed")
    assert failed.actor_id is None and failed.actor_email == "someone@example.com"
    audit.acting(None)
    created = AuditEvent.get(AuditEvent.action == "user.create")  # by make_user, as by `flask users create`
    assert (created.actor_id, created.object_id, created.details) == (None, admin.id, {"role": "admin"})


def test_the_acting_user_ends_with_the_request(auth_client):
    assert auth_client.get("/").status_code == 200
    # later work in the same thread (a job run inline, the next test) is the system's
    assert audit.record(None, "field.create").actor_id is None


def test_custom_field_changes_are_recorded_by_the_service(db, make_user):
    admin = make_user()
    audit.acting(admin)
    field = fields.create_field("customer", "", "Favourite colour", "string")
    fields.rename_field(field, "Colour")
    fields.delete_field(field)
    audit.acting(None)
    events = list(AuditEvent.select().where(AuditEvent.object_type == "custom_field").order_by(AuditEvent.id))
    assert [e.action for e in events] == ["field.create", "field.update", "field.delete"]
    assert {e.actor_id for e in events} == {admin.id} and {e.object_id for e in events} == {field.id}
    assert events[1].object_label == "Colour"


def test_search_filters_by_user_action_object_and_local_day(db, make_user):
    admin, other = make_user(), make_user("m@example.com", role="marketer")
    AuditEvent.delete().execute()  # their creation
    rows = [
        (admin, "segment.create", datetime.datetime(2026, 3, 1, 20, 0)),  # 2 March in Asia/Ho_Chi_Minh
        (other, "segment.update", datetime.datetime(2026, 3, 1, 10, 0)),
        (other, "user.role", datetime.datetime(2026, 2, 1, 10, 0)),
    ]
    for actor, action, at in rows:
        event = audit.record(actor, action, admin if action == "user.role" else None)
        AuditEvent.update(created_at=at).where(AuditEvent.id == event.id).execute()

    def found(tz="UTC", **kw):
        page = audit.search(audit.Filters(**kw), 1, 50, tz)
        return [e.action for e in page.rows]

    assert found() == ["segment.create", "segment.update", "user.role"]  # newest first
    assert found(user_id=other.id) == ["segment.update", "user.role"]
    assert found(action="user.role") == ["user.role"]
    assert found(object_type="app_user") == ["user.role"]
    assert found(obj="ADMIN@") == ["user.role"] and found(obj=str(admin.id)) == ["user.role"]
    day = datetime.date(2026, 3, 2)
    assert found(date_from=day, date_to=day) == []
    assert found("Asia/Ho_Chi_Minh", date_from=day, date_to=day) == ["segment.create"]
    # unknown values are ignored, never an error
    assert len(found(action="drop table", object_type="nope")) == 3
    page = audit.search(audit.Filters(), 2, 2, "UTC")
    assert (page.total, page.pages, [e.action for e in page.rows]) == (3, 2, ["user.role"])


def test_admin_page_lists_and_filters_the_log(auth_client):
    admin = User.get(User.email == "admin@example.com")
    html = auth_client.get("/fields/new").get_data(as_text=True)
    auth_client.post(
        "/fields/new", data={"entity": "customer", "name": "Colour", "type": "string", "csrf_token": csrf_from(html)}
    )
    html = auth_client.get("/audit/").get_data(as_text=True)
    assert "Signed in" in html and "Created a custom field" in html and "Colour" in html
    assert AuditEvent.get(AuditEvent.action == "field.create").actor_id == admin.id  # the request's user
    filtered = auth_client.get("/audit/?action=field.create", headers={"HX-Request": "true"})
    body = filtered.get_data(as_text=True)
    assert filtered.status_code == 200 and "<html" not in body  # the rows fragment for htmx
    assert "Created a custom field" in body and "Signed in" not in body
    bad = auth_client.get("/audit/?user=abc&from=yesterday&to=2026-13-45&page=-3&type=x")
    assert bad.status_code == 200
    empty = auth_client.get("/audit/?from=2001-01-01&to=2001-01-02").get_data(as_text=True)
    assert "Nothing in the log matches" in empty


def test_changes_through_the_api_name_the_tokens_user(client, make_user):
    from webapp.accounts.service import create_token

    marketer = make_user("m@example.com", role="marketer")
    _token, secret = create_token(marketer)
    definition = {"version": 1, "match": "all", "blocks": []}
    body = {"code": "all_of_them", "name": "All of them", "type": "static", "definition": definition}
    response = client.post("/api/v1/segments", json=body, headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 201, response.get_json()
    event = AuditEvent.get(AuditEvent.action == "segment.create")
    assert (event.actor_id, event.object_label) == (marketer.id, "All of them")
    assert (
        client.delete("/api/v1/segments/all_of_them", headers={"Authorization": f"Bearer {secret}"}).status_code == 204
    )
    assert AuditEvent.get(AuditEvent.action == "segment.delete").actor_id == marketer.id


def test_entries_older_than_audit_keep_days_are_pruned_by_the_hourly_job(db, monkeypatch):
    from webapp import settings
    from webapp.cron import periodic
    from webapp.exports import jobs
    from webapp.models import utcnow

    assert settings.AUDIT_KEEP_DAYS == 365  # the default
    now = utcnow()
    for days in (400, 366, 364, 1):
        AuditEvent.create(action="auth.login_failed", created_at=now - datetime.timedelta(days=days))
    assert any(func is jobs.expire_job for func, _every, _queue in periodic())
    monkeypatch.setattr(settings, "AUDIT_KEEP_DAYS", 0)  # kept forever
    jobs.expire_job()
    assert AuditEvent.select().count() == 4
    monkeypatch.setattr(settings, "AUDIT_KEEP_DAYS", 365)
    jobs.expire_job()
    kept = sorted(round((now - e.created_at).total_seconds() / 86400) for e in AuditEvent.select())
    assert kept == [1, 364]
    jobs.expire_job()  # again: nothing more to delete
    assert AuditEvent.select().count() == 2


def test_the_log_filters_name_a_date_range_not_a_recipient(auth_client):
    # "To" of the date range was "Кому" (to whom) in Russian: it shares no msgid with a recipient now.
    ru = auth_client.get("/audit/", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert '<label>С <input type="date" name="from"' in ru and '<label>По <input type="date" name="to"' in ru
    vi = auth_client.get("/audit/", headers={"Accept-Language": "vi"}).get_data(as_text=True)
    assert '<label>Đến ngày <input type="date" name="to"' in vi
