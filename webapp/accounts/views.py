"""Sign-in pages (login, logout, first-run setup, password change, forgotten
password, invitations), the user's settings page for REST API tokens, and the
admin's team pages (users: invite, change role, deactivate, reactivate).

Wrong passwords are throttled per account and per client address with the
app's Flask-Limiter (`webapp.web.rate_limiter`, on Redis): LOGIN_RATE_LIMIT
failures, then every attempt is refused until the window passes, with one
message whether or not the account exists. Forgotten-password requests are
counted the same way (PASSWORD_RESET_RATE_LIMIT), every request, and past the
limit the page answers as always and sends nothing.

The login wall that sends everyone else here is `webapp.accounts.auth`.
"""

import logging

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from limits import parse
from wtforms import EmailField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from .. import settings
from ..audit import service as audit
from ..i18n import LANGUAGES, _
from ..i18n import lazy_gettext as _l
from ..models import ROLES, ApiToken, User
from ..text import fold
from ..web import CsrfForm, get_or_404, rate_limiter, role_required, safe_path
from . import service
from .passwords import MIN_LENGTH, check_password
from .service import (
    TOKEN_NAME_MAX,
    LinkError,
    TokenError,
    UserError,
    create_token,
    create_user,
    has_users,
    revoke,
    set_language,
    tokens_for,
)

bp = Blueprint("auth", __name__)
account_bp = Blueprint("account", __name__, url_prefix="/account")
users_bp = Blueprint("users", __name__, url_prefix="/users")
log = logging.getLogger(__name__)


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


class SetupForm(FlaskForm):
    name = StringField(_l("Your name"))
    email = EmailField(_l("Email"), validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(min=MIN_LENGTH)])
    confirm = PasswordField(
        _l("Repeat password"), validators=[EqualTo("password", message=_l("Passwords do not match."))]
    )


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired()])
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(min=MIN_LENGTH)])
    confirm = PasswordField(
        _l("Repeat new password"), validators=[EqualTo("password", message=_l("Passwords do not match."))]
    )


class ForgotForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired()])


class NewPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[DataRequired(), Length(min=MIN_LENGTH)])
    confirm = PasswordField(
        _l("Repeat new password"), validators=[EqualTo("password", message=_l("Passwords do not match."))]
    )


class JoinForm(NewPasswordForm):
    name = StringField(_l("Your name"), validators=[Length(max=200)])


def role_choices():
    return list(service.role_labels().items())


class InviteForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired()])
    role = SelectField(_l("Role"), choices=ROLES, default="marketer")


class TokenForm(FlaskForm):
    name = StringField(
        _l("Token name"), validators=[Length(max=TOKEN_NAME_MAX)], description=_l("Where it is used, e.g. “CRM sync”.")
    )


class LanguageForm(FlaskForm):
    language = SelectField(_l("Language"), choices=[])


def _log_in(user):
    session.clear()
    session["user_id"] = user.id
    session["stamp"] = service.session_stamp(user)
    session.permanent = True


# --- sign-in ----------------------------------------------------------------------------


def _throttle(email, setting, kind):
    """(strategy, limit, keys) counting requests of `kind` for this account and this address."""
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX") or "segmento"
    limit = parse(current_app.config.get(setting) or getattr(settings, setting))
    keys = [(prefix, f"{kind}-account", fold(email)[:200]), (prefix, f"{kind}-address", request.remote_addr or "-")]
    return rate_limiter(current_app).limiter, limit, keys


def _login_throttle(email):
    return _throttle(email, "LOGIN_RATE_LIMIT", "login")


def _throttled(email):
    strategy, limit, keys = _login_throttle(email)
    try:
        return not all(strategy.test(limit, *key) for key in keys)
    except Exception:  # noqa: BLE001 - the limiter's storage is down: sign-in stays open
        log.exception("sign-in throttle unavailable")
        return False


def _count_failure(email):
    strategy, limit, keys = _login_throttle(email)
    try:
        for key in keys:
            strategy.hit(limit, *key)
    except Exception:  # noqa: BLE001 - as in _throttled
        log.exception("sign-in throttle unavailable")


def _reset_allowed(email):
    """Count one reset request for this account and this address; False past the limit of either."""
    strategy, limit, keys = _throttle(email, "PASSWORD_RESET_RATE_LIMIT", "reset")
    try:
        if not all(strategy.test(limit, *key) for key in keys):
            return False
        for key in keys:
            strategy.hit(limit, *key)
    except Exception:  # noqa: BLE001 - the limiter's storage is down: resets stay possible
        log.exception("password reset throttle unavailable")
    return True


