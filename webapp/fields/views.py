"""Custom fields admin: create, rename, delete (with confirmation).

Everyone sees the fields; only admins and marketers change them.
"""

import peewee as pw
from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length

from ..formats import label
from ..i18n import _, ngettext
from ..i18n import lazy_gettext as _l
from ..models import CUSTOM_ENTITIES, CUSTOM_TYPES, CustomField, CustomValue
from ..web import EDITORS, CsrfForm, can_edit, get_or_404, role_required
from . import service as cf

bp = Blueprint("fields", __name__, url_prefix="/fields")


def _clean(text):
    """Form text without NUL characters (PostgreSQL cannot store them), trimmed."""
    return text.replace("\x00", "").strip() if isinstance(text, str) else text


def _options_list(text):
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class CreateFieldForm(FlaskForm):
    entity = SelectField(_l("Applies to"))
    name = StringField(
        _l("Name"), filters=[_clean], validators=[DataRequired(message=_l("Enter a name.")), Length(max=100)]
    )
    code = StringField(_l("Code"), filters=[_clean], validators=[Length(max=63)])
    code_suggested = HiddenField()
    type = SelectField(_l("Type"))
    options = TextAreaField(_l("Options"), filters=[_clean], validators=[Length(max=20000)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Labels are looked up per request, so a translation applies to the choices too.
        self.entity.choices = [SelectChoice(e, label(e)) for e in CUSTOM_ENTITIES]
        self.type.choices = [SelectChoice(t, label(t)) for t in CUSTOM_TYPES]


class EditFieldForm(FlaskForm):
    name = StringField(
        _l("Name"), filters=[_clean], validators=[DataRequired(message=_l("Enter a name.")), Length(max=100)]
    )
    options = TextAreaField(_l("Options"), filters=[_clean], validators=[Length(max=20000)])


def _apply_error(form, exc):
    """Show a FieldError next to the input it is about (or above the form)."""
    target = getattr(form, exc.field, None) if exc.field else None
    if target is not None:
        target.errors = list(target.errors) + [str(exc)]
        return None
    return str(exc)


def _get_field(field_id):
    return get_or_404(CustomField, CustomField.id == field_id)


def _values_count(field):
    return CustomValue.select().where(CustomValue.field == field).count()


@bp.route("/")
def index():
    fields = {entity: cf.fields_for(entity) for entity in CUSTOM_ENTITIES}
    return render_template("fields/index.html", fields=fields, can_edit=can_edit())


def suggest_code(form):
    """The code to show after the name changed: follow the name until the user types their own."""
    suggested = cf.slugify(form.name.data)
    code = (form.code.data or "").strip()
    if not code or code == (form.code_suggested.data or ""):
        code = suggested
    return code, suggested


@bp.route("/new", methods=["GET", "POST"])
@role_required(*EDITORS)
def new():
    form = CreateFieldForm(entity=request.args.get("entity") if request.method == "GET" else None)
    if request.method == "GET" and request.htmx and request.htmx.trigger_name == "name":
        # Live code suggestion while the name is typed: just the code input.
        form = CreateFieldForm(request.args, meta={"csrf": False})
        form.code.data, form.code_suggested.data = suggest_code(form)
        return render_template("fields/_code.html", form=form)
    error = None
    if form.validate_on_submit():
        code = (form.code.data or "").strip() or cf.slugify(form.name.data)
        if not code:
            form.code.errors = [_("This name gives no code: enter one with the letters a-z, digits and _.")]
        else:
            try:
                field = cf.create_field(
                    form.entity.data, code, form.name.data, form.type.data, _options_list(form.options.data)
                )
            except cf.FieldError as exc:
                error = _apply_error(form, exc)
            except pw.IntegrityError:  # the same code saved a moment ago by someone else
                form.code.errors = [_("A field with the code “%(code)s” already exists.", code=code)]
            else:
                flash(_("Field “%(name)s” created. Its code is %(code)s.", name=field.name, code=field.code))
                return redirect(url_for("fields.index", _anchor=f"entity-{field.entity}"))
    if request.method == "GET" or not (form.code.data or "").strip():
        form.code.data, form.code_suggested.data = suggest_code(form)
    return render_template("fields/new.html", form=form, error=error)


@bp.route("/<int:field_id>/edit", methods=["GET", "POST"])
@role_required(*EDITORS)
def edit(field_id):
    field = _get_field(field_id)
    form = EditFieldForm(obj=None if request.method == "POST" else field)
    if request.method == "GET":
        form.options.data = "\n".join(field.options or [])
    error = None
    if form.validate_on_submit():
        options = _options_list(form.options.data) if field.type == "enum" else None
        if field.type == "enum" and not options:
            form.options.errors = [_("An enum field needs at least one option.")]
        else:
            try:
                cf.rename_field(field, form.name.data, options)
            except cf.FieldError as exc:
                error = _apply_error(form, exc)
            else:
                flash(_("Field “%(name)s” saved.", name=field.name))
                return redirect(url_for("fields.index", _anchor=f"entity-{field.entity}"))
    return render_template("fields/edit.html", form=form, field=field, error=error)


@bp.route("/<int:field_id>/delete", methods=["GET", "POST"])
@role_required(*EDITORS)
def delete(field_id):
    field = _get_field(field_id)
    count = _values_count(field)
    form = CsrfForm()
    if form.validate_on_submit():
        name, entity = field.name, field.entity
        cf.delete_field(field)
        flash(
            ngettext(
                "Field “%(name)s” deleted with %(num)s value.",
                "Field “%(name)s” deleted with %(num)s values.",
                count,
                name=name,
                num=f"{count:,}",
            )
        )
        return redirect(url_for("fields.index", _anchor=f"entity-{entity}"))
    return render_template("fields/delete.html", form=form, field=field, count=count)


def init_app(app):
    app.register_blueprint(bp)
