"""API tokens: made and revoked on the user's settings page and by
`flask api-token create --user EMAIL`; a token acts with its user's role.

The secret is `sgm_` + 40 random characters, shown once. Only its SHA-256 is
stored: a leaked database does not leak usable tokens, and a lookup is one
indexed equality (a fast hash is right here: the secret has 238 random bits,
so there is nothing to brute-force, unlike a password).
"""
import hashlib
import secrets

import click
from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask.cli import AppGroup
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import Length

from ..i18n import _
from ..models import ApiToken, User, utcnow
from .service import find_user

PREFIX = "sgm_"
NAME_MAX = 100
# last_used_at is written at most this often per token: a busy integration
# must not turn every read into a write.
TOUCH_SECONDS = 60


class TokenError(ValueError):
    pass


def hash_secret(secret):
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_token(user, name=""):
    """A new token for `user`: (ApiToken row, the secret to show once)."""
    name = (name or "").strip()
    if len(name) > NAME_MAX:
        raise TokenError(_("The name is too long (at most %(n)s characters).", n=NAME_MAX))
    if not user.active:
        raise TokenError(_("The user %(email)s is deactivated.", email=user.email))
    secret = PREFIX + secrets.token_urlsafe(30)
    token = ApiToken.create(user=user, name=name or _("API token"), token_hash=hash_secret(secret),
                            prefix=secret[:len(PREFIX) + 4])
    return token, secret


def authenticate(secret):
    """The live token for a presented secret (None: unknown, revoked, or its user is inactive)."""
    if not secret or not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    token = (ApiToken.select(ApiToken, User).join(User)
             .where(ApiToken.token_hash == hash_secret(secret), ApiToken.revoked_at.is_null(),
                    User.active == True)  # noqa: E712
             .first())
    if token is None:
        return None
    now = utcnow()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > TOUCH_SECONDS:
        ApiToken.update(last_used_at=now).where(ApiToken.id == token.id).execute()
        token.last_used_at = now
    return token


def tokens_for(user):
    return list(ApiToken.select().where(ApiToken.user == user)
                .order_by(ApiToken.revoked_at.is_null(False), ApiToken.created_at.desc(), ApiToken.id.desc()))


def revoke(token):
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        token.save()
    return token


# --- the settings page ---------------------------------------------------------

bp = Blueprint("account", __name__, url_prefix="/account")


class TokenForm(FlaskForm):
    name = StringField(_("Token name"), validators=[Length(max=NAME_MAX)],
                       description=_("Where it is used, e.g. “CRM sync”."))


class RevokeForm(FlaskForm):
    pass


def _own_token(token_id):
    token = ApiToken.get_or_none(ApiToken.id == token_id, ApiToken.user == g.user.id)
    if token is None:
        from flask import abort
        abort(404)
    return token


@bp.route("/tokens", methods=["GET", "POST"])
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
    return render_template("account/tokens.html", form=form, secret=secret, tokens=tokens_for(g.user),
                           revoke_form=RevokeForm()), status


@bp.route("/tokens/<int:token_id>/revoke", methods=["GET", "POST"])
def revoke_token(token_id):
    """GET: the confirmation page; POST: revoke."""
    token = _own_token(token_id)
    form = RevokeForm()
    if request.method == "POST" and form.validate_on_submit():
        revoke(token)
        flash(_("The token “%(name)s” is revoked: requests with it are refused from now on.", name=token.name))
        return redirect(url_for("account.tokens"))
    return render_template("account/revoke.html", token=token, form=form)


# --- the command line ------------------------------------------------------------

token_cli = AppGroup("api-token", help="REST API tokens.")


@token_cli.command("create")
@click.option("--user", "email", required=True, help="The email of the user the token acts as.")
@click.option("--name", default="", help="What the token is for.")
def create_command(email, name):
    """Create an API token and print it (it is shown only this once)."""
    user = find_user(email)
    if user is None:
        raise click.ClickException(_("No user with the email %(email)s.", email=email))
    try:
        _token, secret = create_token(user, name or "cli")
    except TokenError as exc:
        raise click.ClickException(str(exc))
    click.echo(secret)


def init_app(app):
    app.register_blueprint(bp)
