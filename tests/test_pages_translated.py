"""Every GET page of the URL map, in Russian and in Vietnamese, shows no English
catalogue string of two or more words (issue 15).

One app on one SQLite database with the demo data (and one of each thing a
page is about: a segment, a trigger, an export, an import, a notification...),
built once for the module: the pages are rendered, not the data re-made.

A page whose URL arguments nothing here can fill fails the test until it is
given a value below (or, for machine answers, listed in NOT_PAGES): new pages
are scanned as soon as they exist.
"""

import datetime
import html.parser
import re
import uuid

import pytest
from babel.messages.pofile import read_po

from tests.conftest import PASSWORD
from webapp import create_app, demo, i18n
from webapp.db import database, init_database, upgrade

# Answers that are not pages people read: JSON of the API (English by
# contract), files, redirects, the monitoring endpoints and the open pixel.
NOT_PAGES = {
    "static",
    "ops.healthz",
    "ops.metrics_page",
    "track.open",
    "track.click",
    "analytics.export",
    "exports.download",
    "imports.rejected",
    "notifications.poll",
    "notifications.open_",
}
NOT_PAGE_PREFIXES = ("api.",)
# Visible text: what is between tags outside scripts and styles, and the
# attributes people read (tooltips, placeholders, labels of icons).
READ_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")


