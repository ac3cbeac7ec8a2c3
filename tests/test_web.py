"""The web toolkit every blueprint shares (webapp.web), on a bare Flask app."""

import datetime
import types

import pytest
from flask import Flask, g, render_template_string
from werkzeug.exceptions import Forbidden

from webapp import web


@pytest.fixture
def bare():
    app = Flask(__name__)
    app.config.update(TZ="Europe/Moscow", SECRET_KEY="test")
    web.init_app(app)

    @app.route("/things/<int:thing_id>")
    def things(thing_id):
        return ""

    return app


def test_every_app_wide_filter_and_global_comes_from_init_app(bare):
    for name in ("money", "thousands", "local_time", "custom_value", "duration", "label"):
        assert name in bare.jinja_env.filters, name
    with bare.test_request_context("/things/7?q=ири&offset=40&page=2"):
        html = render_template_string(
            "{{ 123456 | money }} {{ 1234 | thousands }} {{ when | local_time }} {{ 90 | duration }} "
            "{{ 'company' | label }} {{ none | custom_value }} {{ page_url(3) }}",
            when=datetime.datetime(2024, 7, 1, 12, 0),
        )
    assert html == ("$1,234.56 1,234 2024-07-01 15:00 1 min 30 s Company — /things/7?q=%D0%B8%D1%80%D0%B8&amp;page=3")


@pytest.mark.parametrize(
    "raw, expected",
    [
        (None, 1),
        ("5", 5),
        ("abc", 1),
        ("", 1),
        ("-5", 1),
        ("0", 1),
        ("1e3", 1),
        ("99999999999999999999999999", 10**9),
    ],
)
def test_int_arg_is_a_whole_number_in_range_or_the_default(bare, raw, expected):
    query = {} if raw is None else {"page": raw}
    with bare.test_request_context("/", query_string=query):
        assert web.int_arg("page") == expected
    with bare.test_request_context("/", query_string={"offset": "-1"}):
        assert web.int_arg("offset", 0, minimum=0) == 0


def test_safe_path_allows_only_paths_on_this_site():
    assert web.safe_path("/segments/?page=2") == "/segments/?page=2"
    for target in (None, "", "//evil.example/x", "https://evil.example/", "javascript:alert(1)"):
        assert web.safe_path(target) is None, target


def test_roles(bare):
    view = web.role_required(*web.EDITORS)(lambda: "ok")
    with bare.test_request_context("/"):
        for role, allowed in (("admin", True), ("marketer", True), ("manager", False), (None, False)):
            g.user = types.SimpleNamespace(role=role) if role else None
            assert web.can_edit() is allowed
            if allowed:
                assert view() == "ok"
            else:
                with pytest.raises(Forbidden):
                    view()
