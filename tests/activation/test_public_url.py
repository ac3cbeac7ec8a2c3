"""Issue 20.3: PUBLIC_URL follows HOST and PORT unless set; the mailing form
and a mailing not yet sent warn when it names this machine only (SQLite and
PostgreSQL for the pages)."""

import os
import subprocess
import sys

import pytest

from webapp import settings
from webapp.activation import mailings
from webapp.activation.links import is_loopback

from .conftest import customer, static_segment


def public_url_with(env):
    clean = {k: v for k, v in os.environ.items() if k not in ("PUBLIC_URL", "HOST", "PORT")}
    out = subprocess.run(
        [sys.executable, "-c", "from webapp import settings; print(settings.PUBLIC_URL)"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


@pytest.mark.parametrize(
    "env, url",
    [
        ({}, "http://127.0.0.1:5000"),
        ({"PORT": "8080"}, "http://127.0.0.1:8080"),
        ({"HOST": "crm.local", "PORT": "8080"}, "http://crm.local:8080"),
        ({"HOST": "0.0.0.0", "PORT": "5001"}, "http://127.0.0.1:5001"),
        ({"HOST": "::1", "PORT": "5001"}, "http://[::1]:5001"),
        ({"PUBLIC_URL": "https://crm.example.ru/", "PORT": "8080"}, "https://crm.example.ru"),
    ],
)
def test_public_url_follows_host_and_port(env, url):
    assert public_url_with(env) == url


def test_loopback_addresses():
    for url in ("http://127.0.0.1:5000", "http://localhost:8080", "http://[::1]:5000", "http://127.1.2.3"):
        assert is_loopback(url), url
    for url in ("https://crm.example.ru", "http://10.0.0.5:5000", "http://192.168.1.2"):
        assert not is_loopback(url), url


WARNING = "an address on this computer only"


def test_the_mailing_form_warns_about_a_loopback_public_url(app, auth_client, monkeypatch):
    segment = static_segment("all", [customer("ann")])
    draft = mailings.create_campaign(
        {"name": "Spring", "channel": "email", "segment_id": segment.id, "subject": "Hi", "body": "<p>Hi</p>"}
    )
    monkeypatch.setattr(settings, "PUBLIC_URL", "http://127.0.0.1:5001")
    for url in ("/mailings/new", f"/mailings/{draft.id}/edit", f"/mailings/{draft.id}"):
        html = auth_client.get(url).get_data(as_text=True)
        assert WARNING in html and "http://127.0.0.1:5001" in html, url
    monkeypatch.setattr(settings, "PUBLIC_URL", "https://crm.example.ru")
    for url in ("/mailings/new", f"/mailings/{draft.id}/edit", f"/mailings/{draft.id}"):
        assert WARNING not in auth_client.get(url).get_data(as_text=True), url
