"""Message templates: sandboxed Jinja over a customer's data.

A marketer writes the subject and body of an email (HTML) or the text of an
SMS with `{{ first_name }}`-style placeholders. Templates run in Jinja's
immutable sandbox (no attribute tricks, no side effects); in an email body
every value is HTML-escaped. A missing value renders as nothing, and
`default("fallback")` (or `d`) gives the fallback for a value that is missing
*or empty* (no first name, a blank custom field): Jinja's own filter would
keep an empty string.

Variables: `name` (the display name), `first_name`, `last_name`,
`company_name`, `email`, `phone`, `city`, `country`, `gender`, `birth_date`,
`external_id`, `manager` (the manager's name), `custom` (custom fields by
code: `{{ custom.favourite_tea }}`) and `unsubscribe_url`.

An email body then gets its links replaced by signed click-tracking links,
an open pixel, an unsubscribe link unless the template placed one, and a
plain-text twin.
"""

import datetime
import decimal
import html
import re

import peewee as pw
from jinja2 import ChainableUndefined, TemplateError, TemplateSyntaxError, Undefined, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from ..fields import service as cf
from ..i18n import _, ngettext
from ..models import Customer, User

VARIABLES = (
    "name",
    "first_name",
    "last_name",
    "company_name",
    "email",
    "phone",
    "city",
    "country",
    "gender",
    "birth_date",
    "external_id",
    "manager",
    "custom",
    "unsubscribe_url",
)
MAX_SOURCE = 200_000


def _finalize(value):
    if value is None:
        return ""
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value.normalize(), "f")
    return value


def is_blank(value):
    """A value a marketer sees as empty: missing, None, or only spaces."""
    return isinstance(value, Undefined) or value is None or (isinstance(value, str) and not value.strip())


def _default(value, fallback="", boolean=False):
    """`default`: the fallback for a missing or empty value (and any false one with `boolean`)."""
    if is_blank(value) or (boolean and not value):
        return fallback
    return value


def _env(autoescape):
    env = ImmutableSandboxedEnvironment(autoescape=autoescape, undefined=ChainableUndefined, finalize=_finalize)
    env.filters["default"] = env.filters["d"] = _default
    return env


_HTML = _env(True)
_TEXT = _env(False)


class TemplateProblem(ValueError):
    """A template that does not compile or render, in the marketer's words."""


def check(source, *, html_body=False):
    """None if `source` compiles, else a readable message (with the line)."""
    source = source or ""
    if len(source) > MAX_SOURCE:
        return ngettext(
            "The template is too long (at most %(num)s character).",
            "The template is too long (at most %(num)s characters).",
            MAX_SOURCE,
        )
    env = _HTML if html_body else _TEXT
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        return _("Line %(line)s: %(problem)s", line=exc.lineno, problem=exc.message)
    unknown = sorted(meta.find_undeclared_variables(tree) - set(VARIABLES))
    if unknown:
        return _(
            "Unknown placeholder: %(names)s. Use one of: %(known)s.",
            names=", ".join(unknown),
            known=", ".join(VARIABLES),
        )
    return None


class MessageTemplate:
    """A compiled subject/body pair for one channel."""

    def __init__(self, channel, subject, body):
        self.channel = channel
        for source, is_html in ((subject, False), (body, channel == "email")):
            problem = check(source, html_body=is_html)
            if problem:
                raise TemplateProblem(problem)
        self.subject = _TEXT.from_string(subject or "") if channel == "email" else None
        env = _HTML if channel == "email" else _TEXT
        self.body = env.from_string(body or "")
        body_names = meta.find_undeclared_variables(env.parse(body or ""))
        self.places_unsubscribe = "unsubscribe_url" in body_names
        self.names = body_names | (meta.find_undeclared_variables(_TEXT.parse(subject or "")) if subject else set())

    def render(self, context, links=None, mailing_id=0, customer_id=0):
        """Render for one customer; returns {"subject", "html", "text"} (email) or {"text"} (SMS).

        `links` (a links.Links) turns on tracking: click links, open pixel, unsubscribe.
        """
        context = dict(context)
        unsubscribe = links.unsubscribe_url(mailing_id, customer_id, self.channel) if links else ""
        context["unsubscribe_url"] = unsubscribe
        try:
            body = self.body.render(context)
            subject = self.subject.render(context) if self.subject is not None else None
        except SecurityError as exc:
            raise TemplateProblem(_("The template tried something not allowed: %(e)s", e=exc)) from exc
        except TemplateError as exc:
            raise TemplateProblem(_("The template failed: %(e)s", e=exc)) from exc
        if self.channel != "email":
            return {"text": body.strip(), "unsubscribe_url": unsubscribe}
        # A header is one line: newlines from data must not start new headers.
        subject = " ".join((subject or "").split())
        if links:
            body = track_links(body, lambda url: links.click_url(mailing_id, customer_id, url), skip_prefix=links.base)
            if not self.places_unsubscribe:
                body = _append(
                    body,
                    '<p style="font-size:12px;color:#777"><a href="%s">%s</a></p>'
                    % (html.escape(unsubscribe), html.escape(_("Unsubscribe"))),
                )
            body = _append(
                body,
                '<img src="%s" width="1" height="1" alt="" style="display:block;border:0">'
                % html.escape(links.open_url(mailing_id, customer_id)),
            )
        return {"subject": subject, "html": body, "text": html_to_text(body), "unsubscribe_url": unsubscribe}


