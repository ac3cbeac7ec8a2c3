"""The ru and vi catalogues: complete, not fuzzy, placeholders as in the msgid (issue 15)."""

import re

import pytest
from babel.messages.pofile import read_po

from webapp import i18n

PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[#0 +-]*\d*(?:\.\d+)?([sdifr%])")


def placeholders(text):
    """The named and positional placeholders of `text` ('%%' is a literal percent sign)."""
    return sorted(f"{name}:{kind}" if name else kind for name, kind in PLACEHOLDER.findall(text) if kind != "%")


def catalogue(code):
    with (i18n.TRANSLATIONS / code / "LC_MESSAGES" / "messages.po").open("rb") as fp:
        return read_po(fp, locale=code)


def problems(code):
    """Every untranslated, fuzzy or misplaced-placeholder message of the `code` catalogue, described."""
    found = []
    for message in catalogue(code):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        label = repr(ids[0]) + (f" (context {message.context!r})" if message.context else "")
        if message.fuzzy:
            found.append(f"fuzzy: {label}")
        if not all(strings):
            found.append(f"untranslated: {label}")
            continue
        allowed = [placeholders(i) for i in ids]
        for string in strings:
            if placeholders(string) not in allowed:
                found.append(f"placeholders {placeholders(string)} in {string!r}, msgid has {allowed[-1]}: {label}")
    return found


@pytest.mark.parametrize("code", ["ru", "vi"])
def test_every_message_is_translated_with_its_placeholders(code):
    assert problems(code) == []


@pytest.mark.parametrize("code", ["ru", "vi"])
def test_the_catalogue_has_every_extracted_message(code):
    with (i18n.TRANSLATIONS / "messages.pot").open("rb") as fp:
        template = {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in read_po(fp) if m.id}
    present = {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in catalogue(code) if m.id}
    assert sorted(template - present, key=str) == []


def test_the_check_finds_each_kind_of_problem(tmp_path, monkeypatch):
    po = tmp_path / "xx" / "LC_MESSAGES" / "messages.po"
    po.parent.mkdir(parents=True)
    po.write_text(
        'msgid ""\nmsgstr ""\n"Language: ru\\n"\n"Plural-Forms: nplurals=3; plural=(n%10==1 && n%100!=11 ? 0 : 1);\\n"\n\n'
        'msgid "Empty"\nmsgstr ""\n\n'
        '#, fuzzy\nmsgid "Guess"\nmsgstr "Догадка"\n\n'
        'msgid "Hello %(name)s"\nmsgstr "Привет, %(who)s"\n\n'
        'msgid "%(num)s customer"\nmsgid_plural "%(num)s customers"\nmsgstr[0] "%(num)s клиент"\n'
        'msgstr[1] "клиента"\nmsgstr[2] "%(num)s клиентов"\n\n'
        'msgid "Fine %(n)s"\nmsgstr "Хорошо %(n)s"\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(i18n, "TRANSLATIONS", tmp_path)
    found = problems("xx")
    assert [line.split()[0].rstrip(":") for line in found] == ["untranslated", "fuzzy", "placeholders", "placeholders"]
    assert "'Hello %(name)s'" in found[2] and "клиента" in found[3]
