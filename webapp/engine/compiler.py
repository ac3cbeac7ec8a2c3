"""The compiler: a valid Definition to one peewee query over customers.

Shape of the SQL
- Customer filters are predicates on `customer` columns (the folded `_ci`
  twins for strings, `birth_md` for birthdays ignoring the year).
- Everything that is "the customer has some row elsewhere" (a record block,
  a tag, a custom value, a segment membership) is a *member set*: a subquery
  of customer ids (or order ids, inside an order block), rendered per backend:
  * SQLite: `id IN (subquery)`, computed once and probed; but a record block
    that is negated, or whose filters cannot start from an index of their
    own (only dates, amounts...), is a correlated (NOT) EXISTS walking the
    customer's records through the (customer_id, date) indexes.
  * PostgreSQL: outside any OR, `IN` (semi join) and `NOT EXISTS` (anti
    join); under an OR, `LEFT JOIN (SELECT DISTINCT ...) ... IS [NOT] NULL`,
    since an IN there is a hashed subplan that degrades to a per-row scan
    once the set outgrows work_mem.
- Counting and listing read a set directly when the whole definition is one
  positive set, or an OR of sets and customer filters (a UNION), instead of
  looking up a customer row per member.
- A record block with conditions (`having`) groups its records by customer.
  Whether the conditions hold over an empty record set is known at compile
  time (count = sum = quantity = 0, the rest null); when they do (e.g. count
  between 0 and 0), the block is "not in the set of customers whose records
  fail them", so customers with no records at all match, as the spec says.
  Conditions that only ask whether there are records (count 0..0, count >= 1,
  first_at is empty...) need no grouping: has / has no record in R.
- An order block without filters reads the rollup `customer_order_stats`
  (fast path); `fast=False` forces the order table (tests compare both).

Values: strings are folded in Python (webapp.text.fold) and compared to the
`_ci` columns; money bounds become integer cents and `avg` is compared as
sum >= bound * count (exact, no division); a datetime is compared by its date
in the account time zone through UTC bounds computed in Python (index
friendly). Time zones whose clocks jump across midnight can make a local
date non-monotonic in UTC; the engine assumes they do not.

User values only ever reach SQL as parameters.
"""

import datetime
import decimal
import functools
import math
import operator

import peewee as pw

from .. import localtime
from ..db import database, is_postgres
from ..i18n import _
from ..models import (
    Customer,
    CustomerOrderStats,
    CustomerPrediction,
    CustomerTag,
    CustomValue,
    Deal,
    EventOccurrence,
    EventType,
    Mailing,
    MessageEvent,
    Order,
    OrderItem,
    Pipeline,
    Product,
    ProductGroup,
    Segment,
    SegmentMember,
    Shop,
    Stage,
    Tag,
    User,
)
from ..text import fold, like_escape
from .catalogue import catalogue as load_catalogue
from .definition import Definition, DefinitionError, parse_definition

TRUE = True
FALSE = False


# --- the predicate tree --------------------------------------------------------


class Member:
    """ "The key is in this set": `query` selects one column aliased `k`.

    `unique`: the set has no duplicate keys (no DISTINCT needed).
    `customers_only`: every key is an existing customer (a foreign key with
    cascade), so counting the set counts customers.
    `correlated(key)`: the same set as a correlated subquery restricted to
    k = key, for EXISTS (by default `query` filtered on `key_col`).
    `record_table`: a set read from a record table (orders, deals, ...),
    which SQLite probes per customer when negated or when `prefer_exists`.
    """

    def __init__(
        self,
        query,
        negate=False,
        unique=False,
        customers_only=False,
        correlated=None,
        prefer_exists=False,
        key_col=None,
        record_table=False,
    ):
        if correlated is None and key_col is not None:

            def correlated(key):
                return query.where(key_col == key)

        self.query, self.negate, self.unique, self.customers_only = query, negate, unique, customers_only
        self.correlated, self.prefer_exists, self.record_table = correlated, prefer_exists, record_table

    def __invert__(self):
        return Member(
            self.query,
            not self.negate,
            self.unique,
            self.customers_only,
            self.correlated,
            self.prefer_exists,
            record_table=self.record_table,
        )


class Expr:
    """A plain SQL predicate; `null_guard`: the "value is null" test its NOT needs."""

    def __init__(self, expr, null_guard=None):
        self.expr, self.null_guard = expr, null_guard
        # the predicate this one is the exact complement of, when known (counts)
        self.complement = None

    def __invert__(self):
        # NOT of a nullable predicate must hold when the value is null
        # ("null passes an exclude"): null_guard is that "value is null" test.
        inverted = ~self.expr
        return Expr(inverted | self.null_guard if self.null_guard is not None else inverted)


class Bool:
    def __init__(self, op, items):
        self.op, self.items = op, items

    def __invert__(self):
        return Bool("or" if self.op == "and" else "and", [_not(i) for i in self.items])


def _not(pred):
    if pred is TRUE:
        return FALSE
    if pred is FALSE:
        return TRUE
    return ~pred


def _combine(op, items):
    """AND/OR of predicates, folding the constants."""
    out = []
    for item in items:
        if item is (TRUE if op == "and" else FALSE):
            continue
        if item is (FALSE if op == "and" else TRUE):
            return item
        out.append(item)
    if not out:
        return TRUE if op == "and" else FALSE
    if len(out) == 1:
        return out[0]
    return Bool(op, out)


def all_of(items):
    return _combine("and", list(items))


def any_of(items):
    return _combine("or", list(items))