_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(.*?)\2""", re.IGNORECASE | re.DOTALL)


def track_links(body, make_url, skip_prefix=""):
    """Replace every http(s) link of an HTML body by `make_url(original)`."""

    def replace(match):
        url = html.unescape(match.group(3)).strip()
        if not url.lower().startswith(("http://", "https://")) or (skip_prefix and url.startswith(skip_prefix)):
            return match.group(0)
        return f"{match.group(1)}{match.group(2)}{html.escape(make_url(url))}{match.group(2)}"

    return _HREF.sub(replace, body)


def _append(body, fragment):
    at = body.lower().rfind("</body>")
    return body[:at] + fragment + body[at:] if at >= 0 else body + fragment


_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_HIDDEN = re.compile(r"<(style|script|head|title)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_BLOCK = re.compile(r"<\s*/?\s*(?:p|div|br|li|tr|h[1-6]|table|ul|ol|blockquote|hr)\b[^>]*>", re.IGNORECASE)
_LINK = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*(["'])(.*?)\1[^>]*>(.*?)</a\s*>""", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"[ \t\r\f\v]+")


def _link_text(match):
    href, label = match.group(2), _TAG.sub("", match.group(3))
    label = " ".join(label.split())
    return f"{label} ({href})" if label and html.unescape(label) != html.unescape(href) else href


def html_to_text(body):
    """A readable plain-text twin of an HTML email body (links as "label (url)").

    Regular expressions rather than an HTML parser: this runs once per
    message, and a parser costs more than the rest of the rendering.
    """
    text = _HIDDEN.sub("", _COMMENT.sub("", body))
    text = _BLOCK.sub("\n", text.replace("\n", " "))
    text = _TAG.sub("", _LINK.sub(_link_text, text))
    lines = [_SPACES.sub(" ", html.unescape(line)).strip() for line in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


# --- the customer's data -----------------------------------------------------


def _context(customer, manager_name, custom):
    display = customer.display_name
    return {
        "name": display,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "company_name": customer.company_name,
        "email": customer.email,
        "phone": customer.phone,
        "city": customer.city,
        "country": customer.country,
        "gender": customer.gender,
        "birth_date": customer.birth_date,
        "external_id": customer.external_id,
        "manager": manager_name,
        "custom": custom,
        # for the senders, not advertised to templates
        "_email_consent": bool(customer.email_consent),
        "_sms_consent": bool(customer.sms_consent),
    }


def contexts_for(customer_ids):
    """{customer id: template context} for many customers, in three queries."""
    ids = list(customer_ids)
    if not ids:
        return {}
    manager = User.alias("m")
    rows = list(
        Customer.select(Customer, manager.name.alias("manager_name"), manager.email.alias("manager_email"))
        .join(manager, pw.JOIN.LEFT_OUTER, on=(Customer.manager == manager.id))
        .where(Customer.id.in_(ids))
        .objects()
    )
    fields = cf.fields_for("customer")
    custom = {i: {} for i in ids}
    if fields:
        by_id = {f.id: f for f in fields}
        from ..models import CustomValue

        for value in CustomValue.select().where(CustomValue.field.in_(list(by_id)), CustomValue.record_id.in_(ids)):
            field = by_id[value.field_id]
            custom.setdefault(value.record_id, {})[field.code] = cf.typed_value(field, value)
    out = {}
    for c in rows:
        manager_name = (c.manager_name or c.manager_email) if c.manager_id else None
        out[c.id] = _context(c, manager_name, custom.get(c.id, {}))
    return out


NAME_VARIABLES = ("name", "first_name", "last_name", "company_name")


def without_name(context):
    """The context of a customer with no name at all (as companies often are):
    what the preview shows so the marketer sees the fallbacks at work. `name`
    then reads as it would for such a customer (Customer.display_name)."""
    context = dict(context or {})
    context.update(first_name="", last_name="", company_name="")
    context["name"] = context.get("email") or context.get("phone") or context.get("external_id") or ""
    return context


def context_for(customer_id):
    return contexts_for([customer_id]).get(customer_id)
