"""The import engine, shared by the web page (through the RQ job) and the CLI.

An import runs in three steps over the stored file:
1. check: read the header, resolve the column mapping, and read the whole
   file once (csv only, no database) to count its rows and find what makes it
   unreadable: wrong encoding, unclosed quote, empty, header only, a required
   column missing. Such a file fails here, before anything is written.
2. create the new custom fields the mapping asks for.
3. import: stream the rows in batches; each batch is parsed, its bad rows
   rejected with line, column and reason, the rest written by the kind's
   writer, and the run's counters updated, all in one transaction. A crash
   leaves whole batches only; running again is idempotent (upserts).

Cancelling is checked between batches: committed batches stay.
"""

import contextlib
import csv
import decimal
import logging
import os
import sqlite3
import tempfile
import time
from pathlib import Path

import peewee as pw

from .. import csvsafe
from ..db import database, is_postgres
from ..fields.service import CODE_RE, FieldError, create_field, get_field, infer_type, parse_value
from ..i18n import _, ngettext
from ..models import CUSTOM_TYPES, ImportRun, utcnow
from ..segments import changes
from ..sql import padded_key_chunks
from .kinds import KINDS, TEXT_MAX, WRITERS, SegmentDeleted, memo, text
from .reader import CsvStream, FileError, RecordError, read_header, sniff

log = logging.getLogger(__name__)

BATCH = 5000
SAMPLE_ROWS = 1000  # rows used to infer the type of a new custom field
PREVIEW_ROWS = 10
REPORT_LIMIT = 100  # rejected rows listed in the report (all are in the CSV)
NEW_FIELD_TYPES = tuple(t for t in CUSTOM_TYPES if t != "enum")  # an enum needs options


class Cancelled(Exception):
    pass


# What writing a row can raise that is about that row, not about the import:
# the database refusing it, or a value the driver cannot send.
ROW_ERRORS = (pw.DatabaseError, decimal.DecimalException, ValueError)