class Scope:
    """Where predicates are rendered: a base table with its key column.

    On PostgreSQL, member sets become LEFT JOINs collected here and applied
    to the query by `apply`.
    """

    def __init__(self, ctx, model, key):
        self.ctx, self.model, self.key = ctx, model, key
        self.joins = []
        self.probed = False  # a correlated EXISTS per row of `model` was rendered

    def render(self, pred, in_or=False):
        """The peewee expression of `pred`; `in_or`: somewhere under an OR."""
        if pred is TRUE:
            return None
        if pred is FALSE:
            return pw.SQL("1 = 0")
        if isinstance(pred, Expr):
            return pred.expr
        if isinstance(pred, Bool):
            probes = set()
            if pred.op == "and" and not in_or and not self.ctx.postgres:
                # Several sets that must all hold: the first one is built and
                # drives, the others are probed per candidate (building each
                # would read all of it; 1M demo file, Vietnam-or-Thailand
                # lovers with pets: 1.03 s -> 0.63 s).
                built = [i for i in pred.items if isinstance(i, Member) and not i.negate and not self._probes(i)]
                probes = {id(i) for i in built[1:] if i.correlated is not None}
            parts = [
                self._render_sqlite(i, probe=True) if id(i) in probes else self.render(i, in_or or pred.op == "or")
                for i in pred.items
            ]
            return functools.reduce(operator.and_ if pred.op == "and" else operator.or_, parts)
        if isinstance(pred, Member):
            if self.ctx.postgres:
                return self._render_postgres(pred, in_or)
            return self._render_sqlite(pred)
        raise TypeError(pred)

    @staticmethod
    def _probes(pred):
        # SQLite computes `IN (subquery)` once, through whatever index the
        # subquery's filters pick; on a record table that can mean millions of
        # row lookups. A correlated probe per customer walks the customer's own
        # records through (customer_id, ...) indexes instead, and a NOT has to
        # visit every customer anyway.
        return pred.correlated is not None and pred.record_table and (pred.negate or pred.prefer_exists)

    def _render_sqlite(self, pred, probe=False):
        if probe or self._probes(pred):
            self.probed = True
            exists = pw.fn.EXISTS(pred.correlated(self.key))
            return ~exists if pred.negate else exists
        return self.key.not_in(pred.query) if pred.negate else self.key.in_(pred.query)

    def _render_postgres(self, pred, in_or):
        # Outside any OR, PostgreSQL turns `IN (subquery)` into a semi join and
        # `NOT EXISTS` into an anti join (hash or merge, spilling to disk as
        # needed). Under an OR it would not: IN becomes a hashed subplan that
        # degrades to a scan per row once the set outgrows work_mem, so there
        # the set is LEFT JOINed (distinct) and tested for NULL.
        if not in_or:
            if not pred.negate:
                return self.key.in_(pred.query)
            if pred.correlated is not None:
                return ~pw.fn.EXISTS(pred.correlated(self.key))
            alias = pred.query.alias(self.ctx.name("m"))
            return ~pw.fn.EXISTS(pw.Select([alias], [pw.SQL("1")]).where(alias.c.k == self.key))
        query = pred.query if pred.unique else pred.query.distinct()
        alias = query.alias(self.ctx.name("m"))
        self.joins.append((alias, alias.c.k == self.key))
        return alias.c.k.is_null(pred.negate)

    def apply(self, query):
        for alias, on in self.joins:
            query = query.join_from(self.model, alias, pw.JOIN.LEFT_OUTER, on=on)
        return query


# --- values --------------------------------------------------------------------


def _param(value):
    # converter=False: a field's db_value would round decimals (value_num is
    # NUMERIC(24, 6)) and change what the bound means.
    return pw.Value(value, converter=False)


def _num_param(ctx, value):
    """A Decimal bound for a direct comparison with a numeric column."""
    if value == value.to_integral_value():
        return _param(int(value))
    # SQLite: text compared with a NUMERIC column takes the column's numeric
    # affinity, converted by the same routine that stored the values.
    return _param(value if ctx.postgres else format(value, "f"))


def _like(col, pattern):
    # Spelled out: peewee maps its LIKE operator to GLOB on SQLite. Both sides
    # are folded, so SQLite's ASCII-only case-insensitive LIKE and
    # PostgreSQL's case-sensitive one agree.
    return pw.NodeList((col, pw.SQL("LIKE"), _param(pattern), pw.SQL("ESCAPE"), _param("\\")), parens=True)


class Ctx:
    def __init__(self, today, tz, catalogue, postgres, fast):
        self.today, self.tz, self.catalogue, self.postgres, self.fast = today, tz, catalogue, postgres, fast
        self._n = 0

    def name(self, prefix):
        self._n += 1
        return f"{prefix}{self._n}"

    # dates ------------------------------------------------------------------
    def day_start(self, day):
        """Naive UTC start of a local date; None below/above the representable range."""
        local = datetime.datetime.combine(day, datetime.time(), tzinfo=self.tz)
        try:
            return local.astimezone(datetime.UTC).replace(tzinfo=None)
        except OverflowError:
            return None

    def shift(self, days):
        try:
            return self.today + datetime.timedelta(days=days)
        except OverflowError:
            return datetime.date.max if days > 0 else datetime.date.min

    def month_day_expr(self, col):
        if self.postgres:
            return pw.Cast(pw.fn.to_char(col, "MMDD"), "INTEGER")
        return pw.Cast(pw.fn.strftime("%m%d", col), "INTEGER")


def _date_range(col, lo, hi):
    parts = []
    if lo is not None:
        parts.append(col >= _param(lo))
    if hi is not None:
        parts.append(col <= _param(hi))
    return functools.reduce(operator.and_, parts)


def _datetime_range(ctx, col, lo, hi):
    """col's local date in [lo, hi] (dates, either None) as UTC bounds on col."""
    parts = []
    if lo is not None:
        start = ctx.day_start(lo)
        if start is None and lo.year > 5000:
            return pw.SQL("1 = 0")
        if start is not None:
            parts.append(col >= _param(start))
    if hi is not None and hi < datetime.date.max:
        end = ctx.day_start(hi + datetime.timedelta(days=1))
        if end is None and hi.year < 5000:
            return pw.SQL("1 = 0")
        if end is not None:
            parts.append(col < _param(end))
    if not parts:
        return col.is_null(False)
    return functools.reduce(operator.and_, parts)


def _md_range(md, lo, hi):
    lo = 101 if lo is None else lo
    hi = 1231 if hi is None else hi
    if lo <= hi:
        return (md >= lo) & (md <= hi)
    return (md >= lo) | (md <= hi)  # wraps the new year


def _md(day):
    return day.month * 100 + day.day


def _relative_md_range(ctx, md, flt):
    if flt.to_days - flt.from_days >= 365:
        return md.is_null(False)
    return _md_range(md, _md(ctx.shift(flt.from_days)), _md(ctx.shift(flt.to_days)))


