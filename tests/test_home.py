"""The home page (issue 20, point 12): open tasks, work under way and today's
entries and exits per segment; the task list opens on everyone's open tasks
for admins and on one's own for managers."""

import datetime
import re

from conftest import PASSWORD, csrf_from

from webapp.localtime import day_start, today
from webapp.models import Customer, ExportRun, Segment, SegmentChange, SegmentRun, Task


def sign_in(client, email):
    page = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page)})
    assert response.status_code == 302


def test_admin_lands_on_all_open_tasks_and_manager_on_theirs(app, client, make_user):
    make_user(email="admin@example.com", role="admin")
    manager = make_user(email="m@example.com", role="manager")
    ann = Customer.create(external_id="ann", first_name="Ann")
    Task.create(customer=ann, assignee=manager, title="Call Ann")
    Task.create(customer=ann, assignee=manager, title="Old call", done_at=datetime.datetime(2025, 1, 1))
    sign_in(client, "admin@example.com")
    tasks = client.get("/tasks/").get_data(as_text=True)
    assert "Call Ann" in tasks and "Old call" not in tasks and "Nothing to do" not in tasks
    assert re.search(r'<a href="/tasks/\?scope=all&amp;state=open" aria-current="page">', tasks)
    home = client.get("/").get_data(as_text=True)
    assert "Call Ann" in re.search(r'id="home-tasks".*?</section>', home, re.S).group(0)
    client.post("/logout", data={"csrf_token": csrf_from(home)})
    sign_in(client, "m@example.com")
    tasks = client.get("/tasks/").get_data(as_text=True)
    assert "Call Ann" in tasks and "Everyone’s" not in tasks


def test_home_shows_running_work_and_todays_changes(app, client, make_user):
    admin = make_user(email="admin@example.com", role="admin")
    tz = app.config.get("TZ") or "UTC"
    start = day_start(today(tz), tz)
    vip, quiet, busy = (
        Segment.create(code=code, name=name, definition={"version": 1, "blocks": []})
        for code, name in (("vip", "VIP"), ("quiet", "Quiet"), ("busy", "Busy"))
    )
    people = [Customer.create(external_id=f"c{n}") for n in range(4)]
    for segment, customer, change, at in [
        (vip, people[0], "entered", start),
        (vip, people[1], "entered", start + datetime.timedelta(hours=1)),
        (vip, people[2], "exited", start + datetime.timedelta(minutes=5)),
        (vip, people[3], "entered", start - datetime.timedelta(seconds=1)),  # yesterday
        (quiet, people[0], "exited", start - datetime.timedelta(days=2)),
        (busy, people[0], "entered", start),
        (busy, people[1], "entered", start),
        (busy, people[2], "entered", start),
        (busy, people[3], "exited", start),
    ]:
        SegmentChange.create(segment=segment, customer=customer, change=change, at=at)
    SegmentRun.create(segment=vip, status="running")
    SegmentRun.create(segment=quiet, status="done")
    ExportRun.create(user=admin, source={}, columns=["external_id"], format="csv", file_name="all-1.csv")
    sign_in(client, "admin@example.com")
    home = client.get("/").get_data(as_text=True)
    rows = re.findall(
        r'<tr data-code="(\w+)">.*?<td class="num entered">(\d+)</td><td class="num exited">(\d+)</td>', home, re.S
    )
    assert rows == [("busy", "3", "1"), ("vip", "2", "1")]  # the busiest first; nothing for "quiet"
    work = re.search(r'id="home-work".*?</section>', home, re.S).group(0)
    assert 'href="/segments/vip">VIP</a>' in work and "Quiet" not in work
    assert "all-1.csv" in work
    assert "Nothing to do" in home
