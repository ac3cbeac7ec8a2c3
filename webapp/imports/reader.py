"""Reading CSV files people actually have: encoding and delimiter detection,
streaming records with line numbers, and clear messages for broken files.

Accepted: UTF-8 with or without BOM, UTF-16 (with BOM, or detected from its
zero bytes), Windows-1251 (Russian Excel exports); delimiters , ; tab |.
Records are streamed: memory does not grow with the file. A physical line
longer than MAX_LINE characters is skipped (reported for that line), so one
huge line cannot exhaust memory either.

`FileError` means the file cannot be read at all (nothing is imported);
`RecordError` is one bad record (reported, the rest continues).
"""

import codecs
import csv
import io
import re

from ..i18n import _
from ..i18n import lazy_gettext as _l

MAX_LINE = 1_000_000  # characters in one physical line (and in one value)
SAMPLE_BYTES = 256 * 1024
DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": _l("comma"), ";": _l("semicolon"), "\t": _l("tab"), "|": _l("vertical bar")}
ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": _l("UTF-8 (with BOM)"),
    "utf-16": "UTF-16",
    "utf-16-le": "UTF-16 LE",
    "utf-16-be": "UTF-16 BE",
    "cp1251": "Windows-1251",
}

csv.field_size_limit(MAX_LINE)

_CYRILLIC = re.compile(r"[А-Яа-яЁё]")
_LATIN = re.compile(r"[A-Za-z]")
_WORD = re.compile(r"\w+")


class FileError(ValueError):
    """The file cannot be read at all; `line` and `column` locate the problem when known."""

    def __init__(self, message, line=None, column=None):
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    def __str__(self):
        return self.message


class RecordError(ValueError):
    """One record that cannot be parsed into cells (the rest of the file goes on)."""

    def __init__(self, line, message, column_index=None, end_line=None):
        super().__init__(message)
        self.line = line
        self.end_line = end_line or line
        self.message = message
        self.column_index = column_index


def delimiter_label(delimiter):
    return str(DELIMITER_NAMES.get(delimiter, delimiter))


def encoding_label(encoding):
    return str(ENCODING_LABELS.get(encoding, encoding))


# --- detection ---------------------------------------------------------------


def _binary_kind(head):
    if head.startswith(b"PK\x03\x04"):
        return _("an Excel workbook or another zip archive")
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        return _("an old Excel (.xls) workbook")
    if head.startswith(b"\x1f\x8b"):
        return _("a gzip archive")
    if head.startswith(b"%PDF"):
        return _("a PDF document")
    return None


def _looks_like_utf16(head):
    """UTF-16 without a BOM: text whose every other byte is zero."""
    sample = head[:4096]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.6 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.6 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _plausible_cp1251(text):
    """Windows-1251 decodes any byte; accept it only when the result reads as
    Russian: letters outside ASCII are Cyrillic, words are not a mix of Latin
    and Cyrillic letters (what Latin-1 accents decoded as 1251 look like), and
    there are no control characters."""
    if any(ord(ch) < 32 and ch not in "\t\r\n" for ch in text):
        return False
    words = [w for w in _WORD.findall(text) if _CYRILLIC.search(w)]
    if not words:
        return False
    mixed = sum(1 for w in words if _LATIN.search(w))
    non_ascii_letters = [ch for ch in text if ord(ch) > 127 and ch.isalpha()]
    cyrillic = sum(1 for ch in non_ascii_letters if _CYRILLIC.match(ch))
    return mixed <= 0.1 * len(words) and cyrillic >= 0.9 * len(non_ascii_letters)


def detect_encoding(head):
    """The codec for a file from its first bytes; FileError when it is not text we read."""
    if not head.strip(b" \t\r\n\xef\xbb\xbf"):
        raise FileError(_("The file is empty."))
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    kind = _binary_kind(head)
    if kind:
        raise FileError(_("This is %(kind)s, not a CSV file. Save it as CSV (UTF-8) and upload that.", kind=kind))
    utf16 = _looks_like_utf16(head)
    if utf16:
        return utf16
    if b"\x00" in head:
        raise FileError(_("The file contains binary data (zero bytes): it is not a CSV text file."))
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return "utf-8"
    except UnicodeDecodeError as exc:
        utf8_error = exc
    try:
        text = head.decode("cp1251")
    except UnicodeDecodeError:
        text = None
    if text is not None and _plausible_cp1251(text):
        return "cp1251"
    line = head[: utf8_error.start].count(b"\n") + 1
    column = utf8_error.start - (head.rfind(b"\n", 0, utf8_error.start) + 1) + 1
    raise FileError(
        _(
            "Line %(line)s, character %(col)s: byte 0x%(byte)02X is not valid UTF-8, and the file is not "
            "Windows-1251 or UTF-16 either. Save it as CSV UTF-8 and upload it again.",
            line=line,
            col=column,
            byte=head[utf8_error.start],
        ),
        line=line,
    )