# A value "kind" says how a column's values compare.
#   text     folded text (`_ci` column, custom value_ci, reference names)
#   raw      canonical enum text stored as is (type, gender, channel, kind, stage kind)
#   code     exact text (segment codes)
#   date / datetime / number / money / integer / boolean
def _positive(ctx, col, kind, flt, md=None):
    """The predicate of a non-`in` op (or `in` values) on a non-null value of col."""
    op = flt.op
    if op == "contains":
        return _like(col, "%" + like_escape(fold(flt.value)) + "%")
    if op == "is":
        return col == _param(bool(flt.value))
    if op == "between":
        if flt.ignore_year:
            return _md_range(md if md is not None else ctx.month_day_expr(col), flt.from_, flt.to)
        if kind == "date":
            return _date_range(col, flt.from_, flt.to)
        if kind == "datetime":
            return _datetime_range(ctx, col, flt.from_, flt.to)
        return _number_range(ctx, col, kind, flt.from_, flt.to)
    if op == "relative":
        if flt.ignore_year:
            return _relative_md_range(ctx, md if md is not None else ctx.month_day_expr(col), flt)
        lo = None if flt.from_days is None else ctx.shift(flt.from_days)
        hi = None if flt.to_days is None else ctx.shift(flt.to_days)
        if kind == "datetime":
            return _datetime_range(ctx, col, lo, hi)
        return _date_range(col, lo, hi)
    raise ValueError(op)


def _number_range(ctx, col, kind, lo, hi):
    parts = []
    if kind == "money":
        # currency units to exact integer cents
        if lo is not None:
            parts.append(col >= _param(int(lo * 100)))
        if hi is not None:
            parts.append(col <= _param(int(hi * 100)))
    elif kind == "integer":
        # aggregates have no column affinity in SQLite: compare integers with integers
        if lo is not None:
            parts.append(col >= _param(math.ceil(lo)))
        if hi is not None:
            parts.append(col <= _param(math.floor(hi)))
    elif kind == "float":
        # a REAL / double precision column: the bound as the nearest double on both backends
        if lo is not None:
            parts.append(col >= _param(float(lo)))
        if hi is not None:
            parts.append(col <= _param(float(hi)))
    else:
        if lo is not None:
            parts.append(col >= _num_param(ctx, lo))
        if hi is not None:
            parts.append(col <= _num_param(ctx, hi))
    return functools.reduce(operator.and_, parts)


def _in_values(flt, kind, options=None):
    """(included, excluded) values as they are stored/compared for this kind."""

    def norm(value):
        if kind == "code":
            return value.strip()
        if kind == "raw":
            # enum options are stored in their canonical spelling
            return next((o for o in options if fold(o) == fold(value)), value)
        return fold(value)

    inc = sorted({norm(c.value) for c in flt.values if not c.exclude})
    exc = sorted({norm(c.value) for c in flt.values if c.exclude})
    return inc, exc


class Source:
    """Where a field's value lives. `atom(P)`: "the value satisfies P" (false on
    null; for multi-valued fields: some value does)."""

    kind = "text"
    md = None

    def atom(self, pred_fn):
        raise NotImplementedError

    def not_empty(self):
        return self.atom(lambda col: col.is_null(False))


class ColumnSource(Source):
    """A column of the scope's table. `broad`: a column of two or three values
    (booleans, gender, type, channel) whose test matches a large share of rows."""

    def __init__(self, col, kind, blank_is_empty=False, broad_on_sqlite=False):
        self.col, self.kind, self.blank_is_empty = col, kind, blank_is_empty
        self.broad_on_sqlite = broad_on_sqlite

    def atom(self, pred_fn):
        expr = pred_fn(self.col)
        if self.broad_on_sqlite:
            # Tell SQLite's planner the test is not selective, so it starts
            # from another filter's index (e.g. city) rather than walking half
            # the table through this one; approximate statistics (ANALYZE with
            # analysis_limit) rate every index alike. On the 1M demo file:
            # women in Moscow who accept email 1.05 s -> 0.40 s.
            expr = pw.fn.likelihood(expr, pw.SQL("0.5"))
        return Expr(expr, null_guard=self.col.is_null())

    def not_empty(self):
        if self.blank_is_empty:
            return Expr(self.col.is_null(False) & (self.col != ""), null_guard=self.col.is_null())
        return super().not_empty()


class BirthDateSource(ColumnSource):
    """customer.birth_date, with its indexed month-day twin for ignore_year."""

    md = Customer.birth_md

    def __init__(self):
        super().__init__(Customer.birth_date, "date")


class ViaSource(Source):
    """A value in a referenced row: fk -> Ref.col (null when fk is null)."""

    def __init__(self, fk, ref_model, ref_col, kind="text"):
        self.fk, self.ref_model, self.ref_col, self.kind = fk, ref_model, ref_col, kind

    def atom(self, pred_fn):
        ids = self.ref_model.select(self.ref_model._meta.primary_key).where(pred_fn(self.ref_col))
        return Expr(self.fk.in_(ids), null_guard=self.fk.is_null())

    def not_empty(self):
        return Expr(self.fk.is_null(False), null_guard=self.fk.is_null())


class CustomSource(Source):
    """A custom field's value: its custom_value row (none = empty)."""

    COLUMNS = {
        "string": "value_ci",
        "enum": "value_ci",
        "integer": "value_num",
        "decimal": "value_num",
        "date": "value_date",
        "boolean": "value_bool",
    }
    KINDS = {
        "string": "text",
        "enum": "text",
        "integer": "number",
        "decimal": "number",
        "date": "date",
        "boolean": "boolean",
    }

    def __init__(self, ctx, field_id, custom_type, ranged=False):
        self.ctx, self.field_id, self.ranged = ctx, field_id, ranged
        self.cv = CustomValue.alias(ctx.name("cv"))
        self.col = getattr(self.cv, self.COLUMNS[custom_type])
        self.kind = self.KINDS[custom_type]

    def atom(self, pred_fn):
        query = self.cv.select(self.cv.record_id.alias("k")).where((self.cv.field == self.field_id) & pred_fn(self.col))
        if self.ranged:
            query = _ranged(self.ctx, query, self.cv.record_id)
        return Member(query, unique=True, key_col=self.cv.record_id)


class MultiSource(Source):
    """A multi-valued field: the set of keys with some value satisfying P."""

    def __init__(self, make_query, customers_only=False, kind="text"):
        self.make_query, self.customers_only, self.kind = make_query, customers_only, kind

    def atom(self, pred_fn):
        query, key_col = self.make_query(pred_fn)
        return Member(query, customers_only=self.customers_only, key_col=key_col)


class PredictedSource(Source):
    """A score in `customer_prediction` (no row: no orders, every score null).

    A member set read from the score's own index, so a count on a predicted
    field never visits the customer table."""

    kind = "float"

    def __init__(self, ctx, column):
        self.ctx, self.column = ctx, column

    def atom(self, pred_fn):
        cp = CustomerPrediction.alias(self.ctx.name("cp"))
        query = cp.select(cp.customer.alias("k")).where(pred_fn(getattr(cp, self.column)))
        return Member(_scoped(self.ctx, query, cp.customer), unique=True, customers_only=True, key_col=cp.customer)


