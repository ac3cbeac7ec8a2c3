"""Notifications (bell, toasts once per session, mark as read) and the outbox page."""

import re

from webapp.models import Notification, OutboxEmail, Segment, SegmentRun, User
from webapp.segments import runs

from .test_pages import MEN, text


def me(email="mia@example.com"):
    return User.get(User.email == email)


def test_a_finished_run_reaches_its_requester_as_bell_count_and_one_toast(marketer, base):
    Segment.create(code="men", name="Men", definition=MEN)
    page = text(marketer.get("/segments/"))
    assert 'class="bell-count zero"' in page
    assert "Recompute" not in text(marketer.get("/notifications/poll", htmx=True))  # a new session starts quiet
    marketer.post("/segments/men/recompute", htmx=True)
    run = SegmentRun.get(SegmentRun.status == "queued")
    runs.execute_run(run.id)
    note = Notification.get(Notification.user == me())
    assert "Segment “Men” computed: 4 members, 4 entered, 0 exited." == note.message
    poll = text(marketer.get("/notifications/poll", htmx=True))
    assert poll.count('class="toast info"') == 1 and note.message in poll
    assert 'hx-swap-oob="beforeend:#toasts"' in poll
    assert re.search(
        r'<span id="bell-count" class="bell-count" hx-swap-oob="true"><span aria-hidden="true">1</span>', poll
    )
    assert "toast" not in text(marketer.get("/notifications/poll", htmx=True))  # once
    # the email the app would send without SMTP
    assert OutboxEmail.get(OutboxEmail.to == "mia@example.com").body == note.message
    # opening it marks it read and goes to the segment
    response = marketer.get(f"/notifications/{note.id}/open")
    assert response.status_code == 302 and response.headers["Location"].endswith("/segments/men")
    assert Notification.get_by_id(note.id).read_at is not None
    assert 'class="bell-count zero"' in text(marketer.get("/segments/"))


def test_a_run_notifies_in_the_language_the_requester_reads_the_pages_in(marketer, base):
    # No language chosen: the pages follow the browser, and the job (no request) follows the pages.
    Segment.create(code="men", name="Men", definition=MEN)
    marketer.get("/segments/", headers={"Accept-Language": "ru"})
    assert (me().language, me().last_language) == (None, "ru")
    marketer.post("/segments/men/recompute", htmx=True, headers={"Accept-Language": "ru"})
    runs.execute_run(SegmentRun.get(SegmentRun.status == "queued").id)
    note = Notification.get(Notification.user == me())
    assert note.message == "Сегмент «Men» рассчитан: клиентов — 4, вошли — 4, вышли — 0."
    assert OutboxEmail.get(OutboxEmail.to == "mia@example.com").body == note.message
    # The browser's language changes: what comes next follows it; a chosen language wins over both.
    marketer.get("/segments/", headers={"Accept-Language": "vi"})
    assert me().last_language == "vi"
    User.update(language="en").where(User.id == me().id).execute()
    marketer.get("/segments/", headers={"Accept-Language": "ru"})
    assert (me().language, me().last_language, me().reading_language) == ("en", "vi", "en")


def test_failed_runs_notify_as_errors(marketer, base):
    segment = Segment.create(
        code="broken",
        name="Broken",
        definition={
            "version": 1,
            "blocks": [{"entity": "customer", "filters": [{"field": "custom.gone", "op": "is_empty"}]}],
        },
    )
    marketer.get("/notifications/poll", htmx=True)
    runs.execute_run(runs.request_run(segment, user=me()).id)
    poll = text(marketer.get("/notifications/poll", htmx=True))
    assert 'class="toast error" role="alert"' in poll and "failed to compute" in poll


def test_panel_list_and_mark_as_read(marketer, admin):
    mine = [Notification.create(user=me(), message=f"Note {n}", link="/segments/") for n in range(3)]
    theirs = Notification.create(user=me("ada@example.com"), message="Not for Mia")
    panel = text(marketer.get("/notifications/?panel=1", htmx=True))
    assert panel.count('class="notification info unread"') == 3 and "Not for Mia" not in panel
    assert panel.index("Note 2") < panel.index("Note 0")  # newest first
    panel = text(marketer.post(f"/notifications/{mine[0].id}/read", htmx=True))
    assert panel.count("unread") == 2 + 1  # two unread items, plus the count's own text
    assert marketer.get(f"/notifications/{theirs.id}/open").status_code == 404
    marketer.post(f"/notifications/{theirs.id}/read", htmx=True)
    assert Notification.get_by_id(theirs.id).read_at is None  # not hers to mark
    page = text(marketer.post("/notifications/read"))
    assert Notification.select().where(Notification.user == me(), Notification.read_at.is_null()).count() == 0
    page = text(marketer.get("/notifications/"))
    assert page.count('class="notification info"') == 3 and "Mark all as read" not in page


def test_outbox_is_for_admins(marketer, admin):
    OutboxEmail.create(to="mia@example.com", subject="Segment “Men” computed", body="4 members <b>")
    OutboxEmail.create(to="max@example.com", subject="Failed", body="x", error="SMTP said no")
    assert marketer.get("/outbox/").status_code == 403
    assert 'href="/outbox/"' not in text(marketer.get("/segments/"))
    page = text(admin.get("/outbox/"))
    assert 'href="/outbox/"' in page and "Segment “Men” computed" in page
    assert "4 members &lt;b&gt;" in page  # escaped
    assert "Not sent (no SMTP)" in page and 'title="SMTP said no"' in page


def test_the_completion_notice_and_email_are_in_the_users_language(marketer, base):
    segment = Segment.create(code="men", name="Men", definition=MEN)
    User.update(language="ru").where(User.email == "mia@example.com").execute()
    runs.execute_run(runs.request_run(segment, user=me()).id)
    note = Notification.get(Notification.user == me())
    assert note.message.startswith("Сегмент «Men» рассчитан")
    assert OutboxEmail.get(OutboxEmail.to == "mia@example.com").body == note.message
