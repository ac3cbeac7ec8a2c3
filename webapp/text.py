"""Text folding for case-insensitive comparison in every alphabet.

SQLite's lower() folds ASCII only and PostgreSQL's depends on the collation,
so filterable strings keep a folded shadow column (`<name>_ci`) filled here,
and filter values are folded the same way before they reach SQL.
"""


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