@contextlib.contextmanager
def bulk_session():
    """SQLite settings for this connection while it imports, put back after.

    - foreign_keys off: every reference an import writes was looked up (or
      created) in the same transaction, under the write lock, so the per-row
      parent lookups would only repeat that work; the import deletes only
      rows nothing references (order items, tags, custom values).
    """
    if is_postgres():
        yield
        return
    previous = {name: database.execute_sql(f"PRAGMA {name}").fetchone()[0] for name in ("foreign_keys",)}
    database.execute_sql("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        for name, value in previous.items():
            database.execute_sql(f"PRAGMA {name} = {int(value)}")


def write_transaction():
    """A batch's transaction. SQLite: take the write lock at BEGIN, so a write
    committed by the web app between our reads and writes makes us wait
    (busy_timeout) instead of failing."""
    return database.atomic() if is_postgres() else database.atomic("IMMEDIATE")


# --- columns and mapping -------------------------------------------------------


def normalize_header(name):
    """'External ID ' -> 'external_id'; 'custom.Age' -> 'custom.age'."""
    name = (name or "").replace("\ufeff", "").strip().casefold()
    if name.startswith("custom."):
        return "custom." + name[7:].strip().replace(" ", "_").replace("-", "_")
    return "_".join(name.replace("-", " ").split())


def auto_mapping(kind_name, header, sample_rows):
    """The default mapping of a file's columns, and notes about the columns left out.

    Returns ({"columns": [target or None per column], "new_fields": {code: {"type", "name"}}}, notes).
    """
    kind = KINDS[kind_name]
    known = kind.columns(None)
    columns, new_fields, notes, used = [], {}, [], set()
    if kind_name == "segment":
        columns = ["entry"] + [None] * (len(header) - 1)
        return {"columns": columns, "new_fields": {}}, notes
    for index, raw in enumerate(header):
        name = normalize_header(raw)
        target = None
        if name in known and name not in used:
            target = name
        elif name.startswith("custom.") and kind.entity:
            code = name[7:]
            if get_field(kind.entity, code):
                target = "custom." + code
            elif CODE_RE.match(code):
                target = "custom." + code
                samples = [row[index] for row in sample_rows if index < len(row)]
                new_fields[code] = {"type": infer_type(samples), "name": raw.strip()[7:].strip() or code}
            else:
                notes.append(
                    _(
                        "Column “%(c)s”: “%(code)s” is not a valid field code (a letter, then a-z, 0-9 "
                        "and _); it is ignored unless you map it.",
                        c=raw,
                        code=code,
                    )
                )
        elif name == "error":
            notes.append(_("Column “%(c)s” (the reason column of a rejected-rows file) is ignored.", c=raw))
        elif name in used:
            notes.append(_("Column “%(c)s” appears twice; the second one is ignored unless you map it.", c=raw))
        else:
            notes.append(
                _(
                    "Column “%(c)s” is not a column of a “%(kind)s” import; it is ignored unless you map it.",
                    c=raw,
                    kind=kind.label,
                )
            )
        if target:
            used.add(target)
        columns.append(target)
    return {"columns": columns, "new_fields": new_fields}, notes


def target_choices(kind_name):
    """[(target, label)] a column can be mapped to: the spec's columns and existing custom fields."""
    from ..fields.service import fields_for

    kind = KINDS[kind_name]
    choices = [(name, name) for name in kind.columns(None)]
    if kind.entity:
        choices += [("custom." + f.code, f"custom.{f.code} ({f.name})") for f in fields_for(kind.entity)]
    return choices


def mapping_problems(kind_name, header, mapping):
    """Messages for a mapping that cannot be imported (empty list when it can)."""
    kind = KINDS[kind_name]
    known = kind.columns(None)
    columns = mapping.get("columns") or []
    new_fields = mapping.get("new_fields") or {}
    problems = []
    if len(columns) != len(header):
        return [
            ngettext(
                "The mapping does not match the file's %(num)s column.",
                "The mapping does not match the file's %(num)s columns.",
                len(header),
            )
        ]
    seen = {}
    for index, target in enumerate(columns):
        if target is None:
            continue
        if target in seen:
            problems.append(
                _(
                    "Columns “%(a)s” and “%(b)s” are both mapped to %(t)s; map one of them to "
                    "something else or ignore it.",
                    a=header[seen[target]],
                    b=header[index],
                    t=target,
                )
            )
            continue
        seen[target] = index
        if target in known:
            continue
        if target.startswith("custom.") and kind.entity:
            code = target[7:]
            if get_field(kind.entity, code):
                continue
            spec = new_fields.get(code)
            if spec and CODE_RE.match(code) and spec.get("type") in NEW_FIELD_TYPES:
                continue
        problems.append(
            _(
                "Column “%(c)s”: “%(t)s” is not a field a “%(kind)s” import can fill.",
                c=header[index],
                t=target,
                kind=kind.label,
            )
        )
    for name in kind.required:
        if name not in seen:
            problems.append(
                _(
                    "The file has no “%(col)s” column, which a “%(kind)s” import needs. Columns found: %(found)s.",
                    col=name,
                    kind=kind.label,
                    found=", ".join(h for h in header) or "-",
                )
            )
    return problems


def inspect(path, kind_name, encoding=None, delimiter=None):
    """What the preview shows: encoding, delimiter, header, first rows, default
    mapping and notes. FileError when the file cannot be read."""
    if encoding is None or delimiter is None:
        encoding, delimiter = sniff(path)
    rows = []
    with CsvStream(path, encoding, delimiter) as stream:
        _line, header = read_header(stream)
        if kind_name == "segment" and not is_list_header(header):
            rows.append(header)
            header = [_("entry")] + [""] * (len(header) - 1)
        while len(rows) < SAMPLE_ROWS:
            try:
                _start, _end, cells = next(stream)
            except StopIteration:
                break
            except RecordError:
                continue
            rows.append(cells)
    if not rows:
        raise FileError(_("The file has a header row but no data rows."))
    mapping, notes = auto_mapping(kind_name, header, rows)
    return {
        "encoding": encoding,
        "delimiter": delimiter,
        "header": header,
        "rows": rows[:PREVIEW_ROWS],
        "mapping": mapping,
        "notes": notes,
        "problems": mapping_problems(kind_name, header, mapping),
    }


def is_list_header(header):
    return normalize_header(header[0]) in KINDS["segment"].HEADER_WORDS if header else False


# --- helpers -------------------------------------------------------------------

NUM_LIMIT = decimal.Decimal(10) ** 18  # custom_value.value_num is NUMERIC(24, 6)


def custom_value(field, raw):
    """A custom field's typed value from a cell, within what the database stores."""
    value = parse_value(field, raw)
    if field.type in ("integer", "decimal") and value is not None and abs(value) >= NUM_LIMIT:
        raise ValueError(_("“%(v)s” is too large (at most 18 digits before the decimal mark)", v=raw.strip()))
    return value


class Row:
    __slots__ = ("line", "end_line", "cells", "values")

    def __init__(self, line, end_line, cells, values=None):
        self.line = line
        self.end_line = end_line
        self.cells = cells
        self.values = values


class RowError(ValueError):
    def __init__(self, index, reason):
        super().__init__(reason)
        self.index = index
        self.reason = reason


class KeyTracker:
    """Keys already seen in this file (duplicate keys, order items already
    replaced), kept on disk in a scratch SQLite file so memory stays flat
    however many keys the file has. Its writes commit with the batch's."""

    def __init__(self, directory):
        for old in Path(directory).glob("keys-*.sqlite"):  # left by a killed process
            try:
                if old.stat().st_mtime < time.time() - 24 * 3600:
                    old.unlink()
            except OSError:
                pass
        fd, self.path = tempfile.mkstemp(prefix="keys-", suffix=".sqlite", dir=directory)
        os.close(fd)
        self.conn = sqlite3.connect(self.path, isolation_level=None)
        for pragma in ("journal_mode = MEMORY", "synchronous = OFF", "cache_size = -4000", "temp_store = FILE"):
            self.conn.execute("PRAGMA " + pragma)
        self.conn.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, line INTEGER) WITHOUT ROWID")
        self.conn.execute("BEGIN")

    def earlier(self, items):
        """{key: first line} for the keys of [(key, line)] recorded before; records the others."""
        found = {}
        keys = [k for k, _line in items]
        for chunk in padded_key_chunks(keys):
            found.update(
                self.conn.execute("SELECT key, line FROM seen WHERE key IN (%s)" % ", ".join("?" * len(chunk)), chunk)
            )
        self.conn.executemany(
            "INSERT OR IGNORE INTO seen VALUES (?, ?)", [(k, line) for k, line in items if k not in found]
        )
        return found

    def commit(self):
        self.conn.execute("COMMIT")
        self.conn.execute("BEGIN")

    def rollback(self):
        self.conn.execute("ROLLBACK")
        self.conn.execute("BEGIN")

    def close(self):
        try:
            self.conn.close()
        finally:
            try:
                os.unlink(self.path)
            except OSError:
                pass


