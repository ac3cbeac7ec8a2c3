from conftest import PASSWORD, csrf_from


def test_first_start_redirects_to_setup_and_creates_admin(client):
    response = client.get("/customers/")
    assert response.status_code == 302 and response.headers["Location"].endswith("/setup")
    page = client.get("/setup").get_data(as_text=True)
    response = client.post(
        "/setup",
        data={
            "name": "Anna",
            "email": "anna@example.com",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "csrf_token": csrf_from(page),
        },
    )
    assert response.status_code == 302
    from webapp.models import User

    user = User.get(User.email == "anna@example.com")
    assert user.role == "admin" and user.password_hash.startswith("$argon2id$")
    # setup is closed once a user exists
    assert client.get("/setup").status_code == 302


def test_every_page_needs_login(client, make_user):
    make_user()
    for path in ["/", "/customers/", "/customers/1", "/fields/", "/account/password"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert "/login" in response.headers["Location"], path


def test_htmx_request_without_login_gets_hx_redirect(client, make_user):
    make_user()
    response = client.get("/customers/", headers={"HX-Request": "true"})
    assert response.status_code == 401 and response.headers["HX-Redirect"] == "/login"


def test_login_rejects_wrong_password_and_accepts_right_one(client, make_user):
    make_user()
    page = client.get("/login").get_data(as_text=True)
    response = client.post(
        "/login", data={"email": "admin@example.com", "password": "nope", "csrf_token": csrf_from(page)}
    )
    assert response.status_code == 200 and "Wrong email or password" in response.get_data(as_text=True)
    response = client.post(
        "/login", data={"email": "ADMIN@example.com", "password": PASSWORD, "csrf_token": csrf_from(page)}
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_post_without_csrf_is_refused(client, make_user):
    make_user()
    response = client.post("/login", data={"email": "admin@example.com", "password": PASSWORD})
    assert response.status_code == 400 and "Form expired" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # not logged in


def test_login_next_is_never_an_open_redirect(client, make_user):
    make_user()
    page = client.get("/login").get_data(as_text=True)
    response = client.post(
        "/login?next=//evil.example/x",
        data={"email": "admin@example.com", "password": PASSWORD, "csrf_token": csrf_from(page)},
    )
    assert response.headers["Location"] == "/"


def test_password_change(auth_client):
    page = auth_client.get("/account/password").get_data(as_text=True)
    token = csrf_from(page)
    bad = auth_client.post(
        "/account/password",
        data={"current": "wrong", "password": "new password 1", "confirm": "new password 1", "csrf_token": token},
    )
    assert "current password is wrong" in bad.get_data(as_text=True)
    ok = auth_client.post(
        "/account/password",
        data={"current": PASSWORD, "password": "new password 1", "confirm": "new password 1", "csrf_token": token},
    )
    assert ok.status_code == 302
    from webapp.accounts.passwords import check_password
    from webapp.models import User

    assert check_password(User.get().password_hash, "new password 1")


def test_logout_requires_post_and_ends_session(auth_client):
    page = auth_client.get("/").get_data(as_text=True)
    assert auth_client.get("/logout").status_code == 405
    auth_client.post("/logout", data={"csrf_token": csrf_from(page)})
    assert auth_client.get("/").status_code == 302


def test_session_cookie_flags(app):
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