def _field_counts(text, delimiter, limit=50):
    counts = []
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        for row in reader:
            if row:
                counts.append(len(row))
            if len(counts) >= limit:
                break
    except csv.Error:
        pass
    return counts


def sniff_delimiter(text):
    """The delimiter that splits the header and the first rows into the same
    number of columns (most columns wins; comma when nothing splits)."""
    # The last line of a sample may be cut: leave it out when there are others.
    if "\n" in text.rstrip("\r\n"):
        text = text[: text.rstrip("\r\n").rfind("\n") + 1]
    best, best_score = ",", (0, 0)
    for delimiter in DELIMITERS:
        counts = _field_counts(text, delimiter)
        if not counts or counts[0] < 2:
            continue
        header = counts[0]
        consistent = sum(1 for c in counts[1:] if c == header)
        score = (consistent + 1 if len(counts) == 1 else consistent, header)
        if len(counts) > 1 and consistent == 0:
            continue
        if score > best_score:
            best, best_score = delimiter, score
    return best


def sniff(path):
    """(encoding, delimiter) of the file at `path`; FileError if it is not readable text."""
    with open(path, "rb") as f:
        head = f.read(SAMPLE_BYTES)
    encoding = detect_encoding(head)
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head, final=False)
    return encoding, sniff_delimiter(text)


# --- streaming -----------------------------------------------------------------


class LineTooLong(Exception):
    def __init__(self, line, length):
        super().__init__(line)
        self.line = line
        self.length = length


class LineHasNul(Exception):
    def __init__(self, line):
        super().__init__(line)
        self.line = line


class _Lines:
    """Physical lines of a text stream, counted, each at most MAX_LINE characters.

    An iterator class (not a generator) so that csv.reader can be resumed
    after it raises LineTooLong for one line.
    """

    def __init__(self, text):
        self.text = text
        self.line_no = 0
        self.first_of_record = None  # text of the first line of the current record

    def __iter__(self):
        return self

    def __next__(self):
        line = self.text.readline(MAX_LINE + 1)
        if not line:
            raise StopIteration
        self.line_no += 1
        if len(line) > MAX_LINE and not line.endswith(("\n", "\r")):
            length = len(line)
            while True:  # skip the rest of this physical line
                more = self.text.readline(MAX_LINE)
                length += len(more.rstrip("\r\n"))
                if not more or more.endswith(("\n", "\r")):
                    break
            raise LineTooLong(self.line_no, length)
        if self.first_of_record is None:
            self.first_of_record = line[:10000]
        if "\x00" in line:  # no database stores NUL in text; it means binary data
            raise LineHasNul(self.line_no)
        return line


def quote_column(line, delimiter):
    """0-based index of the field on `line` whose quoting is broken: a quote
    opened and not closed, or text after a closing quote. None if none is."""
    field, state, opened = 0, "start", None  # state: start | plain | quoted | closed
    for ch in line:
        if state == "quoted":
            if ch == '"':
                state = "closed"
            continue
        if state == "closed":
            if ch == '"':
                state = "quoted"  # a doubled quote inside the value
                continue
            if ch == delimiter:
                field, state = field + 1, "start"
                continue
            if ch in "\r\n":
                break
            return field
        if ch == delimiter:
            field, state = field + 1, "start"
        elif state == "start" and ch == '"':
            state, opened = "quoted", field
        else:
            state = "plain"
    return opened if state == "quoted" else None


