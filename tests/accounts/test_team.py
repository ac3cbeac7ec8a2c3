"""The team, administered in the browser: invitations, roles, deactivation,
password resets by email, and the sign-in throttle (webapp.accounts)."""

import re
import threading

import pytest
from activation.conftest import smtp_server  # noqa: F401 - a fixture, used by name
from conftest import PASSWORD, csrf_from, work_off

from webapp import mailer, settings
from webapp.accounts import service
from webapp.db import database
from webapp.models import AuditEvent, OutboxEmail, User

NEW_PASSWORD = "another long secret"


def post_form(client, url, data, form_url=None):
    """POST with the CSRF token of the form page, as a browser would."""
    token = csrf_from(client.get(form_url or url).get_data(as_text=True))
    return client.post(url, data={**data, "csrf_token": token})


PUBLIC = "https://crm.example.test/segmento"


@pytest.fixture(autouse=True)
def public_url(monkeypatch):
    monkeypatch.setattr(settings, "PUBLIC_URL", PUBLIC)


def link_in(email_row):
    """The path of the link in an email, which is on PUBLIC_URL (never on the request's Host)."""
    match = re.search(re.escape(PUBLIC) + r"(/\S+)", email_row.body)
    assert match, email_row.body
    return match.group(1)


def log_in(client, email, password=PASSWORD):
    return post_form(client, "/login", {"email": email, "password": password})


def actions():
    return [e.action for e in AuditEvent.select().order_by(AuditEvent.id)]


# --- invitations ---------------------------------------------------------------------