@bp.route("/login", methods=["GET", "POST"])
def login():
    if not has_users():
        return redirect(url_for("auth.setup"))
    form = LoginForm()
    error = None
    status = 200
    if form.validate_on_submit():
        email = form.email.data.strip()
        if _throttled(email):
            audit.record(email[:200], "auth.throttled")
            error = _("Too many failed sign-ins from here or for this account. Wait a minute and try again.")
            status = 429
        else:
            user = service.sign_in(email, form.password.data)
            if user:
                _log_in(user)
                return redirect(safe_path(request.args.get("next")) or url_for("views.home"))
            _count_failure(email)
            error = _("Wrong email or password.")
    return render_template("auth/login.html", form=form, error=error), status


def public_link(endpoint, **values):
    """A link for an email that leaves the app (password reset, invitation), on
    PUBLIC_URL like the unsubscribe and tracking links: never on the Host header
    a request sent, which anyone can set to their own site to collect the token."""
    path = url_for(endpoint, **values)
    root = request.script_root
    if root and path.startswith(root):
        path = path[len(root) :]
    return settings.PUBLIC_URL + path


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password():
    """Ask for a reset link; the answer is the same whether or not the account exists."""
    form = ForgotForm()
    if form.validate_on_submit():
        email = form.email.data.strip()
        if _reset_allowed(email):
            service.request_password_reset(
                email,
                secret_key=current_app.config["SECRET_KEY"],
                url_for_token=lambda token: public_link("auth.reset_password", token=token),
            )
        else:
            audit.record(email[:200], "auth.reset_throttled")
        flash(_("If an account uses that email, a link to reset its password is on its way. It works for an hour."))
        return redirect(url_for("auth.login"))
    return render_template("auth/forgot.html", form=form)


def _from_link(token, kind):
    """(the user an emailed link names, None), or (None, the page saying why it cannot be used)."""
    try:
        return service.user_from_link(current_app.config["SECRET_KEY"], token, kind), None
    except LinkError as exc:
        return None, (render_template("auth/bad_link.html", error=str(exc)), 400)


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
def reset_password(token):
    user, refusal = _from_link(token, "reset")
    if refusal:
        return refusal
    form = NewPasswordForm()
    if form.validate_on_submit():
        service.reset_password(user, form.password.data)
        session.clear()
        flash(_("Your password has been changed. Log in with the new one."))
        return redirect(url_for("auth.login"))
    return render_template("auth/reset.html", form=form, user=user)


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invite(token):
    user, refusal = _from_link(token, "invite")
    if refusal:
        return refusal
    form = JoinForm()
    if form.validate_on_submit():
        service.accept_invite(user, form.name.data, form.password.data)
        _log_in(user)
        flash(_("Welcome to Segmento, %(name)s!", name=user.display_name))
        return redirect(url_for("views.home"))
    return render_template("auth/join.html", form=form, user=user)


@bp.route("/logout", methods=["POST"])
def logout():
    if g.user is not None:
        audit.record(g.user, "auth.logout", g.user)
    session.clear()
    flash(_("You are logged out."))
    return redirect(url_for("auth.login"))


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    """First start: create the first admin. Closed once any user exists."""
    if has_users():
        return redirect(url_for("auth.login"))
    form = SetupForm()
    error = None
    if form.validate_on_submit():
        try:
            user = create_user(form.email.data, form.password.data, role="admin", name=form.name.data or "")
        except UserError as exc:
            error = str(exc)
        else:
            _log_in(user)
            flash(_("Welcome! Your admin account is ready."))
            return redirect(url_for("views.home"))
    return render_template("auth/setup.html", form=form, error=error)


@bp.route("/account/password", methods=["GET", "POST"])
def change_password():
    form = PasswordForm()
    if form.validate_on_submit():
        if not check_password(g.user.password_hash, form.current.data):
            form.current.errors.append(_("The current password is wrong."))
        else:
            service.change_password(g.user, form.password.data)
            session["stamp"] = service.session_stamp(g.user)  # this session goes on; the others end
            flash(_("Your password has been changed."))
            return redirect(url_for("views.home"))
    return render_template("auth/password.html", form=form)


