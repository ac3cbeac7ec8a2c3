"""Export of customers to CSV or XLSX: a segment's members or the customer
list as filtered, with the columns the user picks.

Flask-free. The rows come from one SELECT (customer columns, the manager's
email, the order rollup, one LEFT JOIN per custom field, tags as one
aggregated text) streamed from the database in batches (engine.stream: a
server-side cursor on PostgreSQL), and are written to the file as they come,
so memory stays flat however many customers there are. The file is written
under a temporary name and renamed when complete: a half-written export is
never offered for download.

Cells a spreadsheet would run as a formula (starting with = + - @, tab or CR)
are neutralised in CSV by webapp.csvsafe (a leading apostrophe, OWASP's advice;
the import undoes it, so an exported file imports back unchanged). XLSX has
typed cells: text is written as a text cell, as it is, which a spreadsheet
shows and never evaluates (no apostrophe to see).
"""

import csv
import datetime
import decimal
import os
import zoneinfo
from pathlib import Path

import peewee as pw

from .. import csvsafe, settings
from ..db import is_postgres
from ..engine import customer_query as engine_query
from ..engine import stream
from ..fields.service import fields_for
from ..i18n import _, language, supported
from ..i18n import lazy_gettext as _l
from ..models import (
    EXPORT_FORMATS,
    Customer,
    CustomerOrderStats,
    CustomerPrediction,
    CustomerTag,
    CustomValue,
    ExportRun,
    Segment,
    SegmentMember,
    Tag,
    User,
    utcnow,
)
from ..ops import storage as files

BATCH = 5000
PROGRESS_EVERY = 20000
XLSX_MAX_ROWS = 1_048_576  # a worksheet's limit, header included

# name -> (label, kind); kinds say how a value is written.
STANDARD = {
    "external_id": (_l("External ID"), "text"),
    "type": (_l("Type"), "text"),
    "first_name": (_l("First name"), "text"),
    "last_name": (_l("Last name"), "text"),
    "company_name": (_l("Company"), "text"),
    "email": (_l("Email"), "text"),
    "phone": (_l("Phone"), "text"),
    "gender": (_l("Gender"), "text"),
    "birth_date": (_l("Birth date"), "date"),
    "city": (_l("City"), "text"),
    "country": (_l("Country"), "text"),
    "source": (_l("Source"), "text"),
    "manager": (_l("Manager"), "text"),
    "email_consent": (_l("Email consent"), "bool"),
    "sms_consent": (_l("SMS consent"), "bool"),
    "language": (_l("Language"), "text"),
    "created_at": (_l("Created"), "datetime"),
    "tags": (_l("Tags"), "text"),
}
AGGREGATES = {
    "orders_count": (_l("Orders"), "int"),
    "orders_total": (_l("Orders total"), "money"),
    "items_quantity": (_l("Items bought"), "int"),
    "first_order_at": (_l("First order"), "datetime"),
    "last_order_at": (_l("Last order"), "datetime"),
}
# The scores of the last prediction fit (webapp.predictions); empty without orders.
PREDICTED = {
    "predicted.p_alive": (_l("Predicted: probability still buying"), "score"),
    "predicted.orders_30d": (_l("Predicted: orders in the next 30 days"), "score"),
    "predicted.orders_90d": (_l("Predicted: orders in the next 90 days"), "score"),
    "predicted.orders_365d": (_l("Predicted: orders in the next 365 days"), "score"),
    "predicted.aov": (_l("Predicted: average order value"), "score"),
    "predicted.clv": (_l("Predicted: value over the next 12 months"), "score"),
}
MEMBER = {"member_since": (_l("Member since"), "datetime")}
DEFAULT_COLUMNS = ("external_id", "first_name", "last_name", "email", "phone", "city")
CUSTOM_KINDS = {
    "string": "text",
    "enum": "text",
    "integer": "number",
    "decimal": "number",
    "date": "date",
    "boolean": "bool",
}


class ExportError(ValueError):
    pass


# --- columns -----------------------------------------------------------------------


