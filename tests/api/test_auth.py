"""API tokens (hashed, shown once; settings page and CLI), token auth, roles,
and the errors every endpoint shares: 400, 401, 403, 404, 405, 413, 415, 429."""

import hashlib
import re

import pytest
from conftest import csrf_from

from webapp import create_app
from webapp.accounts.service import create_token
from webapp.models import ApiToken, User

from .conftest import Api


def test_missing_bad_and_revoked_tokens_are_401(client, api, make_user):
    status, data = Api(client, {}).get("/segments")
    assert status == 401 and data["error"]["code"] == "unauthorized"
    response = client.get("/api/v1/segments")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    for header in ("Bearer sgm_nope", "Basic abc", "Bearer ", "sgm_x"):
        assert Api(client, {"Authorization": header}).get("/segments")[0] == 401
    assert api.get("/segments")[0] == 200
    ApiToken.update(revoked_at=ApiToken.created_at).execute()
    status, data = api.get("/segments")
    assert status == 401 and "revoked" in data["error"]["message"]


def test_inactive_user_token_is_401(client, make_user):
    user = make_user(email="gone@example.com", role="admin")
    _token, secret = create_token(user)
    headers = {"Authorization": f"Bearer {secret}"}
    assert Api(client, headers).get("/segments")[0] == 200
    User.update(active=False).where(User.id == user.id).execute()
    assert Api(client, headers).get("/segments")[0] == 401


def test_token_is_stored_hashed_and_records_use(client, make_user):
    user = make_user()
    token, secret = create_token(user, "crm")
    assert secret.startswith("sgm_") and len(secret) > 40
    stored = ApiToken.get_by_id(token.id)
    assert stored.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in (stored.token_hash, stored.prefix, stored.name)
    assert stored.last_used_at is None
    Api(client, {"Authorization": f"Bearer {secret}"}).get("/segments")
    assert ApiToken.get_by_id(token.id).last_used_at is not None


@pytest.mark.parametrize("role, write_status", [("admin", 201), ("marketer", 201), ("manager", 403)])
def test_roles(api_as, role, write_status):
    api = api_as(role)
    definition = {"version": 1, "blocks": []}
    status, data = api.post("/segments", {"code": f"s-{role}", "name": "S", "definition": definition})
    assert status == write_status, data
    assert api.get("/segments")[0] == 200  # every role reads
    assert api.put("/customers/c1", {"email": "a@b.c"})[0] == (403 if role == "manager" else 201)
    if role == "manager":
        assert api.get("/segments/s-manager")[0] == 404
        status, data = api.post("/messages", {})
        assert status == 403 and data["error"]["code"] == "forbidden"


