"""Sign-in pages (login, logout, first-run setup, password change) and the
user's settings page for REST API tokens.

The login wall that sends everyone else here is `webapp.accounts.auth`.
"""

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from ..i18n import LANGUAGES, _
from ..i18n import lazy_gettext as _l
from ..models import ApiToken
from ..web import CsrfForm, get_or_404, safe_path
from .passwords import MIN_LENGTH, check_password, hash_password
from .service import (
    TOKEN_NAME_MAX,
    TokenError,
    UserError,
    create_token,
    create_user,
    find_user,
    has_users,
    revoke,
    set_language,
    tokens_for,
)

bp = Blueprint("auth", __name__)
account_bp = Blueprint("account", __name__, url_prefix="/account")


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


class TokenForm(FlaskForm):
    name = StringField(
        _l("Token name"), validators=[Length(max=TOKEN_NAME_MAX)], description=_l("Where it is used, e.g. “CRM sync”.")
    )


class LanguageForm(FlaskForm):
    language = SelectField(_l("Language"), choices=[])


def _log_in(user):
    session.clear()
    session["user_id"] = user.id


# --- sign-in ----------------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login():
    if not has_users():
        return redirect(url_for("auth.setup"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        user = find_user(form.email.data)
        if user and user.active and check_password(user.password_hash, form.password.data):
            _log_in(user)
            session.permanent = True
            return redirect(safe_path(request.args.get("next")) or url_for("views.home"))
        error = _("Wrong email or password.")
    return render_template("auth/login.html", form=form, error=error)


@bp.route("/logout", methods=["POST"])
def logout():
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
            g.user.password_hash = hash_password(form.password.data)
            g.user.save()
            flash(_("Your password has been changed."))
            return redirect(url_for("views.home"))
    return render_template("auth/password.html", form=form)


@account_bp.route("/language", methods=["GET", "POST"])
def language():
    """The language the user reads Segmento in; "" follows the browser (Accept-Language)."""
    form = LanguageForm(language=g.user.language or "")
    form.language.choices = [("", _("As the browser asks"))] + list(LANGUAGES.items())
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


def init_app(app):
    app.register_blueprint(bp)
    app.register_blueprint(account_bp)