class RejectedRows:
    """The rejected rows as a CSV file: the original columns plus `error`,
    in the file's delimiter, UTF-8 with BOM (Excel reads it), cells neutralised
    against formula injection. Created at the first rejected row."""

    def __init__(self, path, header, delimiter):
        self.path = Path(path)
        self.delimiter = delimiter or ","
        folded = [normalize_header(h) for h in header]
        if folded and folded[-1] == "error":  # re-importing our own file: reuse its error column
            self.header, self.width = list(header), len(header) - 1
        else:
            self.header, self.width = list(header) + ["error"], len(header)
        self.file = None
        self.writer = None

    def add(self, cells, message):
        if self.file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(self.path, "w", encoding="utf-8-sig", newline="")
            self.writer = csv.writer(self.file, delimiter=self.delimiter)
            self.writer.writerow(csvsafe.safe_row(self.header))
        cells = list(cells[: self.width]) + [""] * max(0, self.width - len(cells))
        self.writer.writerow(csvsafe.safe_row(cells + [message]))

    def flush(self):
        if self.file:
            self.file.flush()

    def close(self):
        if self.file:
            self.file.close()
            self.file = None

    @property
    def exists(self):
        return self.file is not None or self.path.exists()


def rejected_path_for(run, imports_dir):
    return str(Path(imports_dir) / f"run-{run.id}-rejected.csv")


# --- the engine ----------------------------------------------------------------


