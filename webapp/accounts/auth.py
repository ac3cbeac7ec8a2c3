"""Login, logout, first-run setup, password change, and the login wall.

Every endpoint needs a logged-in user unless it is listed in PUBLIC_ENDPOINTS:
a new view is protected by default.
"""
import functools

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from ..i18n import _
from ..models import User
from .passwords import MIN_LENGTH, check_password, hash_password
from .service import UserError, create_user, find_user, has_users

bp = Blueprint("auth", __name__)

PUBLIC_ENDPOINTS = {"auth.login", "auth.setup", "static",
                    # links in mailings (webapp.activation): signed tokens, no session
                    "track.open", "track.click", "track.unsubscribe", "track.one_click"}


class LoginForm(FlaskForm):
    email = EmailField(_("Email"), validators=[DataRequired()])
    password = PasswordField(_("Password"), validators=[DataRequired()])


class SetupForm(FlaskForm):
    name = StringField(_("Your name"))
    email = EmailField(_("Email"), validators=[DataRequired()])
    password = PasswordField(_("Password"), validators=[DataRequired(), Length(min=MIN_LENGTH)])
    confirm = PasswordField(_("Repeat password"),
                            validators=[EqualTo("password", message=_("Passwords do not match."))])


class PasswordForm(FlaskForm):
    current = PasswordField(_("Current password"), validators=[DataRequired()])
    password = PasswordField(_("New password"), validators=[DataRequired(), Length(min=MIN_LENGTH)])
    confirm = PasswordField(_("Repeat new password"),
                            validators=[EqualTo("password", message=_("Passwords do not match."))])


def _safe_next(target):
    # Only same-site paths: never an open redirect.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("views.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if not has_users():
        return redirect(url_for("auth.setup"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        user = find_user(form.email.data)
        if user and user.active and check_password(user.password_hash, form.password.data):
            session.clear()
            session["user_id"] = user.id
            session.permanent = True
            return redirect(_safe_next(request.args.get("next")))
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
            user = create_user(form.email.data, form.password.data, role="admin",
                               name=form.name.data or "")
        except UserError as exc:
            error = str(exc)
        else:
            session.clear()
            session["user_id"] = user.id
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


def role_required(*roles):
    """Allow the view only to users with one of `roles` (403 otherwise)."""
    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if g.user is None or g.user.role not in roles:
                abort(403)
            return view(*args, **kwargs)
        return wrapped
    return decorator


def init_app(app):
    app.register_blueprint(bp)

    @app.before_request
    def _login_wall():
        user_id = session.get("user_id")
        g.user = User.get_or_none(User.id == user_id, User.active == True) if user_id else None  # noqa: E712
        if g.user is None and request.endpoint not in PUBLIC_ENDPOINTS:
            if request.endpoint is None:
                return None  # a 404 stays a 404
            if not has_users():
                return redirect(url_for("auth.setup"))
            if request.headers.get("HX-Request"):
                # htmx cannot follow a redirect into a fragment: reload the page.
                return "", 401, {"HX-Redirect": url_for("auth.login")}
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return None

    @app.context_processor
    def _current_user():
        return {"current_user": g.get("user")}