class _Text(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts, self._skip, self.fragments = [], 0, []

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        attrs = dict(attrs)
        if attrs.get("hx-get", "").startswith("/"):
            # A fragment the page loads: asked for as htmx does, with the id of its target.
            target = (attrs.get("hx-target") or "").removeprefix("#")
            target = target if target and " " not in target and target != "this" else attrs.get("id", "")
            self.fragments.append((attrs["hx-get"], target))
        self.parts.extend(value for name, value in attrs.items() if name in READ_ATTRIBUTES and value)

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def read(page):
    """The visible text of `page` and the fragments it loads [(url, target id)]."""
    parser = _Text()
    parser.feed(page)
    return " ".join(" ".join(parser.parts).split()), parser.fragments


def visible_text(page):
    return read(page)[0]


PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|%[sdif]")


def english_patterns(code):
    """(msgid, regex) for each catalogue msgid of two or more words that `code` translates differently."""
    with (i18n.TRANSLATIONS / code / "LC_MESSAGES" / "messages.po").open("rb") as fp:
        catalogue = read_po(fp, locale=code)
    patterns = []
    for message in catalogue:
        for msgid, string in zip(
            message.id if isinstance(message.id, tuple) else (message.id,),
            message.string if isinstance(message.string, tuple) else (message.string,),
            strict=False,
        ):
            words = re.findall(r"[A-Za-z]{2,}", PLACEHOLDER.sub(" ", msgid))
            # A two-word fragment around a value ("%(lo)s or more") matches data as often as text.
            if len(words) < (3 if PLACEHOLDER.search(msgid) else 2) or not string or string == msgid:
                continue
            literal = [" ".join(part.split()) for part in PLACEHOLDER.split(msgid)]
            regex = r"\S*?".join(re.escape(part).replace(r"\ ", r"\s+") for part in literal)
            patterns.append((msgid, re.compile(r"(?<![A-Za-z])" + regex.strip() + r"(?![A-Za-z])")))
    return patterns


def _things(admin, secret):
    """One of each thing a page shows, beside the demo data; the URL arguments that name them."""
    from webapp.accounts.service import create_token
    from webapp.activation.links import Links
    from webapp.events.service import seed_demo_definitions
    from webapp.models import (
        Customer,
        CustomField,
        EventDefinition,
        EventType,
        ExportRun,
        ImportRun,
        Mailing,
        Notification,
        Segment,
        SegmentChange,
        Task,
        Trigger,
    )

    seed_demo_definitions(admin)
    segment = Segment.create(
        code="gym",
        name="Gym members",
        definition={"version": 1, "match": "all", "blocks": []},
        created_by=admin,
    )
    customer = Customer.select().order_by(Customer.id).first()
    customer.language = "ru"
    customer.save()
    token, _secret = create_token(admin, "CRM sync")
    export = ExportRun.create(user=admin, source={"segment": "gym"}, columns=["email"], status="done", rows_total=3)
    run = ImportRun.create(kind="customers", file_name="c.csv", file_path="/nowhere.csv", user=admin, status="done")
    trigger = Trigger.create(name="Welcome", segment=segment, created_by=admin)
    Task.create(customer=customer, assignee=admin, title="Call back", due_on=datetime.date.today())
    Notification.create(user=admin, message="Segment computed", link="/segments/gym")
    mailing = Mailing.select().order_by(Mailing.id).first()
    from webapp.accounts.service import create_user

    marketer = create_user("marketer@example.com", PASSWORD, role="marketer")
    exit_ = SegmentChange.create(segment=segment, customer=customer, change="exited", at=datetime.datetime.now())
    return {
        "user_id": [marketer.id],
        "change": ["deactivate", "reactivate"],
        "change_id": [exit_.id],
        "token_id": [token.id],
        "customer_id": [customer.id],
        "section": ["orders", "deals", "messages"],
        "type_id": [EventType.select().order_by(EventType.id).first().id],
        "definition_id": [EventDefinition.select().order_by(EventDefinition.id).first().id],
        "run_id": {"exports": export.id, "imports": run.id},
        "field_id": [CustomField.select().order_by(CustomField.id).first().id],
        "mailing_id": [mailing.id],
        "r": [1],
        "f": [1],
        "code": ["gym"],
        "day": [datetime.date.today().isoformat()],
        "kind": ["city", "tag", "pipeline", "stage", "product_group"],
        "trigger_id": [trigger.id],
        "token": [Links(secret, "").token("u", mailing.id, customer.id, "email")],  # the unsubscribe page
    }


@pytest.fixture(scope="module")
def site(tmp_path_factory, queue_server):
    url = f"sqlite:///{tmp_path_factory.mktemp('pages') / 'segmento.db'}"
    secret = "pages-" + uuid.uuid4().hex
    init_database(url)
    with database:
        upgrade()
        demo.generate(customers=120, seed=1)
        from webapp.accounts.service import create_user

        admin = create_user("scan@example.com", PASSWORD, role="admin")
        args = _things(admin, secret)
    app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": secret, "WTF_CSRF_ENABLED": False})
    client = app.test_client()
    response = client.post("/login", data={"email": "scan@example.com", "password": PASSWORD})
    assert response.status_code == 302
    yield app, client, args
    init_database(url)


def _urls(app, args):
    """Every GET page of the URL map with its arguments filled; and the rules nothing could fill."""
    urls, unfilled = [], []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in rule.methods or rule.endpoint in NOT_PAGES or rule.endpoint.startswith(NOT_PAGE_PREFIXES):
            continue
        if not all(name in args for name in rule.arguments):
            unfilled.append(rule.rule)
            continue
        choices = [{}]
        for name in sorted(rule.arguments):
            values = args[name]
            if isinstance(values, dict):  # the id of a run depends on the blueprint
                values = [values[rule.endpoint.split(".")[0]]]
            choices = [dict(c, **{name: v}) for c in choices for v in values]
        with app.test_request_context():
            from flask import url_for

            urls.extend((rule.endpoint, url_for(rule.endpoint, **c)) for c in choices)
    return urls, unfilled


@pytest.mark.sqlite_only
@pytest.mark.parametrize("code", ["ru", "vi"])
def test_no_english_on_any_page(site, code):
    app, client, args = site
    init_database(app.config["DATABASE_URL"])
    urls, unfilled = _urls(app, args)
    assert unfilled == [], "give these URL arguments a value in _things() or list the endpoint in NOT_PAGES"
    patterns = english_patterns(code)
    found, failed, seen = {}, [], set()
    queue = [(url, None) for _endpoint, url in urls]
    while queue:
        url, target = queue.pop(0)
        if (url, target) in seen:
            continue
        seen.add((url, target))
        headers = {"Accept-Language": code}
        if target is not None:
            headers.update({"HX-Request": "true", "HX-Target": target})
        response = client.get(url, headers=headers)
        if response.status_code >= 500 or response.status_code in (401, 403):
            failed.append(f"{url}: {response.status_code}")
            continue
        if not response.content_type.startswith("text/html"):
            continue
        text, fragments = read(response.get_data(as_text=True))
        queue.extend(fragments)
        for msgid, regex in patterns:
            if regex.search(text):
                found.setdefault(msgid, []).append(url)
    assert not failed, "\n".join(failed)
    report = [f"{msgid!r} on {', '.join(sorted(set(pages))[:3])}" for msgid, pages in sorted(found.items())]
    assert not report, f"{len(report)} English strings on {code} pages:\n" + "\n".join(report)


def test_the_scan_finds_english_text():
    patterns = english_patterns("ru")
    text = visible_text('<p title="Delete segment">Привет</p><script>"Save changes"</script><b>Recompute now</b>')
    found = sorted(msgid for msgid, regex in patterns if regex.search(text))
    assert "Recompute now" in found and "Save changes" not in found
    assert all(not regex.search(visible_text("<p>Пересчитать сейчас</p>")) for _msgid, regex in patterns)