def test_cli_creates_a_working_token(runner, client, make_user):
    make_user(email="cli@example.com", role="marketer")
    result = runner.invoke(args=["api-token", "create", "--user", "CLI@example.com", "--name", "sync"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert re.fullmatch(r"sgm_[A-Za-z0-9_-]{40}", secret)
    assert ApiToken.get().name == "sync"
    assert Api(client, {"Authorization": f"Bearer {secret}"}).get("/segments")[0] == 200
    result = runner.invoke(args=["api-token", "create", "--user", "nobody@example.com"])
    assert result.exit_code == 1 and "No user" in result.output


def test_users_create_cli_matches_the_contract(runner):
    result = runner.invoke(
        args=["users", "create", "m@example.com", "--role", "manager", "--password", "correct horse battery"]
    )
    assert result.exit_code == 0, result.output
    assert User.get(User.email == "m@example.com").role == "manager"


def test_settings_page_creates_shows_once_and_revokes(auth_client, client):
    page = auth_client.get("/account/tokens").get_data(as_text=True)
    assert "You have no API tokens yet." in page and "/api/docs" in page
    assert "/account/tokens" in auth_client.get("/").get_data(as_text=True)  # user menu link
    response = auth_client.post("/account/tokens", data={"name": "Zapier", "csrf_token": csrf_from(page)})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    secret = re.search(r'id="token-secret">(sgm_[^<]+)<', html).group(1)
    assert "shown only this once" in html
    again = auth_client.get("/account/tokens").get_data(as_text=True)
    assert secret not in again and "Zapier" in again and secret[:8] in again  # the prefix only
    headers = {"Authorization": f"Bearer {secret}"}
    assert Api(client, headers).get("/segments")[0] == 200

    token = ApiToken.get()
    confirm = auth_client.get(f"/account/tokens/{token.id}/revoke").get_data(as_text=True)
    assert "Revoke the token “Zapier”?" in confirm
    assert ApiToken.get().revoked_at is None  # GET only asks
    response = auth_client.post(f"/account/tokens/{token.id}/revoke", data={"csrf_token": csrf_from(confirm)})
    assert response.status_code == 302
    assert ApiToken.get().revoked_at is not None
    assert Api(client, headers).get("/segments")[0] == 401
    # without CSRF nothing happens
    assert auth_client.post("/account/tokens", data={"name": "x"}).status_code in (400, 422)
    assert ApiToken.select().count() == 1


def test_tokens_of_other_users_cannot_be_revoked(auth_client, make_user):
    other = make_user(email="other@example.com", role="marketer")
    token, _secret = create_token(other)
    assert auth_client.get(f"/account/tokens/{token.id}/revoke").status_code == 404
    assert auth_client.post(f"/account/tokens/{token.id}/revoke", data={}).status_code in (400, 404)
    assert ApiToken.get_by_id(token.id).revoked_at is None


def test_common_errors_are_json(api, client):
    status, data = api.get("/no-such-thing")
    assert (status, data["error"]["code"]) == (404, "not_found")
    status, data = api.call("PATCH", "/segments")
    assert (status, data["error"]["code"]) == (405, "method_not_allowed")
    assert "GET" in api.last.headers["Allow"]
    # no token and an unknown address: still JSON
    assert client.get("/api/v1/nope").get_json()["error"]["code"] == "not_found"

    headers = dict(api.headers, **{"Content-Type": "application/json"})
    for body in (b"{", b"[1, 2]", b"", b"\xff\xfe", b'{"a": NaN}'):
        response = client.post("/api/v1/segments/preview", data=body, headers=headers)
        assert response.status_code == 400, body
        assert response.get_json()["error"]["code"] == "bad_request"
    response = client.post(
        "/api/v1/segments/preview",
        data="definition=1",
        headers=dict(api.headers, **{"Content-Type": "application/x-www-form-urlencoded"}),
    )
    assert response.status_code == 415 and response.get_json()["error"]["code"] == "unsupported_media_type"
    big = b'{"definition": {}, "x": "' + b"a" * (1024 * 1024) + b'"}'
    response = client.post("/api/v1/segments/preview", data=big, headers=headers)
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "too_large"
    status, data = api.post(
        "/segments/preview",
        {
            "definition": {
                "version": 1,
                "blocks": [
                    {"entity": "customer", "filters": [{"field": "city", "op": "in", "values": [{"value": "a\x00b"}]}]}
                ],
            }
        },
    )
    assert status == 422 and data["error"]["details"][0]["field"] == "definition.blocks[0].filters[0].values[0].value"
    for query in ("limit=0", "limit=1001", "limit=x", "cursor=%%%", "cursor=eyJhZnRlciI6IC0xfQ"):
        status, data = api.get(f"/customers?{query}")
        assert status == 400, query


def test_api_is_outside_csrf_and_the_login_wall(api, auth_client):
    # a logged-in browser session without a token is not enough, and no CSRF token is needed with one
    assert auth_client.get("/api/v1/segments").status_code == 401
    assert api.put("/customers/x1", {"first_name": "A"})[0] == 201


def test_openapi_json_is_public_and_docs_need_login(app, auth_client):
    anonymous = app.test_client()
    response = anonymous.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.get_json()["openapi"].startswith("3.")
    assert anonymous.get("/api/docs").status_code == 302  # login wall
    html = auth_client.get("/api/docs").get_data(as_text=True)
    assert "PUT</code> <code>/api/v1/customers/{external_id}" in html
    assert 'id="schema-Segment"' in html and "next_cursor" in html
    # Nothing is loaded from elsewhere: every script and stylesheet is our own.
    assert not re.search(r"<(script|link)[^>]*(src|href)=\"(https?:)?//", html)


def test_rate_limit_per_token(db_url, queue_server, make_user):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "REDIS_URL": queue_server,
            "SECRET_KEY": "x",
            "API_RATE_LIMIT": "3 per minute",
        }
    )
    client = app.test_client()
    one = Api(client, {"Authorization": f"Bearer {create_token(make_user(email='a@x.io'))[1]}"})
    two = Api(client, {"Authorization": f"Bearer {create_token(make_user(email='b@x.io'))[1]}"})
    assert [one.get("/segments")[0] for _ in range(3)] == [200, 200, 200]
    status, data = one.get("/segments")
    assert status == 429 and data["error"]["code"] == "rate_limited"
    assert int(one.last.headers["Retry-After"]) > 0
    assert two.get("/segments")[0] == 200  # another token has its own budget
