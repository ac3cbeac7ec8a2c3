"""Fixtures for the segments UI tests: clients logged in by role, htmx posts
carrying the CSRF token as the page's <body hx-headers> does, and a small
customer base with cities, orders, deals and messages."""

import datetime

import pytest
from conftest import PASSWORD, csrf_from

from webapp.models import Customer, utcnow
from webapp.rollups import refresh_order_stats


class Browserish:
    """A test client used the way the pages use the server: forms with their CSRF
    token, htmx requests with the HX-Request and X-CSRFToken headers."""

    def __init__(self, client):
        self.client = client
        self.token = None

    def get(self, url, htmx=False, headers=None, **kw):
        headers = dict(headers or {})
        if htmx:
            headers["HX-Request"] = "true"
        response = self.client.get(url, headers=headers, **kw)
        if not htmx and response.status_code == 200 and b"csrf-token" in response.data:
            self.token = csrf_from(response.get_data(as_text=True))
        return response

    def post(self, url, data=None, htmx=False, headers=None, **kw):
        if self.token is None:
            self.get("/segments/")
        headers = dict(headers or {}, **{"X-CSRFToken": self.token})
        if htmx:
            headers["HX-Request"] = "true"
        return self.client.post(url, data=data, headers=headers, **kw)


def _login(client, make_user, email, role):
    from webapp.accounts.service import has_users

    if not has_users():
        make_user(email="root@example.com", role="admin")  # the app is set up
    make_user(email=email, role=role)
    page = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf_from(page)})
    assert response.status_code == 302


@pytest.fixture
def marketer(app, make_user):
    client = app.test_client()
    _login(client, make_user, "mia@example.com", "marketer")
    return Browserish(client)


@pytest.fixture
def manager(app, make_user):
    client = app.test_client()
    _login(client, make_user, "max@example.com", "manager")
    return Browserish(client)


@pytest.fixture
def admin(app, make_user):
    client = app.test_client()
    _login(client, make_user, "ada@example.com", "admin")
    return Browserish(client)


@pytest.fixture
def base(db):
    """Eight customers: cities in two spellings, genders, birthdays, orders of two groups, deals, opens."""
    from browser import sample_data as s

    today = utcnow().date()
    people = {}
    rows = [
        ("c1", "Москва", "male", datetime.date(1990, 3, 8)),
        ("c2", "МОСКВА ", "female", datetime.date(1985, 7, 1)),
        ("c3", "Hà Nội", "male", None),
        ("c4", "Berlin", "female", datetime.date(2000, 1, 1)),
        ("c5", None, "male", None),
        ("c6", "Москва", None, None),
        ("c7", "Berlin", "male", None),
        ("c8", "Paris", "female", None),
    ]
    for ext, city, gender, born in rows:
        people[ext] = Customer.create(
            external_id=ext,
            first_name=ext.upper(),
            city=city,
            gender=gender,
            birth_date=born,
            email=f"{ext}@example.com",
        )
    urinary = s.product("PF-CU-001", "Urinary S/O", "Pet food/Cat food/Urinary care")
    tea = s.product("TEA-CH-01", "Da Hong Pao", "Tea/Chinese tea")
    long_ago = utcnow() - datetime.timedelta(days=200)
    s.order(people["c1"], [(urinary, 1, 239000)], ordered_at=long_ago)
    s.order(people["c2"], [(tea, 2, 90000)], ordered_at=long_ago)
    s.order(people["c3"], [(tea, 1, 90000)], ordered_at=utcnow() - datetime.timedelta(days=3))
    won = s.stage("Memberships", "Won", "won")
    s.deal(people["c4"], won, amount_cents=30000_00)
    s.message(people["c5"], kind="opened", occurred_at=utcnow() - datetime.timedelta(days=2))
    refresh_order_stats([c.id for c in people.values()])
    people["today"] = today
    return people
