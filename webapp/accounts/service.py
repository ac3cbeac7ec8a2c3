"""Users and their REST API tokens: creation, lookup, revocation. Flask-free;
shared by the sign-in pages, the settings page, the API and the CLI.

A token's secret is `sgm_` + 40 random characters, shown once. Only its
SHA-256 is stored: a leaked database does not leak usable tokens, and a lookup
is one indexed equality (a fast hash is right here: the secret has 238 random
bits, so there is nothing to brute-force, unlike a password). A token acts
with its user's role.
"""

import hashlib
import secrets

from ..i18n import LANGUAGES, _, ngettext
from ..models import ROLES, ApiToken, User, utcnow
from ..text import fold
from .passwords import MIN_LENGTH, hash_password

TOKEN_PREFIX = "sgm_"
TOKEN_NAME_MAX = 100
# last_used_at is written at most this often per token: a busy integration
# must not turn every read into a write.
TOUCH_SECONDS = 60


# --- users ---------------------------------------------------------------------------


class UserError(ValueError):
    pass


def create_user(email, password, role="marketer", name=""):
    """Create a user; raises UserError with a readable message on bad input."""
    email = (email or "").strip()
    if "@" not in email:
        raise UserError(_("Enter a valid email address."))
    if role not in ROLES:
        raise UserError(_("Role must be one of: %(roles)s.", roles=", ".join(ROLES)))
    if len(password or "") < MIN_LENGTH:
        raise UserError(_("The password must be at least %(n)d characters long.", n=MIN_LENGTH))
    if User.select().where(User.email_ci == fold(email)).exists():
        raise UserError(_("A user with the email %(email)s already exists.", email=email))
    return User.create(
        email=email, email_ci=fold(email), name=name.strip(), password_hash=hash_password(password), role=role
    )


def find_user(email):
    """The user with this email, in any case (None: no such user)."""
    return User.get_or_none(User.email_ci == fold(email or ""))


def active_user(user_id):
    """The active user with this id (None: unknown or deactivated)."""
    return User.get_or_none(User.id == user_id, User.active == True)  # noqa: E712


def set_language(user, code):
    """Save the language `user` reads Segmento in (a code of `i18n.LANGUAGES`; empty: the browser's)."""
    if code and code not in LANGUAGES:
        raise UserError(_("Segmento does not speak “%(code)s”: choose one of the listed languages.", code=code))
    user.language = code or None
    user.save(only=[type(user).language])


def has_users():
    """Whether the app is set up: an active admin exists.

    Demo data brings managers who cannot log in (no usable password), so the
    first start still shows the setup page.
    """
    return User.select().where(User.role == "admin", User.active == True).exists()  # noqa: E712


# --- API tokens ------------------------------------------------------------------------


class TokenError(ValueError):
    pass


def hash_secret(secret):
    """The stored fingerprint of a token's secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(user, name=""):
    """A new token for `user`: (ApiToken row, the secret to show once)."""
    name = (name or "").strip()
    if len(name) > TOKEN_NAME_MAX:
        raise TokenError(
            ngettext(
                "The name is too long (at most %(num)s character).",
                "The name is too long (at most %(num)s characters).",
                TOKEN_NAME_MAX,
            )
        )
    if not user.active:
        raise TokenError(_("The user %(email)s is deactivated.", email=user.email))
    secret = TOKEN_PREFIX + secrets.token_urlsafe(30)
    token = ApiToken.create(
        user=user, name=name or _("API token"), token_hash=hash_secret(secret), prefix=secret[: len(TOKEN_PREFIX) + 4]
    )
    return token, secret


def authenticate(secret):
    """The live token for a presented secret (None: unknown, revoked, or its user is inactive)."""
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = (
        ApiToken.select(ApiToken, User)
        .join(User)
        .where(ApiToken.token_hash == hash_secret(secret), ApiToken.revoked_at.is_null(), User.active == True)  # noqa: E712
        .first()
    )
    if token is None:
        return None
    now = utcnow()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > TOUCH_SECONDS:
        ApiToken.update(last_used_at=now).where(ApiToken.id == token.id).execute()
        token.last_used_at = now
    return token


def tokens_for(user):
    """The user's tokens: live ones first, newest first."""
    return list(
        ApiToken.select()
        .where(ApiToken.user == user)
        .order_by(ApiToken.revoked_at.is_null(False), ApiToken.created_at.desc(), ApiToken.id.desc())
    )


def revoke(token):
    """Revoke a token (once: revoking it again keeps the first time)."""
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        token.save()
    return token
