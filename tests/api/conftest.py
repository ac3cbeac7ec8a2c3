"""Fixtures for the REST API tests: tokens of each role and a JSON client."""

import pytest


@pytest.fixture
def token_for(app, make_user):
    """token_for(role) -> Authorization headers of a new user with that role."""
    from webapp.accounts.service import create_token

    made = {}

    def make(role="admin", email=None):
        email = email or f"{role}-{len(made)}@example.com"
        user = make_user(email=email, role=role)
        _token, secret = create_token(user, "tests")
        made[email] = secret
        return {"Authorization": f"Bearer {secret}"}

    return make


class Api:
    """The test client with a token; methods return (status, json or None)."""

    def __init__(self, client, headers):
        self.client = client
        self.headers = headers

    def call(self, method, path, body=None, headers=None, **kwargs):
        merged = dict(self.headers, **(headers or {}))
        response = self.client.open("/api/v1" + path, method=method, json=body, headers=merged, **kwargs)
        self.last = response
        data = response.get_json(silent=True) if response.data else None
        if response.status_code >= 400:
            # Every error, whatever caused it, has the contract's shape.
            assert response.mimetype == "application/json", response.get_data(as_text=True)[:300]
            assert set(data) == {"error"} and set(data["error"]) == {"code", "message", "details"}, data
            assert data["error"]["message"]
        return response.status_code, data

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.call("PUT", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)


@pytest.fixture
def api(client, token_for):
    """An Api client with an admin token."""
    return Api(client, token_for("admin"))


@pytest.fixture
def api_as(client, token_for):
    def make(role):
        return Api(client, token_for(role))

    return make