@account_bp.route("/language", methods=["GET", "POST"])
def language():
    """The language the user reads Segmento in; "" follows the browser (Accept-Language)."""
    form = LanguageForm(language=g.user.language or "")
    form.language.choices = [SelectChoice("", _("As the browser asks"))] + [
        SelectChoice(code, name) for code, name in LANGUAGES.items()
    ]
    if form.validate_on_submit():
        try:
            set_language(g.user, form.language.data)
        except UserError as exc:
            form.language.errors.append(str(exc))
        else:
            g.pop("language", None)  # the message below is in the language just chosen
            flash(_("Language saved."))
            return redirect(url_for("account.language"))
    return render_template("account/language.html", form=form)


# --- API tokens ---------------------------------------------------------------------------


@account_bp.route("/tokens", methods=["GET", "POST"])
def tokens():
    """The user's API tokens: create (the secret is shown once on the answer), list, revoke."""
    form = TokenForm()
    secret = None
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                _token, secret = create_token(g.user, form.name.data)
            except TokenError as exc:
                form.name.errors.append(str(exc))
                status = 422
            else:
                form = TokenForm(formdata=None)
        else:
            status = 422
    return render_template(
        "account/tokens.html", form=form, secret=secret, tokens=tokens_for(g.user), revoke_form=CsrfForm()
    ), status


@account_bp.route("/tokens/<int:token_id>/revoke", methods=["GET", "POST"])
def revoke_token(token_id):
    """GET: the confirmation page; POST: revoke."""
    token = get_or_404(ApiToken, ApiToken.id == token_id, ApiToken.user == g.user.id)
    form = CsrfForm()
    if request.method == "POST" and form.validate_on_submit():
        revoke(token)
        flash(_("The token “%(name)s” is revoked: requests with it are refused from now on.", name=token.name))
        return redirect(url_for("account.tokens"))
    return render_template("account/revoke.html", token=token, form=form)


# --- the team (admins) -------------------------------------------------------------------


@users_bp.route("/")
@role_required("admin")
def index():
    return render_template("users/index.html", users=service.users(), roles=dict(role_choices()))


@users_bp.route("/invite", methods=["GET", "POST"])
@role_required("admin")
def invite():
    form = InviteForm()
    form.role.choices = [SelectChoice(role, name) for role, name in role_choices()]
    status = 200
    if request.method == "POST":
        status = 422
        if form.validate_on_submit():
            try:
                user = service.invite_user(
                    g.user,
                    form.email.data,
                    form.role.data,
                    secret_key=current_app.config["SECRET_KEY"],
                    url_for_token=lambda token: public_link("auth.accept_invite", token=token),
                )
            except UserError as exc:
                form.email.errors.append(str(exc))
            else:
                flash(_("Invitation sent to %(email)s. The link in it works for 7 days.", email=user.email))
                return redirect(url_for("users.index"))
    return render_template("users/invite.html", form=form), status


@users_bp.route("/<int:user_id>/role", methods=["GET", "POST"])
@role_required("admin")
def change_role(user_id):
    """GET: the form with what the change means; POST: change."""
    user = get_or_404(User, User.id == user_id)
    form = CsrfForm()
    error = None
    if request.method == "POST" and form.validate_on_submit():
        try:
            service.change_role(g.user, user, request.form.get("role", ""))
        except UserError as exc:
            error = str(exc)
        else:
            flash(_("%(email)s is now %(role)s.", email=user.email, role=dict(role_choices())[user.role]))
            return redirect(url_for("users.index"))
    return render_template(
        "users/role.html", user=user, form=form, error=error, roles=role_choices()
    ), 422 if error else 200


@users_bp.route("/<int:user_id>/<any(deactivate, reactivate):change>", methods=["GET", "POST"])
@role_required("admin")
def set_active(user_id, change):
    """GET: the confirmation page; POST: deactivate or reactivate."""
    user = get_or_404(User, User.id == user_id)
    form = CsrfForm()
    error = None
    if request.method == "POST" and form.validate_on_submit():
        try:
            service.set_active(g.user, user, change == "reactivate")
        except UserError as exc:
            error = str(exc)
        else:
            if change == "reactivate":
                flash(_("%(email)s can sign in again.", email=user.email))
            else:
                flash(_("%(email)s is deactivated: signed out everywhere, API tokens refused.", email=user.email))
            return redirect(url_for("users.index"))
    return render_template("users/active.html", user=user, form=form, error=error, change=change), (
        422 if error else 200
    )


def init_app(app):
    app.register_blueprint(bp)
    app.register_blueprint(account_bp)
    app.register_blueprint(users_bp)
