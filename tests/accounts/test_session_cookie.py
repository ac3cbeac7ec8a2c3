"""The session cookie is re-sent only when the session changes.

A background request (the notification poll, a status poll) that reads the
session while a form is being submitted must not answer with the session it
read: its cookie would replace the one the form's redirect set and the flash
message ("Field … created") would be gone before the next page shows it.
"""


def _session_cookie(response):
    return [h for h in response.headers.getlist("Set-Cookie") if h.startswith("session=")]


def test_a_poll_does_not_send_the_session_back(auth_client):
    auth_client.get("/")  # the CSRF token is in the session from now on
    poll = auth_client.get("/notifications/poll", headers={"HX-Request": "true"})
    assert poll.status_code == 200
    assert _session_cookie(poll) == []
    assert _session_cookie(auth_client.get("/fields/")) == []


def test_a_stale_poll_answer_cannot_drop_a_flash(auth_client):
    page = auth_client.get("/fields/new").get_data(as_text=True)
    from tests.conftest import csrf_from

    before = auth_client.get_cookie("session").value  # what a poll sent just now carries
    created = auth_client.post(
        "/fields/new",
        data={"entity": "customer", "name": "Tier", "code": "tier", "type": "string", "csrf_token": csrf_from(page)},
    )
    assert created.status_code == 302
    assert _session_cookie(created)  # the redirect carries the flash in a new cookie
    # the poll sent with the old cookie is answered after the redirect
    auth_client.set_cookie("session", before)
    stale = auth_client.get("/notifications/poll", headers={"HX-Request": "true"})
    assert _session_cookie(stale) == []  # ... and leaves the browser's newer cookie alone