def _filter_pred(ctx, source, flt, info):
    """The predicate of one filter over a value source."""
    if flt.op == "in":
        inc, exc = _in_values(flt, source.kind, info.options)
        parts = []
        if info.reference == "product_group":
            # a group includes its subgroups
            def matches(col, values):
                return functools.reduce(operator.or_, [(col == v) | _like(col, like_escape(v) + "/%") for v in values])
        else:

            def matches(col, values):
                return col.in_(values)

        if inc:
            parts.append(source.atom(lambda col: matches(col, inc)))
        if exc:
            excluded = source.atom(lambda col: matches(col, exc))
            parts.append(_not(excluded))
            if isinstance(source, ColumnSource) and info.reference != "product_group":
                # `col IN (values)` is null only where the column is, which the
                # NOT's null guard admits: the NOT is its exact complement
                parts[-1].complement = excluded
        return all_of(parts)
    if flt.op == "is_empty":
        return _not(source.not_empty())
    if flt.op == "is_not_empty":
        return source.not_empty()
    return source.atom(lambda col: _positive(ctx, col, source.kind, flt, md=source.md))


# --- field sources per entity -------------------------------------------------


def _customer_source(ctx, name, info):
    if info.custom_field_id is not None:
        return CustomSource(ctx, info.custom_field_id, info.custom_type)
    if name in ("type", "gender", "language"):
        return ColumnSource(getattr(Customer, name), "raw", blank_is_empty=True, broad_on_sqlite=not ctx.postgres)
    if name in ("first_name", "last_name", "company_name", "email", "phone", "city", "country", "source"):
        return ColumnSource(getattr(Customer, name + "_ci"), "text")
    if name == "birth_date":
        return BirthDateSource()
    if name in ("email_consent", "sms_consent"):
        return ColumnSource(getattr(Customer, name), "boolean", broad_on_sqlite=not ctx.postgres)
    if name == "created_at":
        return ColumnSource(Customer.created_at, "datetime")
    if name == "manager":
        return ViaSource(Customer.manager, User, User.email_ci)
    if name.startswith("predicted."):
        return PredictedSource(ctx, name[len("predicted.") :])
    if name == "tags":

        def tags(pred_fn):
            ct = CustomerTag.alias(ctx.name("ct"))
            tags = Tag.select(Tag.id).where(pred_fn(Tag.name_ci))
            return ct.select(ct.customer.alias("k")).where(ct.tag.in_(tags)), ct.customer

        return MultiSource(tags, customers_only=True)
    raise KeyError(name)


def _age_pred(ctx, flt):
    """Age in full years at today, as a birth_date range."""
    col = Customer.birth_date
    if flt.op == "is_empty":
        return Expr(col.is_null())
    if flt.op == "is_not_empty":
        return Expr(col.is_null(False))
    today = ctx.today
    lo = None if flt.from_ is None else math.ceil(flt.from_)
    hi = None if flt.to is None else math.floor(flt.to)
    if lo is not None and hi is not None and lo > hi:
        return FALSE

    def birthday_in(year):
        # the date that is `today`'s month and day in `year` (Feb 29 -> Feb 28)
        try:
            return today.replace(year=year)
        except ValueError:
            return today.replace(year=year, day=28)

    parts = [col.is_null(False)]
    if lo is not None:
        # age >= lo  <=>  born on or before today's month-day, lo years ago
        year = today.year - lo
        if year < 1:
            return FALSE
        if year <= 9999:
            parts.append(col <= _param(birthday_in(year)))
    if hi is not None:
        # age <= hi  <=>  not (age >= hi + 1)
        year = today.year - hi - 1
        if year > 9999:
            return FALSE
        if year >= 1:
            parts.append(col > _param(birthday_in(year)))
    return Expr(functools.reduce(operator.and_, parts))


def _order_source(ctx, o, name, info):
    if info.custom_field_id is not None:
        return CustomSource(ctx, info.custom_field_id, info.custom_type, ranged=True)
    if name == "ordered_at":
        return ColumnSource(o.ordered_at, "datetime")
    if name == "status":
        return ColumnSource(o.status_ci, "text")
    if name == "total":
        return ColumnSource(o.total_cents, "money")
    if name == "shop":
        return ViaSource(o.shop, Shop, Shop.name_ci)
    if name in ("product", "product_group"):

        def items(pred_fn):
            oi = OrderItem.alias(ctx.name("oi"))
            if name == "product":
                products = Product.select(Product.id).where(pred_fn(Product.sku_ci))
            else:
                groups = ProductGroup.select(ProductGroup.id).where(pred_fn(ProductGroup.path_ci))
                products = Product.select(Product.id).where(Product.group.in_(groups))
            return _ranged(ctx, oi.select(oi.order.alias("k")).where(oi.product.in_(products)), oi.order), oi.order

        return MultiSource(items)
    raise KeyError(name)


def _deal_source(ctx, d, name, info):
    if info.custom_field_id is not None:
        return CustomSource(ctx, info.custom_field_id, info.custom_type)
    if name == "pipeline":
        return ViaSource(d.pipeline, Pipeline, Pipeline.name_ci)
    if name == "stage":
        return ViaSource(d.stage, Stage, Stage.name_ci)
    if name == "stage_kind":
        return ViaSource(d.stage, Stage, Stage.kind, kind="raw")
    if name == "amount":
        return ColumnSource(d.amount_cents, "money")
    if name == "manager":
        return ViaSource(d.manager, User, User.email_ci)
    if name in ("created_at", "closed_at"):
        return ColumnSource(getattr(d, name), "datetime")
    raise KeyError(name)


def _message_source(ctx, m, name, info):
    if name == "channel":
        return ColumnSource(m.channel, "raw", blank_is_empty=True, broad_on_sqlite=not ctx.postgres)
    if name == "kind":
        return ColumnSource(m.kind, "raw", blank_is_empty=True)
    if name == "mailing":
        return ViaSource(m.mailing, Mailing, Mailing.name_ci)
    if name == "occurred_at":
        return ColumnSource(m.occurred_at, "datetime")
    raise KeyError(name)


def _event_source(ctx, e, name, info):
    if name == "event":
        return ViaSource(e.event_type, EventType, EventType.code_ci)
    if name == "occurred_at":
        return ColumnSource(e.occurred_at, "datetime")
    raise KeyError(name)