class CsvStream:
    """Records of a CSV file as (line, cells), streamed.

    Iterating yields `(line, end_line, cells)` for each non-blank record, or
    raises RecordError for one unparseable record (iterate again to go on) and
    FileError when the rest of the file cannot be read (unclosed quote,
    encoding error). `bytes_read` tells how far into the file we are.
    """

    def __init__(self, path, encoding, delimiter, checked=False):
        """`checked`: the whole file was read before without a single bad
        record, so lines can go straight from the file to the csv reader
        (no length or NUL guard: a little faster for big files)."""
        self.path = path
        self.encoding = encoding
        self.delimiter = delimiter
        self.raw = open(path, "rb")
        self.text = io.TextIOWrapper(self.raw, encoding=encoding, newline="", errors="strict")
        self.lines = _Lines(self.text)
        self.checked = checked
        self.reader = csv.reader(self.text if checked else self.lines, delimiter=delimiter, strict=True)
        self.header = None  # set by read_header(), names columns in messages

    def close(self):
        self.text.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def bytes_read(self):
        try:
            return self.raw.tell()
        except (ValueError, OSError):
            return 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.checked:
            return self._next_checked()
        while True:
            lines = self.lines
            lines.first_of_record = None
            start = lines.line_no + 1
            try:
                cells = next(self.reader)
            except StopIteration:
                raise
            except LineTooLong as exc:
                raise RecordError(
                    exc.line,
                    _(
                        "the line is %(size)s characters long (at most %(max)s are read); it was skipped",
                        size=f"{exc.length:,}",
                        max=f"{MAX_LINE:,}",
                    ),
                ) from None
            except LineHasNul as exc:
                raise RecordError(
                    exc.line, _("the line contains a NUL character (binary data?); it was skipped")
                ) from None
            except UnicodeDecodeError:
                raise self._decode_error() from None
            except csv.Error as exc:
                raise self._csv_error(exc, start) from None
            if not any(cells) or (len(cells) == 1 and not cells[0].strip()):
                continue  # blank line, or only delimiters
            return start, lines.line_no, cells

    def _next_checked(self):
        reader = self.reader
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader)
            except UnicodeDecodeError:
                raise self._decode_error() from None
            except csv.Error as exc:  # the file changed since it was checked
                raise self._csv_error(exc, start) from None
            if not any(cells) or (len(cells) == 1 and not cells[0].strip()):
                continue
            return start, reader.line_num, cells

    def _csv_error(self, exc, start):
        text = self.lines.first_of_record or ""
        column = quote_column(text, self.delimiter)
        message = str(exc)
        if "unexpected end of data" in message or "field larger than field limit" in message:
            where = _("Line %(line)s", line=start)
            if column is not None and self.header and column < len(self.header):
                where = _("Line %(line)s, column %(col)s", line=start, col=self.header[column])
            raise FileError(
                _(
                    "%(where)s: a quoted value opens here and its closing quote is never found "
                    "(the file may be cut short, or a quote is missing). Fix the file and upload it again; "
                    "nothing was imported.",
                    where=where,
                ),
                line=start,
                column=column,
            )
        if "expected after" in message:
            reason = _('text follows a closing quote (a quote inside a quoted value must be doubled: "")')
        elif "new-line character seen in unquoted field" in message:
            reason = _("a line break inside a value that is not quoted")
        else:
            reason = message
        return RecordError(start, reason, column_index=column, end_line=self.lines.line_no)

    def _decode_error(self):
        line, column = locate_decode_error(self.path, self.encoding)
        return FileError(
            _(
                "Line %(line)s, character %(col)s: the bytes there are not valid %(enc)s text (the file mixes "
                "encodings?). Save it as CSV UTF-8 and upload it again; nothing was imported.",
                line=line,
                col=column,
                enc=encoding_label(self.encoding),
            ),
            line=line,
        )


def locate_decode_error(path, encoding, chunk=1 << 20):
    """(line, character) of the first byte sequence that does not decode."""
    decoder = codecs.getincrementaldecoder(encoding)()
    line, column = 1, 1
    with open(path, "rb") as f:
        while True:
            data = f.read(chunk)
            try:
                text = decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                # Decode what came before the bad byte to count its lines.
                good = codecs.decode(exc.object[: exc.start], encoding, errors="replace")
                text, data = good, b""
                line += text.count("\n")
                column = (len(text) - text.rfind("\n")) if "\n" in text else column + len(text)
                return line, column
            line += text.count("\n")
            column = (len(text) - text.rfind("\n")) if "\n" in text else column + len(text)
            if not data:
                return line, column


def read_header(stream):
    """The header cells of a stream (first non-blank record); FileError when missing or unreadable."""
    try:
        line, _end, cells = next(stream)
    except StopIteration:
        raise FileError(_("The file is empty.")) from None
    except RecordError as exc:
        raise FileError(
            _("Line %(line)s (the header row): %(reason)s.", line=exc.line, reason=exc.message), line=exc.line
        ) from None
    stream.header = cells
    return line, cells
