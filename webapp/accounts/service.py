"""User accounts: creation and lookup, shared by the setup page and the CLI."""
from ..i18n import _
from ..models import ROLES, User
from .passwords import MIN_LENGTH, hash_password
from ..text import fold


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
    return User.create(email=email, email_ci=fold(email), name=name.strip(),
                       password_hash=hash_password(password), role=role)


def find_user(email):
    return User.get_or_none(User.email_ci == fold(email or ""))


def has_users():
    """Whether the app is set up: an active admin exists.

    Demo data brings managers who cannot log in (no usable password), so the
    first start still shows the setup page.
    """
    return User.select().where(User.role == "admin", User.active == True).exists()  # noqa: E712