class Importer:
    """Runs one ImportRun to its end (done, failed or cancelled).

    `on_progress(run)` is called after each committed batch and during the
    check; `imports_dir` holds the rejected-rows CSV and scratch files.
    """

    def __init__(self, run, imports_dir, tz=None, on_progress=None, batch_size=BATCH):
        self.run = run
        self.kind = KINDS[run.kind]
        self.imports_dir = Path(imports_dir)
        self.tz = tz
        self.on_progress = on_progress or (lambda run: None)
        self.batch_size = batch_size
        self.header = []
        self.mapped = set()
        self.custom_targets = []
        self.converters = []
        self.required = []
        self.target_index = {}
        self.tracker = None
        self.rejected = None
        self.report = {}
        self.pending_rejections = []
        self.headless_first = None  # a list file without header: its first line is data

    # -- public --

    def execute(self):
        run = self.run
        self.imports_dir.mkdir(parents=True, exist_ok=True)
        self._start()
        # Without triggers: the entries and exits this import leads to are logged, but fire nothing.
        quiet = changes.quietly() if (run.options or {}).get("without_triggers") else contextlib.nullcontext()
        try:
            with quiet:
                self._check()
                self._import()
        except FileError as exc:
            self._finish("failed", error=exc.message)
        except Cancelled:
            self._finish("cancelled")
        except SegmentDeleted:  # the batch that found it out was rolled back
            self._finish(
                "failed",
                error=_("The segment was deleted while the list was being imported: nothing more was written."),
            )
        except KeyboardInterrupt:
            self._finish("cancelled")
            raise
        except Exception as exc:
            log.exception("import %s failed", run.id)
            self._finish(
                "failed",
                error=_(
                    "The import stopped on an unexpected error (%(kind)s). Rows in "
                    "batches committed before it stay imported; running it again is "
                    "safe.",
                    kind=type(exc).__name__,
                ),
            )
            raise
        finally:
            if self.tracker:
                self.tracker.close()
            if self.rejected:
                self.rejected.close()
        return run

    # -- steps --

    def _start(self):
        run = self.run
        now = utcnow()
        run.status, run.phase, run.started_at, run.finished_at, run.error = "running", "checking", now, None, None
        run.rows_done = run.rows_imported = run.rows_new = run.rows_updated = run.rows_rejected = 0
        run.rows_total = None
        run.bytes_done = 0
        run.bytes_total = os.path.getsize(run.file_path) if os.path.exists(run.file_path) else 0
        run.rejected_path = None
        self.report = {"rejections": [], "new_fields": [], "notes": []}
        run.report = self.report
        run.save()
        if os.path.exists(rejected_path_for(run, self.imports_dir)):
            os.unlink(rejected_path_for(run, self.imports_dir))

    def _check(self):
        """Step 1: everything that can fail without writing."""
        run = self.run
        if not os.path.exists(run.file_path):
            raise FileError(_("The uploaded file is no longer there; upload it again."))
        if not run.encoding or not run.delimiter:
            run.encoding, run.delimiter = sniff(run.file_path)
        count = 0
        self.clean = True  # no unparseable record anywhere: the import pass may read faster
        with CsvStream(run.file_path, run.encoding, run.delimiter) as stream:
            _line, header = read_header(stream)
            if run.kind == "segment" and not is_list_header(header):
                self.headless_first = header
                count += 1
                header = [_("entry")] + [""] * (len(header) - 1)
            self.header = header
            sample = []
            while True:
                try:
                    _start, _end, cells = next(stream)
                    if len(sample) < SAMPLE_ROWS:
                        sample.append(cells)
                except StopIteration:
                    break
                except RecordError:
                    self.clean = False
                count += 1
                if count % 20000 == 0:
                    self._progress_checking(stream.bytes_read)
        if count == 0:
            raise FileError(_("The file has a header row but no data rows: there is nothing to import."))
        if not run.mapping:
            mapping, notes = auto_mapping(run.kind, header, sample)
            run.mapping = mapping
            self.report["notes"] = notes
        problems = mapping_problems(run.kind, header, run.mapping)
        if problems:
            raise FileError(" ".join(problems))
        run.rows_total = count
        run.bytes_done = run.bytes_total
        run.save()

    def _progress_checking(self, bytes_read):
        run = self.run
        run.bytes_done = bytes_read
        ImportRun.update(bytes_done=bytes_read).where(ImportRun.id == run.id).execute()
        self._check_cancel()
        self.on_progress(run)

    def _check_cancel(self):
        flag = ImportRun.select(ImportRun.cancel_requested).where(ImportRun.id == self.run.id).scalar()
        if flag:
            raise Cancelled()

    def _setup_columns(self):
        """Step 2: new custom fields, and one converter per mapped column."""
        run = self.run
        columns = self.kind.columns(self.tz)
        mapping = run.mapping
        with database.atomic():
            for code, spec in sorted((mapping.get("new_fields") or {}).items()):
                if "custom." + code not in mapping["columns"] or get_field(self.kind.entity, code):
                    continue
                try:
                    create_field(self.kind.entity, code, spec.get("name") or code, spec["type"])
                except FieldError as exc:
                    raise FileError(_("Column custom.%(code)s: %(reason)s", code=code, reason=str(exc))) from None
                self.report["new_fields"].append({"code": code, "type": spec["type"]})
        for index, target in enumerate(mapping["columns"]):
            if target is None:
                continue
            self.target_index[target] = index
            self.mapped.add(target)
            if target in columns:
                self.converters.append((index, target, columns[target]))
            else:
                field = get_field(self.kind.entity, target[7:])
                self.custom_targets.append((target, field))
                self.converters.append((index, target, memo(lambda raw, f=field: custom_value(f, raw))))
        self.required = [(self.target_index[t], t) for t in self.kind.required]

    def _import(self):
        run = self.run
        self._setup_columns()
        self.tracker = KeyTracker(self.imports_dir)
        self.rejected = RejectedRows(rejected_path_for(run, self.imports_dir), self.header, run.delimiter)
        self.writer = WRITERS[run.kind](self)
        run.phase = "importing"
        self.report["import_started_at"] = utcnow().isoformat()
        run.save(only=[ImportRun.phase, ImportRun.report])
        self.on_progress(run)
        held = []
        with bulk_session(), CsvStream(run.file_path, run.encoding, run.delimiter, checked=self.clean) as stream:
            read_header(stream)
            batch = []
            if self.headless_first is not None:
                batch.append(Row(1, 1, self.headless_first))
            while True:
                try:
                    start, end, cells = next(stream)
                    batch.append(Row(start, end, cells))
                except StopIteration:
                    break
                except RecordError as exc:
                    batch.append(exc)
                if len(batch) >= self.batch_size:
                    held = self._batch(held, batch, stream.bytes_read)
                    batch = []
            held = self._batch(held, batch, stream.bytes_read, final=True)
        with write_transaction():
            self.writer.finish()
        self._finish("done")

    def _batch(self, held, batch, bytes_read, final=False):
        """Parse and write one batch in one transaction; returns the rows held for the next."""
        self._check_cancel()
        parsed = []
        for item in batch:
            if isinstance(item, RecordError):
                self._reject_record(item)
                continue
            row = self._parse(item)
            if row is not None:
                parsed.append(row)
        rows = held + parsed
        held = []
        if not final:
            rows, held = self.writer.hold_back(rows)
        mark = self._mark()
        try:
            with write_transaction():
                counts = self.writer.write(rows, final)
                self._count(counts, bytes_read)
        except ROW_ERRORS:
            # Something the checks let through (a constraint, a value the
            # database refuses): write the rows one by one, reject the bad one(s).
            self._undo(mark)
            self._one_by_one(rows, bytes_read)
        else:
            self.tracker.commit()
        self._flush_rejections()
        self.on_progress(self.run)
        return held

    def _one_by_one(self, rows, bytes_read):
        for row in rows:
            mark = self._mark()
            try:
                with write_transaction():
                    counts = self.writer.write([row], True)
                    self._count(counts, bytes_read)
            except ROW_ERRORS as exc:
                self._undo(mark)
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                self.reject(row, None, _("the database refused this row (%(reason)s)", reason=reason[:200]))
                with write_transaction():
                    self._count((0, 0, 0), bytes_read)
            self.tracker.commit()

    def _mark(self):
        run = self.run
        return (
            run.rows_done,
            run.rows_rejected,
            run.rows_new,
            run.rows_updated,
            run.rows_imported,
            len(self.pending_rejections),
        )

    def _undo(self, mark):
        """Forget what a rolled-back attempt did: its counts, rejections, cached ids and seen keys."""
        run = self.run
        (run.rows_done, run.rows_rejected, run.rows_new, run.rows_updated, run.rows_imported, pending) = mark
        del self.pending_rejections[pending:]
        self.tracker.rollback()
        self.writer.reset()

    def _parse(self, row):
        cells = row.cells
        width = len(self.header)
        if len(cells) != width:
            if len(cells) < width:
                reason = _(
                    "the row has %(n)s values but the header has %(m)s columns (is the row cut short?)",
                    n=len(cells),
                    m=width,
                )
                if row.end_line > row.line:
                    reason += " " + _("It spans lines %(a)s–%(b)s: a quote may be missing.", a=row.line, b=row.end_line)
                self._reject_cells(row, None, reason)
                return None
            if any(c.strip() for c in cells[width:]):
                reason = _("the row has %(n)s values but the header has %(m)s columns", n=len(cells), m=width)
                if row.end_line > row.line:
                    reason += " " + _("It spans lines %(a)s–%(b)s: a quote may be missing.", a=row.line, b=row.end_line)
                self._reject_cells(row, None, reason)
                return None
        values = {}
        try:
            for index, target, convert in self.converters:
                raw = cells[index]
                if raw and raw[0] == "'":
                    raw = csvsafe.restore(raw)
                if convert is text:  # the commonest column, inlined: this loop runs for every cell
                    value = raw.strip() or None
                    if value is not None and len(value) > TEXT_MAX:
                        raise RowError(
                            index,
                            _("the value is %(n)s characters long; at most %(max)s fit", n=len(value), max=TEXT_MAX),
                        )
                    values[target] = value
                    continue
                try:
                    values[target] = convert(raw)
                except ValueError as exc:
                    raise RowError(index, str(exc)) from None
            for index, target in self.required:
                if values[target] is None:
                    raise RowError(index, _("a value is required"))
        except RowError as exc:
            self._reject_cells(row, exc.index, exc.reason)
            return None
        row.values = values
        return row

    # -- rejections and counters --

    def _where(self, line, index):
        column = self.header[index] if index is not None and index < len(self.header) else None
        return line, column

    def _reject_cells(self, row, index, reason):
        line, column = self._where(row.line, index)
        self._record_rejection(row.cells, line, column, reason)
        self.run.rows_rejected += 1
        self.run.rows_done += 1

    def _reject_record(self, exc):
        line, column = self._where(exc.line, exc.column_index)
        self._record_rejection([], line, column, exc.message)
        self.run.rows_rejected += 1
        self.run.rows_done += 1

    def reject(self, row, target, reason):
        """Called by writers for a row whose references do not resolve."""
        self._reject_cells(row, self.target_index.get(target), reason)

    def _record_rejection(self, cells, line, column, reason):
        if column:
            message = _("line %(line)s, column %(col)s: %(reason)s", line=line, col=column, reason=reason)
        else:
            message = _("line %(line)s: %(reason)s", line=line, reason=reason)
        self.pending_rejections.append((cells, message, {"line": line, "column": column or "", "reason": reason}))

    def _flush_rejections(self):
        """Write the batch's rejected rows (after its transaction, so a retried
        batch does not list a row twice)."""
        self.pending_rejections.sort(key=lambda item: item[2]["line"])
        for cells, message, entry in self.pending_rejections:
            self.rejected.add(cells, message)
            if len(self.report["rejections"]) < REPORT_LIMIT:
                self.report["rejections"].append(entry)
        if self.pending_rejections:
            self.pending_rejections = []
            self.rejected.flush()
            self.run.rejected_path = str(self.rejected.path)
            self.run.report = self.report
            self.run.save(only=[ImportRun.rejected_path, ImportRun.report])

    def _count(self, counts, bytes_read):
        """Add a batch's counts and store them with the batch (inside its transaction)."""
        run = self.run
        new, updated, unchanged = counts
        run.rows_new += new
        run.rows_updated += updated
        run.rows_imported += new + updated + unchanged
        run.rows_done += new + updated + unchanged
        run.bytes_done = bytes_read
        run.report = self.report
        run.save(
            only=[
                ImportRun.rows_new,
                ImportRun.rows_updated,
                ImportRun.rows_imported,
                ImportRun.rows_done,
                ImportRun.rows_rejected,
                ImportRun.bytes_done,
                ImportRun.report,
            ]
        )

    def _finish(self, status, error=None):
        run = self.run
        run.status, run.phase, run.error, run.finished_at = status, None, error, utcnow()
        if run.rows_rejected and self.rejected and self.rejected.exists:
            run.rejected_path = str(self.rejected.path)
        run.report = self.report
        run.cancel_requested = False
        # not the references: the run's segment or user may have been deleted
        # meanwhile (the database set them to null), and saving the ids read at
        # the start would break the foreign key and lose the outcome
        run.save(only=[f for f in type(run)._meta.sorted_fields if not isinstance(f, pw.ForeignKeyField)])
        self.on_progress(run)


def rate_and_eta(run, now=None):
    """(rows per second, seconds left) of a running import, or (None, None)."""
    started = (run.report or {}).get("import_started_at")
    if run.status != "running" or run.phase != "importing" or not started or not run.rows_done:
        return None, None
    import datetime

    elapsed = ((now or utcnow()) - datetime.datetime.fromisoformat(started)).total_seconds()
    if elapsed <= 0:
        return None, None
    rate = run.rows_done / elapsed
    left = max(0, (run.rows_total or 0) - run.rows_done)
    return rate, (left / rate if rate else None)