def available_columns(segment=False):
    """[(group label, [(name, label)])] the form offers; custom fields by their code."""
    groups = [(_("Customer"), [(name, label) for name, (label, _k) in STANDARD.items()])]
    custom = [("custom." + f.code, f.name) for f in fields_for("customer")]
    if custom:
        groups.append((_("Custom fields"), custom))
    groups.append((_("Orders"), [(name, label) for name, (label, _k) in AGGREGATES.items()]))
    groups.append((_("Predictions"), [(name, label) for name, (label, _k) in PREDICTED.items()]))
    if segment:
        groups.append((_("Segment"), [(name, label) for name, (label, _k) in MEMBER.items()]))
    return groups


def check_columns(names, segment=False):
    """The chosen column names, validated and without repeats; ExportError when none or unknown."""
    known = {name for _g, columns in available_columns(segment) for name, _label in columns}
    result = []
    for name in names:
        if name not in known:
            raise ExportError(_("Unknown column “%(name)s”.", name=name))
        if name not in result:
            result.append(name)
    if not result:
        raise ExportError(_("Choose at least one column."))
    return result


def header(columns, language_code=None):
    """The header row: the column codes, as the import reads them (custom.<code> included),
    so an exported file imports back; with `language_code`, the columns' names in that language."""
    if not language_code:
        return list(columns)
    with language(language_code):
        names = {name: str(label) for _group, group in available_columns(segment=True) for name, label in group}
    return [names.get(name, name) for name in columns]


# --- the query ------------------------------------------------------------------------


def _tags_expression():
    if is_postgres():
        agg = pw.fn.STRING_AGG(Tag.name, pw.NodeList((pw.Value("|"), pw.SQL("ORDER BY"), Tag.name_ci), glue=" "))
    else:
        agg = pw.fn.GROUP_CONCAT(Tag.name, "|")
    return CustomerTag.select(agg).join(Tag, on=(CustomerTag.tag == Tag.id)).where(CustomerTag.customer == Customer.id)


def rows_query(base, columns, *, segment_id=None):
    """A SELECT of the columns' raw values over `base` (a Customer query with
    its filters), ordered by customer id. `segment_id`: rows are that
    segment's members (and `member_since` is their entry time)."""
    exprs, kinds = [], []
    query = base
    if segment_id is not None:
        query = query.join(
            SegmentMember, on=((SegmentMember.customer == Customer.id) & (SegmentMember.segment == segment_id))
        ).switch(Customer)
    manager = User.alias("manager")
    custom = {f.code: f for f in fields_for("customer")}
    joined_stats = joined_manager = joined_predictions = False
    for name in columns:
        if name in STANDARD:
            kinds.append(STANDARD[name][1])
            if name == "manager":
                exprs.append(manager.email)
                joined_manager = True
            elif name == "tags":
                exprs.append(_tags_expression())
            else:
                exprs.append(getattr(Customer, name))
        elif name in AGGREGATES:
            kinds.append(AGGREGATES[name][1])
            column = {
                "orders_count": CustomerOrderStats.orders_count,
                "orders_total": CustomerOrderStats.total_cents,
                "items_quantity": CustomerOrderStats.quantity,
                "first_order_at": CustomerOrderStats.first_at,
                "last_order_at": CustomerOrderStats.last_at,
            }[name]
            # A customer without orders has no rollup row: counts are 0 then.
            exprs.append(pw.fn.COALESCE(column, 0) if AGGREGATES[name][1] in ("int", "money") else column)
            joined_stats = True
        elif name in PREDICTED:
            kinds.append("score")
            exprs.append(getattr(CustomerPrediction, name[len("predicted.") :]))
            joined_predictions = True
        elif name == "member_since":
            if segment_id is None:
                raise ExportError(_("“Member since” needs a segment."))
            kinds.append("datetime")
            exprs.append(SegmentMember.since)
        elif name.startswith("custom.") and name[7:] in custom:
            field = custom[name[7:]]
            alias = CustomValue.alias(f"cv_{field.id}")
            query = query.join(
                alias, pw.JOIN.LEFT_OUTER, on=((alias.field == field.id) & (alias.record_id == Customer.id))
            ).switch(Customer)
            kind = CUSTOM_KINDS[field.type]
            kinds.append(kind)
            exprs.append(
                {
                    "text": alias.value_str,
                    "number": alias.value_num,
                    "date": alias.value_date,
                    "bool": alias.value_bool,
                }[kind]
            )
        else:
            raise ExportError(_("Unknown column “%(name)s”.", name=name))
    if joined_manager:
        query = query.join(manager, pw.JOIN.LEFT_OUTER, on=(Customer.manager == manager.id)).switch(Customer)
    if joined_stats:
        query = query.join(
            CustomerOrderStats, pw.JOIN.LEFT_OUTER, on=(CustomerOrderStats.customer == Customer.id)
        ).switch(Customer)
    if joined_predictions:
        query = query.join(
            CustomerPrediction, pw.JOIN.LEFT_OUTER, on=(CustomerPrediction.customer == Customer.id)
        ).switch(Customer)
    # Members in segment_member's key order (segment, customer): the database
    # walks that index instead of sorting a million rows (in memory on SQLite).
    order = SegmentMember.customer if segment_id is not None else Customer.id
    return query.select(*exprs).order_by(order), kinds