def test_admin_invites_a_marketer_who_joins_and_is_signed_in(app, auth_client):
    response = post_form(auth_client, "/users/invite", {"email": "Mara@Example.com", "role": "marketer"})
    assert response.status_code == 302, response.get_data(as_text=True)
    invited = User.get(User.email == "Mara@Example.com")
    assert invited.invited and invited.role == "marketer" and invited.active
    assert "Invited" in auth_client.get("/users/").get_data(as_text=True)
    # an invited user cannot sign in before joining
    assert log_in(app.test_client(), "mara@example.com", "").status_code == 200

    (mail,) = OutboxEmail.select().where(OutboxEmail.to == "Mara@Example.com")
    url = link_in(mail)
    assert url.startswith("/invite/")
    guest = app.test_client()
    page = guest.get(url).get_data(as_text=True)
    assert "Mara@Example.com" in page
    response = post_form(guest, url, {"name": "Mara", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert guest.get("/").status_code == 200  # signed in
    joined = User.get_by_id(invited.id)
    assert joined.name == "Mara" and not joined.invited and joined.last_login_at is not None
    # the link is spent: the password it was tied to has changed
    again = app.test_client().get(url)
    assert again.status_code == 400 and "already been used" in again.get_data(as_text=True)
    assert actions()[-2:] == ["user.invite", "user.join"]


def test_inviting_an_existing_user_says_so_and_sends_nothing(auth_client):
    response = post_form(auth_client, "/users/invite", {"email": "ADMIN@example.com", "role": "marketer"})
    assert response.status_code == 422
    assert "A user with the email ADMIN@example.com already exists." in response.get_data(as_text=True)
    assert OutboxEmail.select().count() == 0


def test_an_invitation_that_loses_a_race_gets_a_form_error(auth_client, monkeypatch):
    # the other request's row is committed after this one looked: find_user sees nothing, the insert collides
    service.invite_user(None, "mara@example.com", "marketer", secret_key="s", url_for_token=str)
    monkeypatch.setattr(service, "find_user", lambda email: None)
    response = post_form(auth_client, "/users/invite", {"email": "Mara@Example.com", "role": "manager"})
    assert response.status_code == 422
    assert "Someone has just invited or added Mara@Example.com." in response.get_data(as_text=True)
    assert User.get(User.email_ci == "mara@example.com").role == "marketer"
    assert OutboxEmail.select().count() == 1 and actions().count("user.invite") == 1


@pytest.mark.postgresql_only
def test_two_invitations_of_one_email_at_once_send_one(db, make_user):
    admin = make_user()
    outcome = {}

    def invite_again():
        try:
            service.invite_user(admin, "mara@example.com", "manager", secret_key="s", url_for_token=str)
        except service.UserError as exc:
            outcome["error"] = str(exc)
        finally:
            database.close()

    with database.atomic():
        service.invite_user(admin, "Mara@example.com", "marketer", secret_key="s", url_for_token=str)
        other = threading.Thread(target=invite_again)
        other.start()
        other.join(1)
        assert other.is_alive()  # it waits on the email's unique index
    other.join(20)
    assert "Someone has just invited or added mara@example.com." in outcome["error"]
    assert User.get(User.email_ci == "mara@example.com").role == "marketer"
    assert OutboxEmail.select().count() == 1


def test_bad_and_expired_links_are_refused_with_a_message(app, client, make_user, monkeypatch):
    user = make_user("m@example.com", role="marketer")
    token = service.link_token(app.config["SECRET_KEY"], user, "reset")
    assert client.get(f"/password/reset/{token}").status_code == 200
    tampered = client.get(f"/password/reset/{token[:-2]}xx")
    assert tampered.status_code == 400 and "not valid" in tampered.get_data(as_text=True)
    # an invitation token does not open the reset page, nor the other way round
    assert client.get(f"/invite/{token}").status_code == 400
    monkeypatch.setitem(service.LINK_MAX_AGE, "reset", -1)
    expired = client.get(f"/password/reset/{token}")
    assert expired.status_code == 400 and "expired" in expired.get_data(as_text=True)


# --- roles and deactivation --------------------------------------------------------------


def test_the_last_active_admin_can_be_neither_demoted_nor_deactivated(auth_client, make_user):
    admin = User.get(User.email == "admin@example.com")
    response = post_form(auth_client, f"/users/{admin.id}/role", {"role": "marketer"})
    assert response.status_code == 422 and "last active admin" in response.get_data(as_text=True)
    response = post_form(auth_client, f"/users/{admin.id}/deactivate", {})
    assert response.status_code == 422 and "last active admin" in response.get_data(as_text=True)
    assert User.get_by_id(admin.id).role == "admin" and User.get_by_id(admin.id).active
    # an invited admin who has not joined does not count
    service.invite_user(admin, "new@example.com", "admin", secret_key="k", url_for_token=str)
    assert post_form(auth_client, f"/users/{admin.id}/role", {"role": "marketer"}).status_code == 422
    other = make_user("second@example.com", role="admin")
    assert post_form(auth_client, f"/users/{other.id}/role", {"role": "manager"}).status_code == 302
    assert User.get_by_id(other.id).role == "manager"
    event = AuditEvent.get(AuditEvent.action == "user.role")
    assert event.actor_id == admin.id and event.object_id == other.id
    assert event.details == {"from": "admin", "to": "manager"}


@pytest.mark.postgresql_only
def test_two_admins_demoting_each_other_at_once_leave_one_admin(db, make_user):
    first, second = make_user("a@example.com"), make_user("b@example.com")
    outcome = {}

    def demote_the_first():
        try:
            service.change_role(second, User.get_by_id(first.id), "marketer")
        except service.UserError as exc:
            outcome["error"] = str(exc)
        finally:
            database.close()

    with database.atomic():
        service.change_role(first, second, "marketer")  # not committed yet
        other = threading.Thread(target=demote_the_first)
        other.start()
        other.join(1)
        assert other.is_alive()  # it waits for the admins' rows
    other.join(20)
    assert "b@example.com is the last active admin" not in outcome.get("error", "")
    assert "a@example.com is the last active admin" in outcome["error"]
    assert User.select().where(User.role == "admin").count() == 1


def test_a_deactivated_user_loses_sessions_and_tokens_and_cannot_sign_in(app, auth_client, make_user):
    marketer = make_user("m@example.com", role="marketer")
    _token, secret = service.create_token(marketer)
    theirs = app.test_client()
    assert log_in(theirs, "m@example.com").status_code == 302
    assert theirs.get("/").status_code == 200
    api = {"Authorization": f"Bearer {secret}"}
    assert theirs.get("/api/v1/segments", headers=api).status_code == 200

    page = auth_client.get(f"/users/{marketer.id}/deactivate").get_data(as_text=True)
    assert "signed out everywhere" in page  # the confirmation says what happens
    assert User.get_by_id(marketer.id).active  # a GET changes nothing
    assert post_form(auth_client, f"/users/{marketer.id}/deactivate", {}).status_code == 302
    assert theirs.get("/").status_code == 302  # the open session ends
    assert app.test_client().get("/api/v1/segments", headers=api).status_code == 401
    refused = log_in(app.test_client(), "m@example.com")
    assert refused.status_code == 200 and "Wrong email or password." in refused.get_data(as_text=True)
    assert "Deactivated" in auth_client.get("/users/").get_data(as_text=True)

    assert post_form(auth_client, f"/users/{marketer.id}/reactivate", {}).status_code == 302
    assert log_in(app.test_client(), "m@example.com").status_code == 302
    assert [a for a in actions() if a.startswith("user.")] == [
        "user.create",  # by the test, as by `flask users create`
        "user.create",
        "user.deactivate",
        "user.reactivate",
    ]


def test_team_pages_are_for_admins_only(client, make_user, login):
    make_user()
    login("m@example.com", role="marketer")
    for url in ["/users/", "/users/invite", "/users/1/role", "/users/1/deactivate", "/audit/"]:
        assert client.get(url).status_code == 403, url


# --- forgotten password -----------------------------------------------------------------


def test_password_reset_by_email_reveals_nothing_and_works_once(app, client, make_user):
    make_user()
    make_user("m@example.com", role="marketer")
    answers = []
    for email in ["M@example.com", "nobody@example.com"]:
        asker = app.test_client()
        response = post_form(asker, "/password/forgot", {"email": email})
        flash = re.search(r'<div class="flash" role="status">([^<]*)</div>', asker.get("/login").text).group(1)
        answers.append((response.status_code, response.headers["Location"], flash))
    assert answers[0] == answers[1]  # the same answer, account or not
    assert "If an account uses that email" in answers[0][2]
    (mail,) = OutboxEmail.select()
    assert mail.to == "m@example.com"

    url = link_in(mail)
    response = post_form(client, url, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert response.status_code == 302
    assert log_in(app.test_client(), "m@example.com", PASSWORD).status_code == 200
    assert log_in(app.test_client(), "m@example.com", NEW_PASSWORD).status_code == 302
    assert app.test_client().get(url).status_code == 400  # single use


def test_reset_and_invitation_links_ignore_a_forged_host(app, make_user):
    # A request naming another Host (or X-Forwarded-Host) must not put that site in the
    # emailed link: whoever follows it would hand the token to the attacker's server.
    make_user()
    make_user("m@example.com", role="marketer")
    forged = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    asker = app.test_client()
    token = csrf_from(asker.get("/password/forgot", headers=forged).get_data(as_text=True))
    assert (
        asker.post("/password/forgot", data={"email": "m@example.com", "csrf_token": token}, headers=forged).status_code
        == 302
    )
    admin = app.test_client()  # signed in under the forged host: its cookie is that host's
    token = csrf_from(admin.get("/login", headers=forged).get_data(as_text=True))
    admin.post("/login", data={"email": "admin@example.com", "password": PASSWORD, "csrf_token": token}, headers=forged)
    token = csrf_from(admin.get("/users/invite", headers=forged).get_data(as_text=True))
    response = admin.post(
        "/users/invite", data={"email": "new@example.com", "role": "marketer", "csrf_token": token}, headers=forged
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    mails = list(OutboxEmail.select().order_by(OutboxEmail.id))
    assert [m.to for m in mails] == ["m@example.com", "new@example.com"]
    for mail in mails:
        assert "evil.example" not in mail.body
        assert link_in(mail).startswith(("/password/reset/", "/invite/")), mail.body


def test_the_reset_email_is_sent_by_a_worker_not_in_the_request(app, make_user, smtp_server, queue_server):
    make_user("m@example.com", role="marketer")
    response = post_form(app.test_client(), "/password/forgot", {"email": "m@example.com"})
    assert response.status_code == 302
    (mail,) = OutboxEmail.select()
    assert not mail.delivered and smtp_server.messages == []  # the request did not talk to SMTP
    work_off(queue_server)
    (message,) = smtp_server.to("m@example.com")
    assert message["Subject"] == "Reset your Segmento password"
    assert link_in(mail) in message.get_content()
    assert OutboxEmail.get_by_id(mail.id).delivered
    mailer.deliver_queued(mail.id)  # run again (a retried job): nothing more goes out
    assert len(smtp_server.messages) == 1


def flash_after(client, response):
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    html = client.get("/login").text
    found = re.search(r"<div class=\"flash\" role=\"status\">([^<]*)</div>", html)
    assert found, html
    return found.group(1)


def test_reset_requests_are_throttled_per_account_and_per_address_with_the_same_answer(app, make_user):
    app.config["PASSWORD_RESET_RATE_LIMIT"] = "3 per hour"
    make_user()
    make_user("m@example.com", role="marketer")
    answer = "If an account uses that email, a link to reset its password is on its way. It works for an hour."
    here = app.test_client()
    for _ in range(4):
        assert flash_after(here, post_form(here, "/password/forgot", {"email": "M@example.com"})) == answer
    assert OutboxEmail.select().count() == 3  # the fourth was not sent, and the answer did not say so
    # the account's count holds from another address too
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "10.1.2.3"
    assert flash_after(elsewhere, post_form(elsewhere, "/password/forgot", {"email": "m@example.com"})) == answer
    assert OutboxEmail.select().count() == 3
    # one address asking for many accounts, existing or not, is counted too
    make_user("n@example.com", role="marketer")
    there = app.test_client()
    there.environ_base["REMOTE_ADDR"] = "10.9.9.9"
    for n in range(3):
        post_form(there, "/password/forgot", {"email": f"nobody{n}@example.com"})
    assert flash_after(there, post_form(there, "/password/forgot", {"email": "n@example.com"})) == answer
    assert OutboxEmail.select().count() == 3
    assert actions().count("auth.reset_throttled") == 3


def test_sign_in_verifies_a_password_whether_or_not_the_account_exists(make_user, monkeypatch):
    make_user("m@example.com", role="marketer")
    verified = []
    real = service.check_password
    monkeypatch.setattr(service, "check_password", lambda h, p: verified.append(h) or real(h, p))
    assert service.sign_in("nobody@example.com", PASSWORD) is None
    assert service.sign_in("m@example.com", "wrong password") is None
    assert service.sign_in("m@example.com", PASSWORD).email == "m@example.com"
    assert len(verified) == 3 and all(h.startswith("$argon2") for h in verified)


def test_a_new_password_ends_every_other_session(app, make_user):
    make_user()
    user = make_user("m@example.com", role="marketer")
    here, there = app.test_client(), app.test_client()
    assert log_in(here, "m@example.com").status_code == 302 and log_in(there, "m@example.com").status_code == 302
    response = post_form(
        here, "/account/password", {"current": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert response.status_code == 302
    assert here.get("/").status_code == 200  # the session that changed it goes on
    assert there.get("/").status_code == 302  # the other one ends
    # a reset by email ends them all
    token = service.link_token(app.config["SECRET_KEY"], User.get_by_id(user.id), "reset")
    post_form(app.test_client(), f"/password/reset/{token}", {"password": PASSWORD, "confirm": PASSWORD})
    assert here.get("/").status_code == 302


# --- throttle -------------------------------------------------------------------------


def test_the_eleventh_wrong_password_in_a_minute_is_refused(app, make_user):
    make_user()
    make_user("m@example.com", role="marketer")
    client = app.test_client()
    for _ in range(10):
        response = log_in(client, "m@example.com", "wrong password")
        assert response.status_code == 200 and "Wrong email or password." in response.get_data(as_text=True)
    refused = log_in(client, "m@example.com")  # even the right password, now
    assert refused.status_code == 429
    message = "Too many failed sign-ins from here or for this account. Wait a minute and try again."
    assert message in refused.get_data(as_text=True)
    # another address may still sign in... but not into this account
    elsewhere = app.test_client()
    response = elsewhere.post(
        "/login",
        data={"email": "m@example.com", "password": PASSWORD, "csrf_token": csrf_from(elsewhere.get("/login").text)},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert response.status_code == 429
    assert actions().count("auth.login_failed") == 10 and actions().count("auth.throttled") == 2


@pytest.mark.parametrize("account_exists", [True, False])
def test_wrong_passwords_are_counted_per_address_without_telling_accounts_apart(app, make_user, account_exists):
    make_user()
    if account_exists:
        make_user("m@example.com", role="marketer")
    client = app.test_client()
    for n in range(10):
        # ten different accounts, one address
        assert log_in(client, f"user{n}@example.com", "wrong password").status_code == 200
    refused = log_in(client, "m@example.com")
    assert refused.status_code == 429 and "Too many failed sign-ins" in refused.get_data(as_text=True)


def test_the_count_is_shared_by_every_web_process_through_redis(app, make_user):
    """Two apps on the same queue server stand for two gunicorn processes."""
    from webapp import create_app

    make_user()
    other = create_app(dict(app.config))
    assert app.config["REDIS_URL"].startswith("redis://")
    for n in range(10):
        assert log_in((app if n % 2 else other).test_client(), "admin@example.com", "wrong").status_code == 200
    assert log_in(other.test_client(), "admin@example.com").status_code == 429


@pytest.mark.parametrize("language, role, name", [("ru", "Роль", "Ваше имя"), ("vi", "Vai trò", "Tên của bạn")])
def test_the_team_forms_speak_the_readers_language(app, auth_client, language, role, name):
    """The invitation and joining forms' labels are translated per request
    (they were fixed in the default language when the module loaded)."""
    headers = {"Accept-Language": language}
    page = auth_client.get("/users/invite", headers=headers).get_data(as_text=True)
    assert f"<label>{role} <select" in page
    post_form(auth_client, "/users/invite", {"email": "lan@example.com", "role": "marketer"})
    (mail,) = OutboxEmail.select().where(OutboxEmail.to == "lan@example.com")
    join = app.test_client().get(link_in(mail), headers=headers).get_data(as_text=True)
    assert f"<label>{name} <input" in join
