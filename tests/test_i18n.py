"""Which language a page speaks: the user's choice, then Accept-Language, then DEFAULT_LANGUAGE (issue 15)."""

import pytest

from tests.conftest import csrf_from
from webapp import i18n
from webapp.models import User


def test_login_and_setup_follow_accept_language(client):
    setup = client.get("/setup", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"}).get_data(as_text=True)
    assert '<html lang="ru">' in setup and "Создайте первого администратора" in setup
    setup = client.get("/setup", headers={"Accept-Language": "vi"}).get_data(as_text=True)
    assert '<html lang="vi">' in setup and "Mật khẩu" in setup
    setup = client.get("/setup", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert '<html lang="en">' in setup and "Password" in setup


def test_default_language_when_the_browser_names_none_we_speak(client, app):
    app.config["DEFAULT_LANGUAGE"] = "ru"
    page = client.get("/setup", headers={"Accept-Language": "de-DE"}).get_data(as_text=True)
    assert '<html lang="ru">' in page and "Пароль" in page


def test_the_users_choice_wins_over_the_browser(auth_client, app):
    page = auth_client.get("/account/language", headers={"Accept-Language": "vi"}).get_data(as_text=True)
    assert "Ngôn ngữ" in page
    response = auth_client.post(
        "/account/language", data={"language": "ru", "csrf_token": csrf_from(page)}, headers={"Accept-Language": "vi"}
    )
    assert response.status_code == 302
    assert User.get().language == "ru"
    page = auth_client.get("/account/language", headers={"Accept-Language": "vi"}).get_data(as_text=True)
    assert '<html lang="ru">' in page and "Язык сохранён." in page
    # Back to the browser's choice.
    auth_client.post("/account/language", data={"language": "", "csrf_token": csrf_from(page)})
    assert User.get().language is None
    assert '<html lang="vi">' in auth_client.get("/", headers={"Accept-Language": "vi"}).get_data(as_text=True)


def test_a_language_segmento_does_not_speak_is_refused(auth_client):
    page = auth_client.get("/account/language").get_data(as_text=True)
    response = auth_client.post("/account/language", data={"language": "de", "csrf_token": csrf_from(page)})
    assert response.status_code == 200 and User.get().language is None


def test_plurals_contexts_and_lazy_strings_outside_a_request():
    with i18n.language("ru"):
        assert [i18n.ngettext("%(num)s customer", "%(num)s customers", n) for n in (1, 2, 5, 21)] == [
            "1 клиент",
            "2 клиента",
            "5 клиентов",
            "21 клиент",
        ]
    lazy = i18n.lazy_gettext("Password")
    with i18n.language("vi"):
        assert str(lazy) == "Mật khẩu"
    with i18n.language("ru"):
        assert str(lazy) == "Пароль"
    with i18n.language("xx"):
        assert i18n.current_language() == "en"


@pytest.mark.parametrize("code", ["ru", "vi"])
def test_a_stale_compiled_catalogue_is_not_used(code, tmp_path, monkeypatch):
    # A fresh clone has no .mo: the .po is read.
    folder = tmp_path / code / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "messages.po").write_bytes((i18n.TRANSLATIONS / code / "LC_MESSAGES" / "messages.po").read_bytes())
    monkeypatch.setattr(i18n, "TRANSLATIONS", tmp_path)
    monkeypatch.setattr(i18n, "_catalogues", {})
    with i18n.language(code):
        assert i18n._("Password") != "Password"


def test_signed_in_without_accept_language_pages_speak_the_default(auth_client, app):
    """The request's language is worked out once (a page asks ~200 times), the
    default included: every string of the page follows it."""
    app.config["DEFAULT_LANGUAGE"] = "vi"
    page = auth_client.get("/customers/").get_data(as_text=True)
    assert '<html lang="vi">' in page and "Khách hàng" in page and "Customers" not in page