RECORDS = {
    # entity: (model, source factory, date column of first_at/last_at, money column of sum/avg)
    "order": (Order, _order_source, "ordered_at", "total_cents"),
    "deal": (Deal, _deal_source, "created_at", "amount_cents"),
    "message": (MessageEvent, _message_source, "occurred_at", None),
    "event": (EventOccurrence, _event_source, "occurred_at", None),
}


# --- aggregates ---------------------------------------------------------------

AGG_KINDS = {
    "count": "integer",
    "sum": "money",
    "avg": "money",
    "quantity": "integer",
    "first_at": "datetime",
    "last_at": "datetime",
}


def empty_value(agg):
    """An aggregate over no records (spec: count = sum = quantity = 0, the rest null)."""
    return decimal.Decimal(0) if agg in ("count", "sum", "quantity") else None


def _holds_when_empty(flt):
    value = empty_value(flt.agg)
    if flt.op == "is_empty":
        return value is None
    if flt.op == "is_not_empty":
        return value is not None
    if value is None:
        return False  # null never satisfies between/relative
    if flt.op == "between":
        return (flt.from_ is None or flt.from_ <= value) and (flt.to is None or value <= flt.to)
    return False


def _having_holds_when_empty(block):
    results = [_holds_when_empty(f) for f in block.having]
    return all(results) if block.having_match == "all" else any(results)


def _emptiness(flt):
    """(holds over no records, holds over any non-empty record set) when the
    condition only depends on whether there are records, else None."""
    if flt.op in ("is_empty", "is_not_empty"):
        nullable = empty_value(flt.agg) is None  # null exactly when there are no records
        empty = flt.op == "is_empty"
        return (empty, not empty) if nullable else (not empty, not empty)
    if flt.agg != "count" or flt.op != "between":
        return None
    lo = None if flt.from_ is None else math.ceil(flt.from_)
    hi = None if flt.to is None else math.floor(flt.to)
    when_empty = (lo is None or lo <= 0) and (hi is None or hi >= 0)
    if (lo is None or lo <= 1) and hi is None:
        return when_empty, True
    if hi is not None and hi < 1:
        return when_empty, False
    return None


def _having_emptiness(block):
    """`_emptiness` of the whole condition list, or None."""
    parts = [_emptiness(f) for f in block.having]
    if any(p is None for p in parts):
        return None
    combine = all if block.having_match == "all" else any
    return combine(p[0] for p in parts), combine(p[1] for p in parts)


def _agg_pred(ctx, aggs, flt):
    """One condition over a non-empty record set; `aggs` maps name -> SQL expression
    ("avg" -> (sum, count) expressions)."""
    if flt.agg == "avg":
        total, count = aggs["avg"]
        if flt.op == "is_empty":
            return FALSE
        if flt.op == "is_not_empty":
            return TRUE
        parts = []
        # exact quotient: lo <= sum/count <=> sum >= lo*count (count > 0)
        if flt.from_ is not None:
            parts.append(total >= count * _param(int(flt.from_ * 100)))
        if flt.to is not None:
            parts.append(total <= count * _param(int(flt.to * 100)))
        return Expr(functools.reduce(operator.and_, parts))
    col = aggs[flt.agg]
    if flt.op == "is_empty":
        return Expr(col.is_null())
    if flt.op == "is_not_empty":
        return Expr(col.is_null(False))
    return Expr(_positive(ctx, col, AGG_KINDS[flt.agg], flt))


def _having(ctx, block, aggs):
    preds = [_agg_pred(ctx, aggs, f) for f in block.having]
    return all_of(preds) if block.having_match == "all" else any_of(preds)


def _render_plain(pred):
    """Render a predicate that holds no member sets (aggregate conditions)."""
    if pred is TRUE:
        return pw.SQL("1 = 1")
    if pred is FALSE:
        return pw.SQL("1 = 0")
    if isinstance(pred, Expr):
        return pred.expr
    parts = [_render_plain(i) for i in pred.items]
    return functools.reduce(operator.and_ if pred.op == "and" else operator.or_, parts)


# --- blocks -------------------------------------------------------------------


def _combine_filters(match, preds):
    if not preds:
        return TRUE
    return all_of(preds) if match == "all" else any_of(preds)


def _customer_filter_preds(ctx, block):
    preds = []
    for flt in block.filters:
        info = ctx.catalogue.field("customer", flt.field)
        if flt.field == "age":
            preds.append(_age_pred(ctx, flt))
        else:
            preds.append(_filter_pred(ctx, _customer_source(ctx, flt.field, info), flt, info))
    return preds


def _customer_block(ctx, block):
    return _combine_filters(block.match, _customer_filter_preds(ctx, block))


def _segment_filter_preds(ctx, block):
    def members(pred_fn):
        sm = SegmentMember.alias(ctx.name("sm"))
        segments = Segment.select(Segment.id).where(pred_fn(Segment.code))
        query = sm.select(sm.customer.alias("k")).where(sm.segment.in_(segments))
        return _scoped(ctx, query, sm.customer), sm.customer

    source = MultiSource(members, customers_only=True, kind="code")
    info = ctx.catalogue.field("segment", "segment")
    return [_filter_pred(ctx, source, f, info) for f in block.filters]


def _segment_block(ctx, block):
    return _combine_filters(block.match, _segment_filter_preds(ctx, block))


def _stats_block(ctx, block):
    """Order block without filters: the per-customer rollup (a row = has orders)."""
    s = CustomerOrderStats.alias(ctx.name("st"))
    base = _scoped(ctx, s.select(s.customer.alias("k")), s.customer)
    # A row exists exactly for the customers with orders (rollups.py); testing
    # orders_count > 0 as well would cost a table read per row where an index
    # on the rollup alone answers (1M demo file, "three blocks with any":
    # 0.31 s -> 0.12 s CPU).
    if not block.having:
        return Member(base, unique=True, customers_only=True, key_col=s.customer)
    columns = [s.orders_count, s.total_cents, s.quantity, s.first_at, s.last_at]
    if not ctx.postgres:
        # Unary plus keeps SQLite off the rollup's single-column indexes:
        # without histograms it takes any range for selective, then reads a
        # row per match, while the narrow rollup scans whole in ~0.15 s at 1M
        # customers (3+ orders for 10,000+: 0.9 s through total_cents' index).
        columns = [pw.NodeList((pw.SQL("+"), c)) for c in columns]
    count, total, quantity, first_at, last_at = columns
    aggs = {
        "count": count,
        "sum": total,
        "quantity": quantity,
        "first_at": first_at,
        "last_at": last_at,
        "avg": (total, count),
    }
    having = _having(ctx, block, aggs)
    if _having_holds_when_empty(block):
        return ~Member(base.where(_render_plain(_not(having))), unique=True, customers_only=True, key_col=s.customer)
    return Member(base.where(_render_plain(having)), unique=True, customers_only=True, key_col=s.customer)


