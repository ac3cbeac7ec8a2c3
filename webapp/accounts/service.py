"""Users and their REST API tokens: creation, lookup, revocation. Flask-free;
shared by the sign-in pages, the settings page, the API and the CLI.

A token's secret is `sgm_` + 40 random characters, shown once. Only its
SHA-256 is stored: a leaked database does not leak usable tokens, and a lookup
is one indexed equality (a fast hash is right here: the secret has 238 random
bits, so there is nothing to brute-force, unlike a password). A token acts
with its user's role.

Team administration (issue 21): admins invite users by email, change roles,
deactivate and reactivate them; users reset a forgotten password by email.
Invitation and reset links are signed (`webapp.signing`), expire, and name the
user with a fingerprint of their password hash as it was: setting a password
spends the link. An invited user has no password until they accept. The last
active admin can be neither demoted nor deactivated.
"""

import functools
import hashlib
import secrets

import peewee as pw

from .. import mailer
from ..audit import service as audit
from ..db import database, is_postgres
from ..i18n import LANGUAGES, _, ngettext
from ..models import ROLES, ApiToken, User, utcnow
from ..signing import BadSignature, SignatureExpired, SignedJson
from ..text import fold
from ..values import parse_email
from .passwords import MIN_LENGTH, check_password, hash_password

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
    _check_email_and_role(email, role)
    _check_password(password)
    if User.select().where(User.email_ci == fold(email)).exists():
        raise UserError(_("A user with the email %(email)s already exists.", email=email))
    user = User.create(
        email=email, email_ci=fold(email), name=name.strip(), password_hash=hash_password(password), role=role
    )
    audit.record(None, "user.create", user, {"role": role})
    return user


def _check_email_and_role(email, role):
    try:
        valid = parse_email(email)
    except ValueError:
        valid = None
    if not valid:
        raise UserError(_("Enter a valid email address."))
    if role not in ROLES:
        raise UserError(_("Role must be one of: %(roles)s.", roles=", ".join(ROLES)))


def _check_password(password):
    if len(password or "") < MIN_LENGTH:
        raise UserError(_("The password must be at least %(n)d characters long.", n=MIN_LENGTH))


def find_user(email):
    """The user with this email, in any case (None: no such user)."""
    return User.get_or_none(User.email_ci == fold(email or ""))


def active_user(user_id):
    """The active user with this id (None: unknown or deactivated)."""
    return User.get_or_none(User.id == user_id, User.active == True)  # noqa: E712


def remember_language(user, code):
    """Keep `code`, the language a page was just given in, as the one `user` reads
    Segmento in when they chose none (`User.reading_language`): written only when it changes."""
    if user.language is None and code and code != user.last_language:
        User.update(last_language=code).where(User.id == user.id).execute()
        user.last_language = code


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


# --- sign-in ---------------------------------------------------------------------------


@functools.cache
def _decoy_hash():
    return hash_password(secrets.token_urlsafe(16))


def sign_in(email, password):
    """The active user with this email and password, recorded as a sign-in;
    None (recorded as a failure) for anything else, whichever part was wrong."""
    user = find_user(email)
    # A password is verified even when there is no such user (or no usable hash):
    # the answer takes as long either way, so its time tells no account apart.
    usable = user is not None and user.password_hash.startswith("$argon2")
    matches = check_password(user.password_hash if usable else _decoy_hash(), password)
    if usable and matches and user.active:
        User.update(last_login_at=utcnow()).where(User.id == user.id).execute()
        audit.record(user, "auth.login", user)
        return user
    audit.record(user or (email or "").strip()[:200], "auth.login_failed", user)
    return None


def change_password(user, password):
    _check_password(password)
    user.password_hash = hash_password(password)
    user.save()
    audit.record(user, "auth.password_change", user)


# --- team: invitations, roles, deactivation, password resets --------------------------------

INVITE_MAX_AGE = 7 * 24 * 3600
RESET_MAX_AGE = 3600
LINK_SALTS = {"invite": "segmento.accounts.invite", "reset": "segmento.accounts.reset"}
LINK_MAX_AGE = {"invite": INVITE_MAX_AGE, "reset": RESET_MAX_AGE}


class LinkError(ValueError):
    pass


def _fingerprint(user):
    return hashlib.sha256(("pw:" + (user.password_hash or "")).encode("utf-8")).hexdigest()[:20]


def session_stamp(user):
    """What a signed-in session keeps of its user's password: a new password ends every other session."""
    return _fingerprint(user)[:12]


def link_token(secret_key, user, kind):
    """The signed, expiring token of an invitation (`kind` "invite") or password reset ("reset") link."""
    return SignedJson(secret_key, LINK_SALTS[kind], timed=True).dumps([user.id, _fingerprint(user)])


