"""Signed tokens for links: compact JSON in URL-safe base64, signed with
itsdangerous and the app's SECRET_KEY. The one signer of the app: the links
in messages (`webapp.activation.links`) and the invitation and password-reset
links (`webapp.accounts.service`) are built with it, each with its own salt.

What itsdangerous' URLSafeSerializer does, without its zlib attempt on every
token; timed tokens carry when they were signed, so a link can expire.
"""

import base64
import json

from itsdangerous import BadSignature, SignatureExpired, Signer, TimestampSigner


class SignedJson:
    def __init__(self, secret_key, salt, *, timed=False):
        self.signer = (TimestampSigner if timed else Signer)(secret_key, salt=salt)
        self.timed = timed

    def dumps(self, payload):
        data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        return self.signer.sign(base64.urlsafe_b64encode(data).rstrip(b"=")).decode("ascii")

    def loads(self, token, max_age=None):
        """The payload; raises BadSignature (SignatureExpired: older than max_age seconds) or ValueError."""
        if self.timed:
            data = self.signer.unsign(token, max_age=max_age)
        else:
            data = self.signer.unsign(token)
        return json.loads(base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4)))


__all__ = ["BadSignature", "SignatureExpired", "SignedJson"]