# --- cell values ---------------------------------------------------------------------------


def _to_datetime(value):
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    return value


def _to_date(value):
    if isinstance(value, str):
        return datetime.date.fromisoformat(value[:10])
    if isinstance(value, datetime.datetime):
        return value.date()
    return value


def _decimal_text(value):
    if isinstance(value, float):
        value = decimal.Decimal(repr(value))
    value = decimal.Decimal(value)
    text = format(value.normalize(), "f")
    return text


def _money_text(cents):
    cents = int(cents)
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole}.{rest:02d}"


_TRIGGER_CHARS = frozenset("=+-@\t\r")


def local_time_converter(zone):
    """naive UTC datetime (or SQLite's text of one) -> 'YYYY-MM-DD HH:MM:SS' in `zone`.

    The zone's offset is looked up once per hour of time (offsets change on
    hour boundaries), not per value: a million rows convert in a second.
    """
    offsets = {}
    fromisoformat = datetime.datetime.fromisoformat
    utc = datetime.UTC

    def convert(value):
        if value is None:
            return ""
        if isinstance(value, str):
            value = fromisoformat(value)
        if zone is None:
            return value.isoformat(" ", "seconds")
        hour = value.toordinal() * 24 + value.hour
        offset = offsets.get(hour)
        if offset is None:
            if len(offsets) > 100_000:
                offsets.clear()
            offset = offsets[hour] = value.replace(tzinfo=utc).astimezone(zone).utcoffset()
        return (value + offset).isoformat(" ", "seconds")

    return convert


def _date_text(value):
    if isinstance(value, str):
        return value[:10]
    return _to_date(value).isoformat()


def row_converter(kinds, zone):
    """One function: a raw database row -> the list of its CSV cell texts.

    Built as a single expression per row (the templates below, with column
    positions only; nothing from users goes into it), because a Python call
    per cell is most of the time of a million-row export. Text cells call
    csvsafe.neutralise only when they start with a formula character.
    """
    names = {
        "_N": csvsafe.neutralise,
        "_T": _TRIGGER_CHARS,
        "_L": local_time_converter(zone),
        "_M": _money_text,
        "_D": _decimal_text,
        "_DT": _date_text,
    }
    templates = {
        "text": "('' if r[{i}] is None else (_N(r[{i}]) if r[{i}][:1] in _T else r[{i}]))",
        "date": "('' if r[{i}] is None else _DT(r[{i}]))",
        "datetime": "_L(r[{i}])",
        "bool": "('' if r[{i}] is None else ('true' if r[{i}] else 'false'))",
        "int": "('' if r[{i}] is None else str(r[{i}]))",
        "money": "('' if r[{i}] is None else _M(r[{i}]))",
        "number": "('' if r[{i}] is None else _D(r[{i}]))",
        # model estimates: four decimals say all they know
        "score": "('' if r[{i}] is None else _D(round(r[{i}], 4)))",
    }
    source = "lambda r: [" + ", ".join(templates[kind].format(i=i) for i, kind in enumerate(kinds)) + "]"
    return eval(source, names)  # noqa: S307 - built from the fixed templates above


