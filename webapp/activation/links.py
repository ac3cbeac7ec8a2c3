"""Signed links in messages: open pixel, click redirect, unsubscribe.

A token is the signed JSON of what the link stands for (`webapp.signing`,
keyed with the app's SECRET_KEY, passed in so the worker needs no Flask app):
  open:        ["o", mailing id, customer id]
  click:       ["c", mailing id, customer id, target URL]
  unsubscribe: ["u", mailing id, customer id, channel]
The click endpoint redirects only to the URL inside a valid token, so it is
no open redirect. Test sends use mailing and customer 0: their links work,
nothing is recorded.
"""

import ipaddress
from urllib.parse import urlsplit

from ..signing import BadSignature, SignedJson

SALT = "segmento.activation.links"
KINDS = {"o": 3, "c": 4, "u": 4}


class Links:
    def __init__(self, secret_key, base_url):
        self.signer = SignedJson(secret_key, SALT)
        self.base = base_url.rstrip("/")

    def token(self, *payload):
        return self.signer.dumps(list(payload))

    def open_url(self, mailing_id, customer_id):
        return f"{self.base}/t/o/{self.token('o', mailing_id, customer_id)}.gif"

    def click_url(self, mailing_id, customer_id, url):
        return f"{self.base}/t/c/{self.token('c', mailing_id, customer_id, url)}"

    def unsubscribe_url(self, mailing_id, customer_id, channel):
        return f"{self.base}/u/{self.token('u', mailing_id, customer_id, channel)}"

    def one_click_url(self, mailing_id, customer_id, channel):
        """RFC 8058 one-click target (List-Unsubscribe-Post)."""
        return self.unsubscribe_url(mailing_id, customer_id, channel) + "/one-click"

    def load(self, token, kind):
        """The payload after the kind, or None for a bad or foreign token."""
        try:
            data = self.signer.loads(token)
        except (BadSignature, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(data, list) or len(data) != KINDS.get(kind) or data[0] != kind:
            return None
        if not all(isinstance(v, int) and v >= 0 for v in data[1:3]):
            return None
        if kind == "c" and not (isinstance(data[3], str) and data[3].lower().startswith(("http://", "https://"))):
            return None
        if kind == "u" and data[3] not in ("email", "sms"):
            return None
        return data[1:]


def secret_key():
    """The app's SECRET_KEY: from the running app, else from the settings (worker)."""
    from flask import current_app, has_app_context

    if has_app_context():
        return current_app.config["SECRET_KEY"]
    from .. import settings

    return settings._secret_key()


def public_url():
    from .. import settings

    return settings.PUBLIC_URL


def is_loopback(url):
    """True when `url` names this machine only (localhost, 127.0.0.0/8, ::1):
    links to it in a message reach nothing from a customer's phone or mailbox."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_links():
    return Links(secret_key(), public_url())