# Record fields whose included values start from an index of their own
# (order: (status_ci, customer), (shop, customer), order_item (product, order);
# deal: (pipeline, stage, customer); message: (kind, occurred_at),
# (mailing, kind); event: (event_type, customer); custom values: (field, value)).
_INDEXED_FIELDS = {
    "order": {"status", "shop", "product", "product_group"},
    "deal": {"pipeline", "stage", "stage_kind"},
    "message": {"kind", "mailing"},
    "event": {"event"},
}


def _index_driven(block):
    """Whether a filter every selected record must pass can start from an index
    other than the customer's (then SQLite builds the set once)."""
    if block.match == "any" and len(block.filters) > 1:
        return False
    return any(
        f.op == "in"
        and any(not c.exclude for c in f.values)
        and (f.field in _INDEXED_FIELDS.get(block.entity, ()) or f.field.startswith("custom."))
        for f in block.filters
    )


def _record_block(ctx, block):
    model, source_for, date_name, money_name = RECORDS[block.entity]
    if block.entity == "deal" and any(f.field == "pipeline" and f.op == "is_empty" for f in block.filters):
        # spec: "pipeline is empty" means customers with no deals at all
        d = Deal.alias(ctx.name("d"))
        return ~Member(
            _scoped(ctx, d.select(d.customer.alias("k")), d.customer),
            customers_only=True,
            record_table=True,
            correlated=lambda key: d.select(pw.SQL("1")).where(d.customer == key),
        )
    if block.entity == "order" and not block.filters and ctx.fast:
        return _stats_block(ctx, block)

    r = model.alias(ctx.name("r"))
    scope, where = _record_where(ctx, block, r)
    query = _scoped(ctx, r.select(r.customer.alias("k")), r.customer)
    query = scope.apply(query)
    if where is not None:
        query = query.where(where)

    def correlated(key):
        probe = scope.apply(r.select(pw.SQL("1")))
        return probe.where((r.customer == key) & where if where is not None else r.customer == key)

    records = Member(
        query, customers_only=True, correlated=correlated, record_table=True, prefer_exists=not _index_driven(block)
    )
    if not block.having:
        return records
    emptiness = _having_emptiness(block)
    if emptiness is not None:
        # e.g. "no order in 180 days" (count between 0 and 0): whether the
        # customer has some record, no grouping needed
        when_empty, when_any = emptiness
        if when_empty == when_any:
            return TRUE if when_empty else FALSE
        return records if when_any else ~records

    date_col = getattr(r, date_name)
    aggs = {"count": pw.fn.COUNT(pw.SQL("*")), "first_at": pw.fn.MIN(date_col), "last_at": pw.fn.MAX(date_col)}
    if money_name:
        aggs["sum"] = pw.fn.SUM(getattr(r, money_name))
        aggs["avg"] = (aggs["sum"], aggs["count"])
    query = query.group_by(r.customer)
    if block.entity == "order" and any(f.agg == "quantity" for f in block.having):
        # Items' quantity is a subquery per order: aggregate once per customer
        # in a derived table so conditions sharing it do not repeat it.
        oi = OrderItem.alias(ctx.name("q"))
        per_order = oi.select(pw.fn.COALESCE(pw.fn.SUM(oi.quantity), 0)).where(oi.order == r.id)
        columns = dict(aggs, quantity=pw.fn.SUM(per_order))
        needed = {f.agg for f in block.having}
        names = sorted((needed - {"avg"}) | ({"sum", "count"} if "avg" in needed else set()))
        grouped = query.select_extend(*[columns[n].alias("a_" + n) for n in names]).alias(ctx.name("g"))
        aggs = {n: getattr(grouped.c, "a_" + n) for n in names}
        if "avg" in needed:
            aggs["avg"] = (aggs["sum"], aggs["count"])
        having = _having(ctx, block, aggs)
        outer = pw.Select([grouped], [grouped.c.k])
        if _having_holds_when_empty(block):
            return ~Member(outer.where(_render_plain(_not(having))), unique=True)
        return Member(outer.where(_render_plain(having)), unique=True, customers_only=True)
    # GROUP BY ... HAVING, as one would write it by hand
    having = _having(ctx, block, aggs)
    if _having_holds_when_empty(block):
        return ~Member(query.having(_render_plain(_not(having))), unique=True)
    return Member(query.having(_render_plain(having)), unique=True, customers_only=True)


def _record_where(ctx, block, r):
    """The block's record filters over the record alias `r`: (the Scope holding
    the joins they need, the rendered condition or None)."""
    _model, source_for, _date, _money = RECORDS[block.entity]
    scope = Scope(ctx, r, r.id)
    preds = []
    for flt in block.filters:
        info = ctx.catalogue.field(block.entity, flt.field)
        preds.append(_filter_pred(ctx, source_for(ctx, r, flt.field, info), flt, info))
    return scope, scope.render(_combine_filters(block.match, preds))


def records_query(block, catalogue, *, at=None, tz="UTC", scope=None, id_range=None):
    """SELECT r.id, r.customer_id, r.<record date> of the records one record
    block's filters select (its `having` is not looked at), as (query, record
    alias). `scope`: customer ids whose records only are considered.
    `id_range`: (lo, hi) record ids, inclusive; the sets an order filter
    reads (items, custom values) are restricted to it too, so a walk over the
    orders by id ranges reads each set once in all (1M demo file, croissant
    orders in 20 ranges: 44 s -> a few s)."""
    model, _source, date_name, _money = RECORDS[block.entity]
    ctx = Ctx(today_at(at, tz), zone(tz), catalogue, is_postgres(), True)
    ctx.scope, ctx.id_range = scope, id_range
    r = model.alias(ctx.name("r"))
    render, where = _record_where(ctx, block, r)
    query = _scoped(ctx, render.apply(r.select(r.id, r.customer, getattr(r, date_name))), r.customer)
    query = _ranged(ctx, query, r.id)
    if where is not None:
        query = query.where(where)
    return query, r