# --- writers -------------------------------------------------------------------------------


def write_csv(path, header_row, rows, kinds, *, bom=False, zone=None, on_progress=None):
    """Write the rows as CSV (UTF-8, with a BOM for Excel when asked); returns the row count."""
    convert = row_converter(kinds, zone)
    done = 0
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(csvsafe.safe_row(header_row))
        batch = []
        for row in rows:
            batch.append(convert(row))
            if len(batch) >= BATCH:
                writer.writerows(batch)
                done += len(batch)
                batch = []
                if on_progress and done % PROGRESS_EVERY == 0:
                    on_progress(done)
        writer.writerows(batch)
        done += len(batch)
    return done


def write_xlsx(path, header_row, rows, kinds, *, zone=None, on_progress=None):
    """Write the rows as XLSX in XlsxWriter's constant-memory mode (each row goes
    to disk as it is written); a new sheet starts every 1,048,575 rows."""
    import xlsxwriter

    workbook = xlsxwriter.Workbook(
        str(path),
        {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False},
    )
    bold = workbook.add_format({"bold": True})
    date_format = workbook.add_format({"num_format": "yyyy-mm-dd"})
    datetime_format = workbook.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
    money_format = workbook.add_format({"num_format": "0.00"})

    def sheet(number):
        ws = workbook.add_worksheet(_("Customers") if number == 1 else _("Customers %(n)s", n=number))
        for col, title in enumerate(header_row):
            ws.write_string(0, col, str(title), bold)
        ws.freeze_panes(1, 0)
        return ws

    def writer_for(kind):
        if kind == "text":
            return lambda ws, r, c, v: ws.write_string(r, c, str(v))
        if kind == "date":
            return lambda ws, r, c, v: ws.write_datetime(
                r, c, datetime.datetime.combine(_to_date(v), datetime.time()), date_format
            )
        if kind == "datetime":

            def local(ws, r, c, v):
                v = _to_datetime(v)
                if zone is not None:
                    v = v.replace(tzinfo=datetime.UTC).astimezone(zone).replace(tzinfo=None)
                ws.write_datetime(r, c, v, datetime_format)

            return local
        if kind == "bool":
            return lambda ws, r, c, v: ws.write_boolean(r, c, bool(v))
        if kind == "int":
            return lambda ws, r, c, v: ws.write_number(r, c, int(v))
        if kind == "money":
            return lambda ws, r, c, v: ws.write_number(r, c, int(v) / 100, money_format)
        return lambda ws, r, c, v: ws.write_number(r, c, float(v))

    writers = list(enumerate(writer_for(kind) for kind in kinds))
    sheets = 1
    ws = sheet(sheets)
    line = 0
    done = 0
    try:
        for row in rows:
            line += 1
            if line >= XLSX_MAX_ROWS:
                sheets += 1
                ws = sheet(sheets)
                line = 1
            for col, write in writers:
                value = row[col]
                if value is not None:
                    write(ws, line, col, value)
            done += 1
            if on_progress and done % PROGRESS_EVERY == 0:
                on_progress(done)
    finally:
        workbook.close()
    return done