def user_from_link(secret_key, token, kind):
    """The user a link is for; LinkError with a readable message when it is bad, expired or spent."""
    try:
        user_id, fingerprint = SignedJson(secret_key, LINK_SALTS[kind], timed=True).loads(
            token, max_age=LINK_MAX_AGE[kind]
        )
    except SignatureExpired:
        raise LinkError(_("This link has expired. Ask for a new one.")) from None
    except (BadSignature, ValueError, TypeError, UnicodeDecodeError):
        raise LinkError(_("This link is not valid. Check that it was copied whole.")) from None
    user = User.get_or_none(User.id == user_id) if isinstance(user_id, int) else None
    if user is None or not user.active or fingerprint != _fingerprint(user) or user.invited != (kind == "invite"):
        raise LinkError(_("This link has already been used or is no longer valid. Ask for a new one."))
    return user


def role_labels():
    """Each role as the pages and emails name it, in the reader's language."""
    return {"admin": _("Admin"), "marketer": _("Marketer"), "manager": _("Manager")}


def users():
    """Every user: active ones first, then by email."""
    return list(User.select().order_by(User.active.desc(), User.email_ci))


def _other_active_admins(user):
    return (
        User.select()
        .where(User.role == "admin", User.active == True, User.password_hash != "", User.id != user.id)  # noqa: E712
        .count()
    )


def invite_user(actor, email, role, *, secret_key, url_for_token):
    """Invite `email` with `role`: a user without a password, and an email with
    the link (`url_for_token(token)`) to join. Inviting an invited user again sends a new email."""
    email = (email or "").strip()
    _check_email_and_role(email, role)
    try:
        with database.atomic():
            user = find_user(email)
            if user is not None and not user.invited:
                raise UserError(_("A user with the email %(email)s already exists.", email=email))
            if user is None:
                user = User.create(email=email, password_hash="", role=role)
            else:
                User.update(role=role, active=True).where(User.id == user.id).execute()
            audit.record(actor, "user.invite", user, {"role": role})
    except pw.IntegrityError:
        # another invitation (or a new user) with this email was committed after find_user looked
        raise UserError(
            _("Someone has just invited or added %(email)s. Look at the team list before inviting again.", email=email)
        ) from None
    inviter = actor.display_name if isinstance(actor, User) else "Segmento"
    body = _(
        "%(inviter)s invites you to Segmento as %(role)s.\n\n"
        "Open this link to choose your name and password (it works for 7 days):\n%(url)s\n\n"
        "If you did not expect this invitation, ignore this email.",
        inviter=inviter,
        role=role_labels()[role],
        url=url_for_token(link_token(secret_key, user, "invite")),
    )
    mailer.send_email(email, _("You are invited to Segmento"), body)
    return user


def accept_invite(user, name, password):
    """The invited user joins: their name and password; the link is spent."""
    _check_password(password)
    user.name = (name or "").strip()[:200]
    user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    user.save()
    audit.record(user, "user.join", user)
    return user


def _keeps_an_admin(user, role, active):
    """Raise UserError when `user` is the last active admin and would stop being one.

    Called inside the change's transaction, after the admins' rows are locked
    (PostgreSQL; SQLite has one writer): two admins demoting each other at
    once cannot both succeed and leave no admin.
    """
    admins = User.select(User.id).where(User.role == "admin")
    list(admins.for_update() if is_postgres() else admins)
    user.role, user.active = User.select(User.role, User.active).where(User.id == user.id).tuples().get()
    if user.role == "admin" and user.active and (role != "admin" or not active) and not _other_active_admins(user):
        raise UserError(_("%(email)s is the last active admin: make another user an admin first.", email=user.email))


def change_role(actor, user, role):
    if role not in ROLES:
        raise UserError(_("Role must be one of: %(roles)s.", roles=", ".join(ROLES)))
    with database.atomic():
        _keeps_an_admin(user, role, True)
        if role != user.role:
            audit.record(actor, "user.role", user, {"from": user.role, "to": role})
            User.update(role=role).where(User.id == user.id).execute()
            user.role = role
    return user


def set_active(actor, user, active):
    """Deactivate (their sessions and API tokens stop working at once) or reactivate a user."""
    with database.atomic():
        _keeps_an_admin(user, user.role, active)
        if bool(active) != user.active:
            audit.record(actor, "user.reactivate" if active else "user.deactivate", user)
            User.update(active=bool(active)).where(User.id == user.id).execute()
            user.active = bool(active)
    return user


def request_password_reset(email, *, secret_key, url_for_token):
    """Email a reset link to the active user with this email, if there is one;
    the caller answers the same either way, so nothing tells which accounts exist.
    The email is queued (a worker talks to SMTP), so the answer does not wait for it
    nor take longer when the account exists."""
    user = find_user(email)
    audit.record(user or (email or "").strip()[:200], "auth.reset_request", user)
    if user is None or not user.active or user.invited:
        return
    body = _(
        "Someone (hopefully you) asked to reset your Segmento password.\n\n"
        "Open this link to choose a new one (it works for an hour, once):\n%(url)s\n\n"
        "If it was not you, ignore this email: your password stays as it is.",
        url=url_for_token(link_token(secret_key, user, "reset")),
    )
    mailer.queue_email(user.email, _("Reset your Segmento password"), body)


def reset_password(user, password):
    _check_password(password)
    user.password_hash = hash_password(password)
    user.save()
    audit.record(user, "auth.password_reset", user)
    return user


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
