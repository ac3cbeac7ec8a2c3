"""Text folding for case-insensitive comparison in every alphabet.

SQLite's lower() folds ASCII only and PostgreSQL's depends on the collation,
so filterable strings keep a folded shadow column (`<name>_ci`) filled here,
and filter values are folded the same way before they reach SQL.

`translit` and `slug` turn names in any of our alphabets into ASCII for codes
and demo email addresses: Cyrillic by a fixed table, Vietnamese and other
Latin letters without their marks.
"""

import re
import unicodedata

_CYRILLIC = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюяіїєґ",
        [
            "a",
            "b",
            "v",
            "g",
            "d",
            "e",
            "e",
            "zh",
            "z",
            "i",
            "y",
            "k",
            "l",
            "m",
            "n",
            "o",
            "p",
            "r",
            "s",
            "t",
            "u",
            "f",
            "kh",
            "ts",
            "ch",
            "sh",
            "shch",
            "",
            "y",
            "",
            "e",
            "yu",
            "ya",
            "i",
            "yi",
            "ye",
            "g",
        ],
    )
)
_CYRILLIC["đ"] = "d"  # Vietnamese đ has no decomposition


def fold(value):
    """Trimmed, case-folded text; None and blank strings become None."""
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    return value.casefold()


def like_escape(value):
    """Escape LIKE wildcards so user text matches literally (ESCAPE '\\')."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def translit(value):
    """Lower-case ASCII for `value`: "Nguyễn Đức" -> "nguyen duc", "Щука" -> "shchuka".

    Characters with no ASCII form (CJK, emoji...) are dropped.
    """
    text = "".join(_CYRILLIC.get(ch, ch) for ch in (value or "").casefold())
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def slug(value, limit=63):
    """A code from a name: "Любимое направление" -> "lyubimoe_napravlenie"."""
    return re.sub(r"[^a-z0-9]+", "_", translit(value)).strip("_")[:limit]