def write(path, fmt, header_row, rows, kinds, *, bom=False, zone=None, on_progress=None):
    """Write to `path` through a temporary file renamed at the end; returns the row count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    try:
        if fmt == "csv":
            count = write_csv(partial, header_row, rows, kinds, bom=bom, zone=zone, on_progress=on_progress)
        elif fmt == "xlsx":
            count = write_xlsx(partial, header_row, rows, kinds, zone=zone, on_progress=on_progress)
        else:
            raise ExportError(_("Unknown format “%(f)s”.", f=fmt))
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()
    return count


# --- export runs -------------------------------------------------------------------------------


def source_query(source):
    """(base Customer query, segment id or None, a name for the file) of an export's source:
    a segment's members and/or the customer list's filters (search text, type)."""
    segment_id, name = None, "customers"
    if source.get("segment"):
        segment = Segment.get_or_none(Segment.code == source["segment"])
        if segment is None:
            raise ExportError(_("The segment “%(code)s” no longer exists.", code=source["segment"]))
        segment_id, name = segment.id, segment.code
    if source.get("definition"):
        # one evaluator: the engine's own query, today in the account's time zone
        chosen = engine_query(source["definition"], tz=settings.tz())
        return Customer.select().where(Customer.id.in_(chosen)), None, source.get("name") or name
    if source.get("q") or source.get("type"):
        from ..customers.service import customer_query  # the customer list's own filters

        return customer_query(source.get("q") or None, source.get("type") or None), segment_id, name
    return Customer.select(), segment_id, name


def count_rows(source):
    base, segment_id, _name = source_query(source)
    if segment_id is not None:
        if not (source.get("q") or source.get("type")):
            return SegmentMember.select().where(SegmentMember.segment == segment_id).count()
        base = base.join(
            SegmentMember, on=((SegmentMember.customer == Customer.id) & (SegmentMember.segment == segment_id))
        )
    return base.count()


def create_export(source, columns, fmt, *, bom=False, user=None, headers=None):
    """A queued ExportRun after checking what was asked; ExportError says what is wrong."""
    if fmt not in EXPORT_FORMATS:
        raise ExportError(_("Choose CSV or Excel (XLSX)."))
    _base, segment_id, name = source_query(source)
    columns = check_columns(columns, segment=segment_id is not None)
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    return ExportRun.create(
        user=user,
        segment=segment_id,
        source=source,
        columns=columns,
        format=fmt,
        bom=bool(bom) and fmt == "csv",
        headers=supported(headers),
        file_name=f"{name}-{stamp}.{fmt}",
    )


def execute(run_id, exports_dir, tz="UTC", on_progress=None):
    """Run an export to its end (done or failed); safe to run again (it starts over)."""
    run = ExportRun.get_by_id(run_id)
    if run.status == "done" and run.file_path and os.path.exists(run.file_path):
        return run
    run.status, run.started_at, run.finished_at, run.error, run.rows_done = "running", utcnow(), None, None, 0
    run.save()
    try:
        zone = zoneinfo.ZoneInfo(tz or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = None
    try:
        source = run.source
        run.rows_total = count_rows(source)
        run.save(only=[ExportRun.rows_total])
        base, segment_id, _name = source_query(source)
        query, kinds = rows_query(base, run.columns, segment_id=segment_id)
        path = Path(exports_dir) / f"export-{run.id}.{run.format}"

        def progress(done):
            if on_progress:
                on_progress(run, done)

        count = write(
            path,
            run.format,
            header(run.columns, run.headers),
            stream(query, batch=BATCH),
            kinds,
            bom=run.bom,
            zone=zone,
            on_progress=progress,
        )
        # Downloaded through any web machine: into STORAGE_URL before the run says done.
        files.publish(path, "exports")
    except Exception as exc:  # noqa: BLE001 - recorded on the run for the page
        run.status, run.error, run.finished_at = (
            "failed",
            _("The export failed: %(error)s", error=str(exc) or type(exc).__name__),
            utcnow(),
        )
        run.save()
        raise
    run.status, run.rows_done, run.file_path, run.finished_at = "done", count, str(path), utcnow()
    run.save()
    if on_progress:
        on_progress(run, count)
    return run


def expire_files(keep_days, now=None):
    """Delete the files of exports finished more than `keep_days` ago (they
    become "expired": the page offers to run them again). Returns how many."""
    cutoff = (now or utcnow()) - datetime.timedelta(days=keep_days)
    expired = 0
    for run in ExportRun.select().where(ExportRun.status == "done", ExportRun.finished_at < cutoff):
        if run.file_path:
            files.remove(run.file_path, "exports")
        expired += (
            ExportRun.update(status="expired", file_path=None)
            .where(ExportRun.id == run.id, ExportRun.status == "done")
            .execute()
        )
    return expired