def _ranged(ctx, query, record_col):
    """Restrict a set keyed by order id to `records_query`'s id range or, in a
    scoped compile, to the orders of the scoped customers: otherwise the whole
    set (every order with a croissant) is built to probe a customer's few
    orders (20k demo, one customer: 390 ms -> under 1 ms per product filter)."""
    if getattr(ctx, "id_range", None) is not None:
        return query.where(record_col.between(*ctx.id_range))
    if getattr(ctx, "scope", None) is not None:
        o = Order.alias(ctx.name("so"))
        return query.where(record_col.in_(o.select(o.id).where(o.customer.in_(ctx.scope))))
    return query


def _scoped(ctx, query, customer_col):
    """Restrict a record set to the re-checked customers (see compile_definition)."""
    if getattr(ctx, "scope", None) is None:
        return query
    return query.where(customer_col.in_(ctx.scope))


def _block_pred(ctx, block):
    if block.entity == "customer":
        return _customer_block(ctx, block)
    if block.entity == "segment":
        return _segment_block(ctx, block)
    return _record_block(ctx, block)


# --- entry points -------------------------------------------------------------


def zone(tz):
    """The zone `tz`; ValueError when unknown (the engine never guesses one)."""
    return localtime.zone(tz, strict=True)


def today_at(at, tz):
    """The evaluation date: `at` (aware, or naive UTC; default now) in the zone `tz`.

    A `datetime.date` is taken as the local date itself.
    """
    tz = zone(tz)
    if at is None:
        at = datetime.datetime.now(datetime.UTC)
    elif isinstance(at, datetime.datetime):
        if at.tzinfo is None:
            at = at.replace(tzinfo=datetime.UTC)
    elif isinstance(at, datetime.date):
        return at
    else:
        raise TypeError("at must be a datetime, a date or None")
    return at.astimezone(tz).date()


def ensure_definition(definition):
    if isinstance(definition, Definition):
        return definition
    return parse_definition(definition)


def compile_definition(definition, *, at=None, tz="UTC", fast=True, scope=None):
    """The predicate tree of a definition and its context (for the query builders).

    `scope`: a list of customer ids (real-time re-checks of a few customers):
    every record set is restricted to them, so nothing is aggregated for the
    other customers. The result is exact for customers in the scope only.
    """
    definition = ensure_definition(definition)
    cat = getattr(definition, "_catalogue", None) or load_catalogue()
    for block in definition.blocks:
        for flt in block.filters:
            if cat.field(block.entity, flt.field) is None:
                # the field was deleted since the definition was parsed
                raise DefinitionError(
                    [
                        {
                            "block": None,
                            "filter": None,
                            "agg": None,
                            "message": _("Unknown field “%(field)s”", field=flt.field),
                        }
                    ]
                )
    ctx = Ctx(today_at(at, tz), zone(tz), cat, is_postgres(), fast)
    ctx.scope = scope
    preds = [_block_pred(ctx, b) for b in definition.blocks]
    if not preds:
        pred = TRUE
    else:
        pred = all_of(preds) if definition.match == "all" else any_of(preds)
    return ctx, pred


def build_query(definition, *, at=None, tz="UTC", columns=None, fast=True, scope=None):
    """SELECT columns FROM customer WHERE <definition> (one query); with
    `scope` (customer ids, or a query of them), only those customers are considered."""
    ctx, pred = compile_definition(definition, at=at, tz=tz, fast=fast, scope=scope)
    render = Scope(ctx, Customer, Customer.id)
    where = render.render(pred)
    query = render.apply(Customer.select(*(columns or [Customer.id])))
    if where is not None:
        query = query.where(where)
    if scope is not None:
        query = query.where(Customer.id.in_(scope if isinstance(scope, pw.Node) else list(scope)))
    return query


def _is_set(ctx, pred):
    """A positive set of existing customer ids SQL can read without the customer table."""
    return (
        isinstance(pred, Member)
        and not pred.negate
        and pred.customers_only
        and (ctx.postgres or not pred.prefer_exists)
    )


def _id_set_query(ctx, pred):
    """Distinct customer ids (column `k`) of `pred` without scanning the customer
    table, when its shape allows; else None.

    One positive set is read as is; an OR with positive sets is a UNION of those
    sets and one customer scan for the rest. Reading customer rows only to
    learn that they exist costs a row lookup per member (measured on the 1M
    demo SQLite file: listing 305,000 rollup members 5.2 s through the customer
    table, 0.7 s from the set).
    """
    if _is_set(ctx, pred):
        return pred.query if pred.unique else pred.query.distinct()
    if isinstance(pred, Bool) and pred.op == "or" and any(_is_set(ctx, i) for i in pred.items):
        parts = [i.query for i in pred.items if _is_set(ctx, i)]
        rest = [i for i in pred.items if not _is_set(ctx, i)]
        if rest:
            scope = Scope(ctx, Customer, Customer.id)
            where = scope.render(any_of(rest))
            parts.insert(0, scope.apply(Customer.select(Customer.id.alias("k"))).where(where))
        return functools.reduce(operator.or_, parts)  # UNION: distinct
    return None


def _complement_count(ctx, pred):
    """COUNT(customers) - COUNT(complement) when `pred` is the exact complement of
    a predicate that is counted without visiting every customer, else None.

    "Everyone but Москва" counts the customers of Москва through the city
    index instead of testing every other customer; "never ordered" counts the
    rollup's rows instead of probing it per customer (1M demo file under load:
    1.77 s and 4.15 s before).
    """
    if isinstance(pred, Member) and pred.negate and pred.customers_only and pred.unique:
        part = pw.Select([pred.query.alias(ctx.name("c"))], [pw.fn.COUNT(pw.SQL("*"))])
    elif isinstance(pred, Expr) and pred.complement is not None:
        part = Customer.select(pw.fn.COUNT(pw.SQL("*"))).where(pred.complement.expr)
    else:
        return None
    total = Customer.select(pw.fn.COUNT(pw.SQL("*")))
    return pw.Select(columns=[pw.NodeList((total, pw.SQL("-"), part))]).bind(database)


def count_query(definition, *, at=None, tz="UTC", fast=True):
    """SELECT COUNT(*) of the definition's customers (one query)."""
    ctx, pred = compile_definition(definition, at=at, tz=tz, fast=fast)
    ids = _id_set_query(ctx, pred)
    if ids is not None:
        return pw.Select([ids.alias(ctx.name("c"))], [pw.fn.COUNT(pw.SQL("*"))]).bind(database)
    if pred is FALSE:
        return Customer.select(pw.fn.COUNT(pw.SQL("*"))).where(pw.SQL("1 = 0"))
    complement = _complement_count(ctx, pred)
    if complement is not None:
        return complement
    scope = Scope(ctx, Customer, Customer.id)
    where = scope.render(pred)
    if scope.probed:
        # Correlated probes walk (customer_id, ...) indexes of record tables:
        # visited in customer id order they read those indexes in order. A bare
        # COUNT(*) lets SQLite scan the narrowest covering index instead
        # (created_at), whose ids come in random order, one random page read
        # per probe (1M demo file, "no order in 180 days": count 2.75 s, list
        # 0.85 s). So a count is the list's own query, counted.
        ids = scope.apply(Customer.select(Customer.id)).where(where).order_by(Customer.id)
        return pw.Select([ids.alias(ctx.name("c"))], [pw.fn.COUNT(pw.SQL("*"))]).bind(database)
    query = scope.apply(Customer.select(pw.fn.COUNT(pw.SQL("*"))))
    if where is not None:
        query = query.where(where)
    return query


