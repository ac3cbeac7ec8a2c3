"""The API docs page for people (/api/docs): its prose in the reader's language (issue 15)."""

from webapp.api.docs import translated
from webapp.api.docs_prose import PROSE
from webapp.api.openapi import document
from webapp.i18n import language


def _prose(node, found):
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("description", "summary") and isinstance(value, str):
                found.add(value)
            elif key == "tags" and isinstance(value, list):
                found.update(tag["name"] if isinstance(tag, dict) else tag for tag in value)
            else:
                _prose(value, found)
    elif isinstance(node, list):
        for item in node:
            _prose(item, found)
    return found


def test_every_sentence_of_the_openapi_document_is_in_the_catalogue_list():
    assert sorted(_prose(document(), set()) - PROSE) == []


def test_the_page_is_translated_and_the_document_is_not(auth_client):
    page = auth_client.get("/api/docs", headers={"Accept-Language": "ru"}).get_data(as_text=True)
    assert "Сегменты" in page and "All segments" not in page
    with language("vi"):
        assert translated(document())["paths"] != document()["paths"]
    assert "All segments" in auth_client.get("/api/v1/openapi.json").get_data(as_text=True)
