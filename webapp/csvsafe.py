"""CSV cells that spreadsheet programs will not run as formulas.

A cell that starts with = + - @ (or a tab or carriage return) is a formula to
Excel and LibreOffice; a CSV we write could then run code on the reader's
machine (OWASP "CSV injection"). We store what users import as given, and
neutralise cells only in the CSV files we write: such a cell gets a leading
apostrophe. Plain numbers and phone numbers ("-5", "+7 (999) 123-45-67")
cannot call anything and are left as they are, so they re-import unchanged.

`restore()` undoes `neutralise()`, so a file we wrote imports back to the
original values.
"""

import re

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Sign followed only by digits, spaces, and number/phone punctuation.
_NUMBERISH = re.compile(r"^[+-][0-9 ().,/\-]*$")


def neutralise(value):
    """The cell text to write: prefixed with ' when a spreadsheet would run it."""
    if value is None:
        return ""
    text = str(value)
    if not text or not text.startswith(_TRIGGERS):
        return text
    if text[0] in "+-" and _NUMBERISH.match(text):
        return text
    return "'" + text


def restore(text):
    """The original cell text of a cell written by neutralise()."""
    if text and len(text) > 1 and text[0] == "'" and text[1] in "=+-@\t\r":
        return text[1:]
    return text


def safe_row(values):
    return [neutralise(v) for v in values]