def ids_query(definition, *, at=None, tz="UTC", fast=True):
    """SELECT the definition's customer ids ORDER BY id (one query), for streaming."""
    ctx, pred = compile_definition(definition, at=at, tz=tz, fast=fast)
    ids = _id_set_query(ctx, pred)
    if ids is not None:
        alias = ids.alias(ctx.name("c"))
        return pw.Select([alias], [alias.c.k]).order_by(alias.c.k).bind(database)
    scope = Scope(ctx, Customer, Customer.id)
    where = scope.render(pred)
    query = scope.apply(Customer.select(Customer.id))
    if where is not None:
        query = query.where(where)
    return query.order_by(Customer.id)


# --- explanations: the same predicates, for one customer ----------------------


def _holds(expr):
    """1 where a rendered predicate holds as a WHERE takes it (NULL fails), else 0."""
    if expr is None:
        return pw.Value(1)
    return pw.Case(None, [(expr, 1)], 0)


def _no_deals_block(block):
    return block.entity == "deal" and any(f.field == "pipeline" and f.op == "is_empty" for f in block.filters)


def _record_facts(ctx, block, customer_id):
    """A record block's facts for one customer: how many of their records there
    are and pass each filter, then the aggregates over the records passing the
    block's filters (R) and whether each `having` condition holds over R."""
    model, source_for, date_name, money_name = RECORDS[block.entity]
    r = model.alias(ctx.name("r"))
    scope = Scope(ctx, r, r.id)
    columns = [pw.fn.COUNT(pw.SQL("*"))]
    for flt in block.filters:
        info = ctx.catalogue.field(block.entity, flt.field)
        columns.append(
            pw.fn.SUM(_holds(scope.render(_filter_pred(ctx, source_for(ctx, r, flt.field, info), flt, info))))
        )
    row = scope.apply(r.select(*columns)).where(r.customer == customer_id).tuples().get()
    total, passing = row[0], [int(n or 0) for n in row[1:]]
    facts = {"records": total, "filters": []}
    for flt, n in zip(block.filters, passing, strict=True):
        if _no_deals_block(block) and flt.field == "pipeline":
            # spec: "pipeline is empty" means no deals at all
            facts["filters"].append({"holds": total == 0, "records": total})
        else:
            facts["filters"].append({"holds": n > 0, "records": n})
    if _no_deals_block(block):
        return facts
    r = model.alias(ctx.name("r"))
    scope, where = _record_where(ctx, block, r)
    date_col = getattr(r, date_name)
    aggs = {"count": pw.fn.COUNT(pw.SQL("*")), "first_at": pw.fn.MIN(date_col), "last_at": pw.fn.MAX(date_col)}
    if money_name:
        aggs["sum"] = pw.fn.SUM(getattr(r, money_name))
        aggs["avg"] = (aggs["sum"], aggs["count"])
    if block.entity == "order":
        oi = OrderItem.alias(ctx.name("q"))
        aggs["quantity"] = pw.fn.SUM(oi.select(pw.fn.COALESCE(pw.fn.SUM(oi.quantity), 0)).where(oi.order == r.id))
    names = [n for n in ("count", "sum", "quantity", "first_at", "last_at") if n in aggs]
    columns = [aggs[n] for n in names] + [_holds(_render_plain(_agg_pred(ctx, aggs, f))) for f in block.having]
    query = scope.apply(r.select(*columns)).where(r.customer == customer_id)
    if where is not None:
        query = query.where(where)
    row = query.tuples().get()
    values = dict(zip(names, row[: len(names)], strict=True))
    count = values["count"]
    for name in ("sum", "quantity"):
        if name in values:
            values[name] = int(values[name] or 0)
    facts["aggregates"] = values
    # over no records the compiler decides the conditions at compile time: so here
    facts["having"] = [
        bool(flag) if count else _holds_when_empty(f) for f, flag in zip(block.having, row[len(names) :], strict=True)
    ]
    return facts


def explain_query(definition, customer_id, *, at=None, tz="UTC"):
    """Whether one customer passes the definition, each block and each filter,
    decided by the very predicates the compiler renders for a whole run, over
    that customer alone (compiled with `scope=[customer_id]`); None when there
    is no such customer.

    {"holds": bool, "blocks": [{"holds": bool, "filters": [{"holds": bool,
    "records": n (record blocks: how many of the customer's records pass)}],
    "records": n, "aggregates": {"count", "sum" (cents), "quantity",
    "first_at", "last_at"}, "having": [bool]}]}. A record filter "holds" when
    some record passes it; the block holds when some record passes them all
    (or, with `having`, when its conditions hold over those records)."""
    definition = ensure_definition(definition)
    ctx, pred = compile_definition(definition, at=at, tz=tz, scope=[customer_id])
    scope = Scope(ctx, Customer, Customer.id)
    columns = [_holds(scope.render(pred))]
    shape = []
    for block in definition.blocks:
        columns.append(_holds(scope.render(_block_pred(ctx, block))))
        if block.entity == "customer":
            preds = _customer_filter_preds(ctx, block)
        elif block.entity == "segment":
            preds = _segment_filter_preds(ctx, block)
        else:
            preds = []
        columns.extend(_holds(scope.render(p)) for p in preds)
        shape.append(len(preds))
    row = scope.apply(Customer.select(*columns)).where(Customer.id == customer_id).tuples().first()
    if row is None:
        return None
    flags = iter(bool(v) for v in row)
    result = {"holds": next(flags), "blocks": []}
    for block, n in zip(definition.blocks, shape, strict=True):
        item = {"holds": next(flags)}
        if block.entity in RECORDS:
            item.update(_record_facts(ctx, block, customer_id))
        else:
            item["filters"] = [{"holds": next(flags)} for _i in range(n)]
        result["blocks"].append(item)
    return result
