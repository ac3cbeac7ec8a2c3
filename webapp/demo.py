"""Deterministic demo data (`flask demo-data --customers N [--seed S]`).

The shops of the seed documents in one customer base: a pet food shop (cat and
dog food, urinary care), a bakery (croissants, coffee), a tea shop, a tour
agency (customer field "Favourite destination"), a gym ("Memberships" deals
with a "Membership type") and wholesale deals with companies; two shops,
managers, two years of email and SMS mailings. Names and cities are Russian,
English and Vietnamese.

Same seed, size and day -> identical data. Dates are laid out backwards from
the day of the load (`today`), so "ordered in the last 30 days" means something
whenever the demo is loaded; pass `today` to pin them.

Speed: rows are built as plain tuples from precomputed tables and written in
batches (executemany on SQLite, COPY text on PostgreSQL) inside one
transaction, with the secondary indexes (and on PostgreSQL the foreign keys)
of the loaded tables dropped for the load and recreated from their saved
definitions at the end. From PARALLEL_FROM customers a child process builds
the rows while this one writes them. The order rollup is computed while the
orders are built; it equals what `rollups.rebuild_order_stats()` gives (tests
check this). Measured figures: bench/RESULTS.md, "Demo data".
"""

import datetime
import multiprocessing
import random
import time
import traceback
from queue import Empty

import click
import peewee as pw
from flask.cli import with_appcontext

from .console import ProgressBar
from .db import database, is_postgres
from .fields.service import create_field, get_field
from .i18n import _
from .models import Customer, CustomValue, EventType, Mailing, Pipeline, Product, ProductGroup, Shop, Stage, Tag, User
from .sql import param, placeholders, q
from .text import fold, translit

CHUNK = 2000  # customers per batch: ~20k orders, ~26k items
PARALLEL_FROM = 20000  # customers; below, a second process costs more than it saves

# --- the catalogue ------------------------------------------------------------

SHOPS = ("Online store", "Nevsky store")
ONLINE, NEVSKY = 0, 1

# (group path, [(sku, name, price in roubles, quantities a line usually has)])
CATALOGUE = [
    (
        "Pet food/Cat food/Urinary care",
        [
            ("PF-CU-001", "Royal Canin Urinary S/O, dry, 1.5 kg", 2390, (1, 1, 1, 2)),
            ("PF-CU-002", "Hill's Prescription Diet c/d Multicare, 1.5 kg", 2890, (1, 1, 2)),
            ("PF-CU-003", "Purina Pro Plan Veterinary Diets UR, 1.5 kg", 2150, (1, 1, 2)),
            ("PF-CU-004", "Monge VetSolution Urinary Struvite, wet, 100 g", 210, (4, 6, 12)),
        ],
    ),
    (
        "Pet food/Cat food/Dry food",
        [
            ("PF-CD-001", "Whiskas, chicken, 1.9 kg", 690, (1, 1, 2)),
            ("PF-CD-002", "Purina ONE Sterilised, 1.5 kg", 890, (1, 1, 2)),
            ("PF-CD-003", "Brit Care Cat Sterilised, 2 kg", 1490, (1,)),
            ("PF-CD-004", "Acana Wild Prairie Cat, 1.8 kg", 3290, (1,)),
        ],
    ),
    (
        "Pet food/Cat food/Wet food",
        [
            ("PF-CW-001", "Felix, pouches in jelly, 85 g", 45, (6, 12, 24)),
            ("PF-CW-002", "Sheba, chicken, 85 g", 69, (4, 8, 12)),
        ],
    ),
    (
        "Pet food/Dog food",
        [
            ("PF-DG-001", "Pedigree Adult, beef, 2.2 kg", 790, (1, 1, 2)),
            ("PF-DG-002", "Royal Canin Medium Adult, 3 kg", 2790, (1,)),
            ("PF-DG-003", "Acana Puppy Recipe, 2 kg", 2990, (1,)),
            ("PF-DG-004", "Chappi, meat abundance, 2.5 kg", 590, (1, 2)),
        ],
    ),
    (
        "Pet food/Treats",
        [
            ("PF-TR-001", "Dental sticks for dogs, 7 pcs", 320, (1, 2)),
            ("PF-TR-002", "Dreamies cat treats, 60 g", 110, (1, 2, 3)),
        ],
    ),
    (
        "Bakery/Croissants",
        [
            ("BK-CR-001", "Butter croissant", 150, (1, 1, 2, 4)),
            ("BK-CR-002", "Almond croissant", 220, (1, 1, 2)),
            ("BK-CR-003", "Chocolate croissant", 190, (1, 1, 2)),
            ("BK-CR-004", "Круассан с ветчиной и сыром", 260, (1, 1, 2)),
        ],
    ),
    (
        "Bakery/Coffee",
        [
            ("BK-CF-001", "Cappuccino, 300 ml", 220, (1, 1, 1, 2)),
            ("BK-CF-002", "Latte, 400 ml", 250, (1, 1, 2)),
            ("BK-CF-003", "Americano, 300 ml", 180, (1, 1, 2)),
            ("BK-CF-004", "Cà phê sữa đá", 200, (1, 1, 2)),
            ("BK-CF-005", "Coffee beans Brazil Santos, 250 g", 690, (1,)),
        ],
    ),
    (
        "Bakery/Bread",
        [
            ("BK-BR-001", "Бородинский хлеб", 90, (1, 1, 2)),
            ("BK-BR-002", "Sourdough loaf", 290, (1,)),
        ],
    ),
    (
        "Tea/Chinese tea",
        [
            ("TE-CN-001", "Da Hong Pao, 50 g", 650, (1, 1, 2)),
            ("TE-CN-002", "Shu Puerh, 100 g", 890, (1, 1, 2)),
            ("TE-CN-003", "Tie Guan Yin, 50 g", 590, (1, 2)),
        ],
    ),
    (
        "Tea/Green tea",
        [
            ("TE-GR-001", "Sencha, 100 g", 490, (1, 1, 2)),
            ("TE-GR-002", "Trà xanh Thái Nguyên, 100 g", 390, (1, 2)),
            ("TE-GR-003", "Jasmine green tea, 100 g", 450, (1, 2)),
        ],
    ),
]

# What each kind of customer buys: (group path prefix, weight); orders a year;
# line counts an order usually has.
PERSONAS = {
    "cat_urinary": (
        [
            ("Pet food/Cat food/Urinary care", 70),
            ("Pet food/Cat food/Wet food", 10),
            ("Pet food/Treats", 8),
            ("Pet food/Cat food/Dry food", 7),
            ("Bakery", 5),
        ],
        7.4,
        (1, 1, 1, 1, 2),
    ),
    "cat": (
        [
            ("Pet food/Cat food/Dry food", 50),
            ("Pet food/Cat food/Wet food", 30),
            ("Pet food/Treats", 10),
            ("Pet food/Cat food/Urinary care", 4),
            ("Tea", 6),
        ],
        6.4,
        (1, 1, 1, 1, 2),
    ),
    "dog": ([("Pet food/Dog food", 80), ("Pet food/Treats", 15), ("Bakery/Coffee", 5)], 5.5, (1, 1, 1, 1, 2)),
    "bakery": ([("Bakery/Croissants", 45), ("Bakery/Coffee", 40), ("Bakery/Bread", 15)], 17.5, (1, 1, 1, 2)),
    "tea": ([("Tea/Chinese tea", 55), ("Tea/Green tea", 35), ("Bakery/Croissants", 10)], 4.6, (1, 1, 1, 1, 2)),
    "mixed": ([("Pet food", 35), ("Bakery", 40), ("Tea", 25)], 8.3, (1, 1, 1, 2)),
    "wholesale": ([("Pet food", 50), ("Tea", 30), ("Bakery/Coffee", 20)], 9.2, (2, 3, 3, 4)),
}
PERSONA_WEIGHTS = [("cat_urinary", 9), ("cat", 16), ("dog", 17), ("bakery", 31), ("tea", 11), ("mixed", 16)]
PERSONA_TAGS = {"cat_urinary": "cat owner", "cat": "cat owner", "dog": "dog owner", "bakery": "coffee lover"}

ORDER_STATUSES = [("complete", 925), ("cancelled", 55), ("returned", 20)]
RECENT_STATUSES = ("new", "new", "assembling", "delivering", "complete")
DELIVERY = [("courier", 5), ("pickup", 3), ("post", 2)]

# --- people -------------------------------------------------------------------

RU_MALE = [
    "Александр",
    "Дмитрий",
    "Максим",
    "Сергей",
    "Андрей",
    "Алексей",
    "Иван",
    "Михаил",
    "Николай",
    "Павел",
    "Евгений",
    "Артём",
    "Василий",
    "Олег",
    "Юрий",
    "Кирилл",
]
RU_FEMALE = [
    "Анна",
    "Мария",
    "Елена",
    "Ольга",
    "Наталья",
    "Татьяна",
    "Екатерина",
    "Ирина",
    "Светлана",
    "Юлия",
    "Анастасия",
    "Дарья",
    "Ксения",
    "Алёна",
    "Полина",
    "Вера",
]
RU_LAST = [
    ("Иванов", "Иванова"),
    ("Смирнов", "Смирнова"),
    ("Кузнецов", "Кузнецова"),
    ("Попов", "Попова"),
    ("Васильев", "Васильева"),
    ("Петров", "Петрова"),
    ("Соколов", "Соколова"),
    ("Михайлов", "Михайлова"),
    ("Новиков", "Новикова"),
    ("Фёдоров", "Фёдорова"),
    ("Морозов", "Морозова"),
    ("Волков", "Волкова"),
    ("Лебедев", "Лебедева"),
    ("Козлов", "Козлова"),
    ("Орлов", "Орлова"),
    ("Белов", "Белова"),
    ("Жуковский", "Жуковская"),
    ("Соловьёв", "Соловьёва"),
]
EN_MALE = [
    "James",
    "John",
    "Robert",
    "Michael",
    "David",
    "William",
    "Thomas",
    "Daniel",
    "Oliver",
    "Harry",
    "George",
    "Jack",
]
EN_FEMALE = [
    "Mary",
    "Emma",
    "Olivia",
    "Sophie",
    "Emily",
    "Charlotte",
    "Jessica",
    "Sarah",
    "Amelia",
    "Grace",
    "Lucy",
    "Hannah",
]
EN_LAST = [
    (n, n)
    for n in (
        "Smith",
        "Johnson",
        "Williams",
        "Brown",
        "Jones",
        "Taylor",
        "Wilson",
        "Evans",
        "Walker",
        "Wright",
        "Clarke",
        "O'Brien",
        "Murphy",
        "Carter",
    )
]
VI_MALE = ["Minh", "Huy", "Khoa", "Dũng", "Tuấn", "Long", "Quang", "Hùng", "Đức Anh", "Bảo", "Phúc", "Thành"]
VI_FEMALE = ["Lan", "Hương", "Linh", "Trang", "Mai", "Ngọc", "Thảo", "Hà", "Thu Hương", "Minh Anh", "Phương", "Yến"]
VI_LAST = [
    (n, n)
    for n in (
        "Nguyễn",
        "Trần",
        "Lê",
        "Phạm",
        "Hoàng",
        "Huỳnh",
        "Phan",
        "Vũ",
        "Võ",
        "Đặng",
        "Bùi",
        "Đỗ",
        "Hồ",
        "Ngô",
        "Dương",
        "Lý",
    )
]

COMPANY_CORES = [
    "Вектор",
    "Северный ветер",
    "Лапки",
    "Хвостики",
    "Чайная традиция",
    "Пекарня №1",
    "Northwind",
    "Blue Harbour",
    "Green Leaf",
    "Happy Paws",
    "Morning Bakery",
    "Sao Mai",
    "Hoa Sen",
    "Phương Nam",
    "Thú Cưng Việt",
    "Bình Minh",
]
COMPANY_FORMS = {
    "ru": ("ООО «%s»", "АО «%s»", "ИП %s"),
    "en": ("%s Ltd", "%s Trading", "%s Inc."),
    "vi": ("Công ty TNHH %s", "Công ty CP %s", "Cửa hàng %s"),
}

# (city, country, weight)
CITIES = {
    "ru": [
        ("Москва", "Russia", 30),
        ("Санкт-Петербург", "Russia", 34),
        ("Новосибирск", "Russia", 5),
        ("Екатеринбург", "Russia", 6),
        ("Казань", "Russia", 6),
        ("Нижний Новгород", "Russia", 4),
        ("Краснодар", "Russia", 5),
        ("Сочи", "Russia", 4),
        ("Калининград", "Russia", 3),
        ("Алматы", "Kazakhstan", 3),
    ],
    "en": [
        ("London", "United Kingdom", 40),
        ("Manchester", "United Kingdom", 15),
        ("Birmingham", "United Kingdom", 10),
        ("Edinburgh", "United Kingdom", 10),
        ("New York", "United States", 15),
        ("Dublin", "Ireland", 10),
    ],
    "vi": [
        ("Hồ Chí Minh", "Vietnam", 40),
        ("Hà Nội", "Vietnam", 35),
        ("Đà Nẵng", "Vietnam", 10),
        ("Hải Phòng", "Vietnam", 6),
        ("Nha Trang", "Vietnam", 5),
        ("Cần Thơ", "Vietnam", 4),
    ],
}
EMAIL_DOMAINS = {
    "ru": ("mail.ru", "yandex.ru", "gmail.com", "bk.ru"),
    "en": ("gmail.com", "outlook.com", "yahoo.com", "icloud.com"),
    "vi": ("gmail.com", "gmail.com", "yahoo.com.vn", "outlook.com"),
}
PHONE_FORMATS = {"ru": "+79%09d", "en": "+447%09d", "vi": "+849%08d"}
PHONE_RANGE = {"ru": 10**9, "en": 10**9, "vi": 10**8}
SOURCES = {
    "ru": [
        ("website", 25),
        ("instagram", 15),
        ("vk", 15),
        ("telegram", 10),
        ("offline", 20),
        ("referral", 10),
        ("yandex direct", 5),
    ],
    "en": [("website", 35), ("instagram", 15), ("facebook", 10), ("google ads", 15), ("offline", 15), ("referral", 10)],
    "vi": [("website", 20), ("facebook", 25), ("zalo", 25), ("instagram", 10), ("offline", 10), ("referral", 10)],
}
LOCALES = [("ru", 55), ("vi", 25), ("en", 20)]

MANAGERS = [  # (email, name, locale they serve)
    ("anna.smirnova@segmento.example", "Анна Смирнова", "ru"),
    ("dmitry.kozlov@segmento.example", "Дмитрий Козлов", "ru"),
    ("hoa.nguyen@segmento.example", "Nguyễn Thị Hoa", "vi"),
    ("emily.carter@segmento.example", "Emily Carter", "en"),
]

TAGS = [
    "newsletter",
    "vip",
    "wholesale",
    "cat owner",
    "dog owner",
    "coffee lover",
    "постоянный клиент",
    "gym",
    "traveller",
]

# --- custom fields, pipelines, mailings ---------------------------------------

DESTINATIONS = ["Vietnam", "Thailand", "Turkey", "Egypt", "Georgia", "Italy", "Sochi"]
DESTINATION_WEIGHTS = {
    "ru": (10, 20, 30, 20, 8, 5, 7),
    "en": (15, 15, 15, 10, 5, 35, 5),
    "vi": (5, 40, 10, 5, 5, 30, 5),
}
MEMBERSHIP_TYPES = ["monthly", "quarterly", "annual"]
LOST_REASONS = ["price too high", "out of stock", "chose a competitor", "no answer"]

CUSTOM_FIELDS = [  # (entity, code, name, type, options)
    ("customer", "favourite_destination", "Favourite destination", "enum", DESTINATIONS),
    ("customer", "pets", "Pets", "integer", None),
    ("customer", "vip", "VIP", "boolean", None),
    ("customer", "discount", "Personal discount, %", "decimal", None),
    ("customer", "loyalty_card", "Loyalty card", "string", None),
    ("order", "delivery", "Delivery", "enum", [d for d, _w in DELIVERY]),
    ("deal", "membership_type", "Membership type", "enum", MEMBERSHIP_TYPES),
    ("deal", "lost_reason", "Lost reason", "enum", LOST_REASONS),
]

# (name, [(stage, kind)]): the first stages are the open funnel in order.
PIPELINES = [
    (
        "Memberships",
        [("New lead", "open"), ("Trial visit", "open"), ("Negotiation", "open"), ("Won", "won"), ("Lost", "lost")],
    ),
    (
        "Tours",
        [("Request", "open"), ("Offer sent", "open"), ("Booked", "open"), ("Paid", "won"), ("Cancelled", "lost")],
    ),
    (
        "Wholesale",
        [("Inquiry", "open"), ("Quote sent", "open"), ("Contract", "open"), ("Shipped", "won"), ("Lost", "lost")],
    ),
]
# Lost reasons differ by business: a sold-out tour is "out of stock" too.
LOST_REASON_WEIGHTS = {"Memberships": (50, 0, 25, 25), "Tours": (35, 20, 25, 20), "Wholesale": (30, 35, 25, 10)}
MEMBERSHIP_PRICES = {"monthly": 3500, "quarterly": 9000, "annual": 30000}

# Email campaigns of a year: (month, day, name with {year}, share of subscribers
# it went to). Black Friday falls on the fourth Friday of November.
EMAIL_CAMPAIGNS = [
    (1, 20, "Tết {year}: khuyến mãi", 0.26),
    (3, 3, "8 March {year}: gifts for her", 0.34),
    (4, 14, "Urinary care: new arrivals {year}", 0.15),
    (5, 19, "Summer tours {year}: Turkey and Egypt", 0.22),
    (7, 8, "Chinese tea tasting {year}", 0.15),
    (8, 28, "Gym: annual membership −20% ({year})", 0.19),
    (10, 6, "Croissant week {year}", 0.22),
    (11, 0, "Black Friday {year}", 0.45),
    (12, 12, "New Year {next_year}: gift ideas", 0.38),
    (2, 10, "Мы скучаем: скидка 15% ({year})", 0.11),
]
SMS_CAMPAIGNS = [
    (11, 0, "SMS: Black Friday {year}", 0.38),
    (6, 1, "SMS: bakery summer menu {year}", 0.22),
]
EVENT_TYPES = [
    ("website_visit", "Visited the website"),
    ("cart_abandoned", "Abandoned a cart"),
    ("app_installed", "Installed the mobile app"),
]

HISTORY_DAYS = 3 * 365  # customers arrive over three years
MAILING_DAYS = 2 * 365  # mailings over the last two years

# Columns written, in tuple order.
COLUMNS = {
    "customer": (
        "id",
        "external_id",
        "type",
        "first_name",
        "last_name",
        "company_name",
        "email",
        "phone",
        "gender",
        "birth_date",
        "birth_md",
        "city",
        "country",
        "source",
        "manager_id",
        "email_consent",
        "sms_consent",
        "created_at",
        "updated_at",
        "first_name_ci",
        "last_name_ci",
        "company_name_ci",
        "email_ci",
        "phone_ci",
        "city_ci",
        "country_ci",
        "source_ci",
    ),
    "customer_tag": ("customer_id", "tag_id"),
    "orders": ("id", "external_id", "customer_id", "ordered_at", "status", "status_ci", "shop_id", "total_cents"),
    "order_item": ("id", "order_id", "product_id", "quantity", "price_cents"),
    "customer_order_stats": ("customer_id", "orders_count", "total_cents", "quantity", "first_at", "last_at"),
    "deal": (
        "id",
        "external_id",
        "customer_id",
        "pipeline_id",
        "stage_id",
        "amount_cents",
        "manager_id",
        "created_at",
        "closed_at",
    ),
    "message_event": ("id", "customer_id", "channel", "kind", "mailing_id", "occurred_at"),
    "event_occurrence": ("id", "customer_id", "event_type_id", "occurred_at", "properties"),
    "custom_value": ("field_id", "record_id", "value_str", "value_ci", "value_num", "value_date", "value_bool"),
}
# Parents first, so foreign keys hold at every point of the load.
TABLES = (
    "customer",
    "customer_tag",
    "orders",
    "order_item",
    "customer_order_stats",
    "deal",
    "message_event",
    "event_occurrence",
    "custom_value",
)
SERIAL_TABLES = ("customer", "orders", "order_item", "deal", "message_event", "event_occurrence")


class DemoError(Exception):
    pass


def _expand(weighted, scale=1):
    """A list where each value appears `weight` times: uniform picks from it are weighted."""
    out = []
    for value, weight in weighted:
        out.extend([value] * (weight * scale))
    return out


def _ascii(text):
    """Latin letters for an email address: transliterated Cyrillic, Vietnamese without marks."""
    return "".join(ch for ch in translit(text) if ch.isalnum())


# --- the load -----------------------------------------------------------------


def generate(customers, seed=1, progress=None, today=None):
    """Load `customers` demo customers with everything around them; returns row counts.

    Needs a migrated database without customers (DemoError otherwise). Runs in
    one transaction: a failed load leaves nothing behind. `progress` is called
    as progress(stage, done, total). `today` (a date, default: today in UTC)
    is the day the data leads up to.

    The child process that builds the rows of large loads is started with
    multiprocessing's "spawn": a script calling this needs the usual
    `if __name__ == "__main__":` guard (the flask command and launcher have it).
    """
    if customers < 0:
        raise DemoError(_("The number of customers cannot be negative."))
    if Customer.select().exists():
        raise DemoError(_("The database already has customers."))
    today = today or datetime.datetime.now(datetime.UTC).date()
    report = progress or (lambda stage, done, total: None)
    loader = _PostgresLoader() if is_postgres() else _SqliteLoader()
    counts = {table: 0 for table in TABLES}
    loader.before()
    try:
        with database.atomic():
            report("catalogue", 0, 1)
            ref = _reference_data(today)
            # Values of records that no longer exist would attach to the new ones.
            CustomValue.delete().execute()
            report("catalogue", 1, 1)
            dropped = loader.drop_constraints(TABLES)
            report("customers", 0, customers)
            done = 0
            for count, payload in _batches(
                ref, seed, today, customers, loader.FORMAT, parallel=customers >= PARALLEL_FROM
            ):
                for table in TABLES:
                    rows, data = payload[table]
                    if rows:
                        loader.insert(table, COLUMNS[table], data)
                        counts[table] += rows
                done += count
                report("customers", done, customers)
            report("indexes", 0, len(dropped))
            loader.restore_constraints(dropped, lambda n: report("indexes", n, len(dropped)))
            loader.reset_sequences(SERIAL_TABLES)
    finally:
        loader.after()
    report("statistics", 0, 1)
    loader.analyze()
    report("statistics", 1, 1)
    counts.update(
        {"managers": len(ref["managers"]), "products": len(ref["products"]), "mailings": len(ref["mailings"])}
    )
    return counts


def _chunks(customers):
    for first in range(1, customers + 1, CHUNK):
        yield first, min(CHUNK, customers + 1 - first)


def _batches(ref, seed, today, customers, fmt, parallel):
    """(customer count, {table: (row count, data)}) for consecutive chunks of customers.

    With `parallel`, a child process builds the rows while this one writes
    them: the two halves of the work take about as long as each other, and
    the machine has two cores. Both ways give the same rows.
    """
    if not parallel:
        builder = _Builder(ref, seed, today)
        for first, count in _chunks(customers):
            yield count, _payload(builder.chunk(first, count), fmt)
        return
    context = multiprocessing.get_context("spawn")
    queue = context.Queue(maxsize=4)
    child = context.Process(
        target=_produce, args=(queue, ref, seed, today, customers, fmt), name="demo-data rows", daemon=True
    )
    child.start()
    try:
        while True:
            try:
                item = queue.get(timeout=1)
            except Empty:
                if not child.is_alive():
                    raise DemoError(
                        _("The process building the rows stopped (exit code %(code)s).", code=child.exitcode)
                    ) from None
                continue
            if item is None:
                break
            if isinstance(item, str):
                raise DemoError(item)
            yield item
    finally:
        if child.is_alive():
            child.terminate()
        child.join()


def _produce(queue, ref, seed, today, customers, fmt):
    """The child process of `_batches`: puts payloads, then None (or a traceback text)."""
    try:
        builder = _Builder(ref, seed, today)
        for first, count in _chunks(customers):
            queue.put((count, _payload(builder.chunk(first, count), fmt)))
        queue.put(None)
    except BaseException:  # noqa: BLE001 - the parent reports it
        queue.put(traceback.format_exc())


# COPY text lines of tables whose values are never null; the others go through _copy_line.
COPY_FORMATS = {
    "customer_tag": "%d\t%d\n",
    "orders": "%d\t%s\t%d\t%s\t%s\t%s\t%d\t%d\n",
    "order_item": "%d\t%d\t%d\t%d\t%d\n",
    "customer_order_stats": "%d\t%d\t%d\t%d\t%s\t%s\n",
    "message_event": "%d\t%d\t%s\t%s\t%d\t%s\n",
}


def _copy_line(row):
    # Generated text never holds tabs, newlines or backslashes (tests check),
    # so only nulls need COPY's escape.
    return "\t".join(["\\N" if value is None else str(value) for value in row]) + "\n"


def _payload(batch, fmt):
    """Rows as the loader writes them: tuples (executemany) or COPY text bytes."""
    if fmt == "rows":
        return {table: (len(rows), rows) for table, rows in batch.items()}
    payload = {}
    for table, rows in batch.items():
        line = COPY_FORMATS.get(table)
        text = "".join([line % row for row in rows] if line else [_copy_line(row) for row in rows])
        payload[table] = (len(rows), text.encode())
    return payload


class _SqliteLoader:
    """executemany in one transaction; secondary indexes rebuilt at the end.

    When the connection is not already inside a transaction (SQLite ignores
    these pragmas inside one), foreign key checks are off for the load and it
    uses a rollback journal instead of the WAL: pages added to a database are
    not journaled, so the data is written once instead of into the WAL and
    again at the checkpoint, and the index builds read it back through mmap.
    The journal still rolls a failed load back. Another connection holding
    the database open keeps it in WAL mode.
    """

    FORMAT = "rows"

    def before(self):
        self.restore = {}
        if not database.in_transaction():
            for pragma, value in (("foreign_keys", 0), ("synchronous", 0), ("mmap_size", 2**31)):
                self.restore[pragma] = database.execute_sql(f"PRAGMA {pragma}").fetchone()[0]
                database.execute_sql(f"PRAGMA {pragma} = {value}")
            mode = database.execute_sql("PRAGMA journal_mode").fetchone()[0]
            try:
                if database.execute_sql("PRAGMA journal_mode = delete").fetchone()[0] != mode:
                    self.restore["journal_mode"] = mode
            except pw.OperationalError:
                pass  # locked by another connection: load in WAL mode
        # Index builds sort in the page cache, with helper threads: give them room
        # for this load (both are per connection, restored afterwards).
        for pragma, value in (("cache_size", -524288), ("threads", 2)):
            self.restore[pragma] = database.execute_sql(f"PRAGMA {pragma}").fetchone()[0]
            database.execute_sql(f"PRAGMA {pragma} = {value}")

    def after(self):
        for pragma, value in self.restore.items():
            database.execute_sql(f"PRAGMA {pragma} = {value}")

    def drop_constraints(self, tables):
        indexes = database.execute_sql(
            f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({placeholders(len(tables))}) ORDER BY name",
            list(tables),
        ).fetchall()
        for name, _sql in indexes:
            database.execute_sql(f"DROP INDEX {q(name)}")
        return [sql for _name, sql in indexes]

    def restore_constraints(self, statements, done):
        for number, sql in enumerate(statements, 1):
            database.execute_sql(sql)
            done(number)

    def insert(self, table, columns, rows):
        sql = f"INSERT INTO {q(table)} ({', '.join(q(c) for c in columns)}) VALUES ({placeholders(len(columns))})"
        database.connection().executemany(sql, rows)

    def reset_sequences(self, tables):
        pass  # INTEGER PRIMARY KEY continues from the largest id

    def analyze(self):
        database.execute_sql("PRAGMA analysis_limit = 1000")
        database.execute_sql("ANALYZE")


class _PostgresLoader:
    """COPY in one transaction; secondary indexes and foreign keys dropped and re-added.

    Re-adding a foreign key checks all rows in one join, far cheaper than a
    trigger per copied row; both happen inside the transaction, so a failed
    load rolls back to the original schema.
    """

    FORMAT = "copy"

    def before(self):
        pass

    def after(self):
        pass

    def drop_constraints(self, tables):
        names = list(tables)
        p = param()
        foreign = database.execute_sql(
            f"SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) "
            f"FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
            f"WHERE c.contype = 'f' AND t.relname = ANY({p}) "
            f"AND t.relnamespace = current_schema()::regnamespace ORDER BY 1, 2",
            (names,),
        ).fetchall()
        indexes = database.execute_sql(
            f"SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
            f"JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
            f"WHERE t.relname = ANY({p}) AND t.relnamespace = current_schema()::regnamespace "
            f"AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid) "
            f"ORDER BY 1",
            (names,),
        ).fetchall()
        for table, name, _definition in foreign:
            database.execute_sql(f"ALTER TABLE {table} DROP CONSTRAINT {q(name)}")
        for name, _definition in indexes:
            database.execute_sql(f"DROP INDEX {q(name)}")
        return [definition for _name, definition in indexes] + [
            f"ALTER TABLE {table} ADD CONSTRAINT {q(name)} {definition}" for table, name, definition in foreign
        ]

    def restore_constraints(self, statements, done):
        database.execute_sql("SET LOCAL maintenance_work_mem = '512MB'")
        for number, sql in enumerate(statements, 1):
            database.execute_sql(sql)
            done(number)

    def insert(self, table, columns, data):
        sql = f"COPY {q(table)} ({', '.join(q(c) for c in columns)}) FROM STDIN"
        with database.cursor() as cursor, cursor.copy(sql) as copy:
            copy.write(data)

    def reset_sequences(self, tables):
        for table in tables:
            database.execute_sql(
                f"SELECT setval(pg_get_serial_sequence('{q(table)}', 'id'), MAX(id)) "
                f"FROM {q(table)} HAVING MAX(id) IS NOT NULL"
            )

    def analyze(self):
        # The planner needs row counts and value spreads of the new data at once;
        # autovacuum would get there, but only minutes later.
        database.execute_sql("ANALYZE " + ", ".join(q(t) for t in TABLES))


def _get_or_create(model, name, **extra):
    row = model.get_or_none(model.name_ci == fold(name))
    if row is None:
        row = model.create(name=name, **extra)
    return row


def _reference_data(today):
    """Managers, shops, catalogue, custom fields, pipelines, tags, mailings: found or created."""
    ref = {"managers": [], "manager_locale": []}
    for email, name, locale in MANAGERS:
        user = User.get_or_none(User.email_ci == fold(email))
        if user is None:
            # "!" matches no password hash: managers exist for assignment only.
            user = User.create(email=email, email_ci=fold(email), name=name, password_hash="!", role="manager")
        ref["managers"].append(user.id)
        ref["manager_locale"].append(locale)
    ref["shops"] = [_get_or_create(Shop, name).id for name in SHOPS]

    groups, products = {}, {}
    for path, items in CATALOGUE:
        parent = None
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            sub = "/".join(parts[:depth])
            if sub not in groups:
                group = ProductGroup.get_or_none(ProductGroup.path_ci == fold(sub))
                if group is None:
                    group = ProductGroup.create(parent=parent, name=parts[depth - 1], path=sub)
                groups[sub] = group
            parent = groups[sub]
        for sku, name, price, quantities in items:
            product = Product.get_or_none(Product.sku_ci == fold(sku))
            if product is None:
                product = Product.create(sku=sku, name=name, group=parent, price_cents=price * 100)
            products[sku] = (product.id, price * 100, path, quantities)
    ref["groups"] = {path: group.id for path, group in groups.items()}
    ref["products"] = products

    fields = {}
    for entity, code, name, type_, options in CUSTOM_FIELDS:
        field = get_field(entity, code)
        if field is None:
            field = create_field(entity, code, name, type_, options)
        elif field.type != type_:
            raise DemoError(
                _(
                    "The %(entity)s field “%(code)s” exists with the type %(type)s; the demo data needs %(needed)s.",
                    entity=entity,
                    code=code,
                    type=field.type,
                    needed=type_,
                )
            )
        fields[code] = field.id
    ref["fields"] = fields

    pipelines = {}
    for position, (name, stages) in enumerate(PIPELINES):
        pipeline = _get_or_create(Pipeline, name, position=position)
        ids = []
        for number, (stage_name, kind) in enumerate(stages):
            stage = Stage.get_or_none(Stage.pipeline == pipeline, Stage.name_ci == fold(stage_name))
            if stage is None:
                stage = Stage.create(pipeline=pipeline, name=stage_name, kind=kind, position=number)
            ids.append((stage.id, kind))
        pipelines[name] = (pipeline.id, ids)
    ref["pipelines"] = pipelines
    ref["tags"] = {name: _get_or_create(Tag, name).id for name in TAGS}
    ref["event_types"] = {}
    for code, name in EVENT_TYPES:
        event_type = EventType.get_or_none(EventType.code_ci == fold(code))
        if event_type is None:
            event_type = EventType.create(code=code, name=name)
        ref["event_types"][code] = event_type.id

    ref["mailings"] = []  # (day offset from today, id, channel, share), by date
    for channel, campaigns in (("email", EMAIL_CAMPAIGNS), ("sms", SMS_CAMPAIGNS)):
        for year in (today.year - 2, today.year - 1, today.year):
            for month, day, name, share in campaigns:
                if day == 0:  # the fourth Friday of the month
                    first = datetime.date(year, month, 1)
                    date = first + datetime.timedelta(days=(4 - first.weekday()) % 7 + 21)
                else:
                    date = datetime.date(year, month, day)
                days_ago = (today - date).days
                if not 0 < days_ago <= MAILING_DAYS:
                    continue
                name = name.format(year=year, next_year=year + 1)
                mailing = Mailing.get_or_none(Mailing.name_ci == fold(name))
                if mailing is None:
                    mailing = Mailing.create(
                        name=name, channel=channel, created_at=datetime.datetime.combine(date, datetime.time(9, 0))
                    )
                ref["mailings"].append((days_ago, mailing.id, channel, share))
    ref["mailings"].sort(key=lambda m: (-m[0], m[1]))
    return ref


class _Builder:
    """Rows for consecutive customers, from precomputed tables and one seeded generator."""

    def __init__(self, ref, seed, today):
        self.ref = ref
        self.rng = random.Random(seed)
        self.span = HISTORY_DAYS + 1  # day 0 .. day HISTORY_DAYS (= yesterday)
        start = today - datetime.timedelta(days=self.span)
        self.day_str = [(start + datetime.timedelta(days=d)).isoformat() for d in range(self.span)]
        # The seconds only make timestamps look less machine-made.
        self.minute_str = [" %02d:%02d:%02d" % (m // 60, m % 60, (m * 37) % 60) for m in range(1440)]
        hours = [
            (h, w) for h, w in zip(range(24), (0, 0, 0, 0, 0, 0, 1, 3, 8, 9, 7, 6, 7, 6, 5, 5, 6, 7, 9, 9, 8, 5, 3, 1))
        ]
        self.order_minutes = [h * 60 + m for h, w in hours for m in range(0, 60, 3) for _ in range(w)]
        self.mailing_minutes = [h * 60 + m for h in range(9, 12) for m in range(60)]
        self.next_order = self.next_item = self.next_deal = self.next_event = self.next_occ = 1

        self.fold = {}
        self.locales = _expand(LOCALES)
        self.people = {}
        for loc, male, female, last in (
            ("ru", RU_MALE, RU_FEMALE, RU_LAST),
            ("en", EN_MALE, EN_FEMALE, EN_LAST),
            ("vi", VI_MALE, VI_FEMALE, VI_LAST),
        ):
            self.people[loc] = {
                "male": [(n, self._f(n), _ascii(n)) for n in male],
                "female": [(n, self._f(n), _ascii(n)) for n in female],
                "last_male": [(m, self._f(m), _ascii(m)) for m, _f in last],
                "last_female": [(f, self._f(f), _ascii(f)) for _m, f in last],
                "cities": _expand(
                    [
                        ((city, self._f(city), country, self._f(country)), weight)
                        for city, country, weight in CITIES[loc]
                    ]
                ),
                "sources": _expand([((s, self._f(s)), w) for s, w in SOURCES[loc]]),
                "domains": EMAIL_DOMAINS[loc],
                "companies": [
                    (form % core, self._f(form % core), _ascii(core))
                    for form in COMPANY_FORMS[loc]
                    for core in COMPANY_CORES
                ],
                "managers": [mid for mid, ml in zip(ref["managers"], ref["manager_locale"]) if ml == loc],
                "destinations": _expand(list(zip(DESTINATIONS, DESTINATION_WEIGHTS[loc]))),
            }
        self.all_managers = ref["managers"]
        self.month_days = []  # (-MM-DD, MMDD) of a non-leap year
        day = datetime.date(2001, 1, 1)
        while day.year == 2001:
            self.month_days.append((day.strftime("-%m-%d"), day.month * 100 + day.day))
            day += datetime.timedelta(days=1)
        self.new_year_days = [md for md in self.month_days if md[1] >= 1226 or md[1] <= 107]
        self.leap_years = [y for y in range(1960, 2008) if y % 4 == 0]

        products = ref["products"]
        self.personas = {}
        for name, (weights, rate, lines) in PERSONAS.items():
            pool = []
            for prefix, weight in weights:
                matching = [p for p in products.values() if p[2] == prefix or p[2].startswith(prefix + "/")]
                for product_id, price, _path, quantities in matching:
                    scale = 10 if name == "wholesale" else 1
                    entry = (product_id, price, tuple(q * scale for q in quantities))
                    pool.extend([entry] * max(1, round(weight * 12 / len(matching))))
            self.personas[name] = (pool, rate, lines)
        self.persona_pool = _expand(PERSONA_WEIGHTS)
        self.statuses = _expand(ORDER_STATUSES)
        self.deliveries = [(d, d) for d in _expand(DELIVERY)]

    def _f(self, value):
        folded = self.fold.get(value)
        if folded is None:
            folded = self.fold[value] = fold(value)
        return folded

    def chunk(self, first, count):
        """The rows of customers first .. first+count-1 and everything they own."""
        ref, span, day_str, minute_str = self.ref, self.span, self.day_str, self.minute_str
        last_day = span - 1
        r = self.rng.random
        expo = self.rng.expovariate
        fields, tags, shops = ref["fields"], ref["tags"], ref["shops"]
        f_dest, f_pets, f_vip = fields["favourite_destination"], fields["pets"], fields["vip"]
        f_discount, f_card, f_delivery = fields["discount"], fields["loyalty_card"], fields["delivery"]
        t_newsletter, t_vip, t_wholesale = tags["newsletter"], tags["vip"], tags["wholesale"]
        t_regular, t_gym, t_traveller = tags["постоянный клиент"], tags["gym"], tags["traveller"]
        order_minutes, n_order_minutes = self.order_minutes, len(self.order_minutes)
        statuses, n_statuses = self.statuses, len(self.statuses)
        deliveries, n_deliveries = self.deliveries, len(self.deliveries)
        online, nevsky = shops[ONLINE], shops[NEVSKY]
        recent_from = day_str[last_day - 3]  # orders still on their way
        # Delivery is recorded on the online orders since the new checkout, four months ago.
        delivery_from = day_str[last_day - 120]
        month_days, new_year_days, leap_years = self.month_days, self.new_year_days, self.leap_years
        locales, persona_pool, personas, people = self.locales, self.persona_pool, self.personas, self.people
        all_managers = self.all_managers

        out = {table: [] for table in TABLES}
        add_customer, add_tag = out["customer"].append, out["customer_tag"].append
        add_order, add_item = out["orders"].append, out["order_item"].append
        add_stats, add_value = out["customer_order_stats"].append, out["custom_value"].append
        oid, iid = self.next_order, self.next_item

        for cid in range(first, first + count):
            special = cid % 97  # a few guaranteed edge cases at any size
            loc = locales[int(r() * 100)]
            p = people[loc]
            company = r() < 0.10 and special != 5 and special != 11
            if company:
                persona = "wholesale"
                first_name = last_name = first_ci = last_ci = gender = None
                cname, company_ci, handle = p["companies"][int(r() * len(p["companies"]))]
                local = "info"
                birth = birth_md = None
            else:
                persona = persona_pool[int(r() * len(persona_pool))]
                cname = company_ci = None
                g = r()
                gender = "female" if g < 0.52 else "male" if g < 0.96 else None
                key = "male" if gender == "male" else "female"
                first_name, first_ci, fa = p[key][int(r() * len(p[key]))]
                lastkey = "last_" + key
                last_name, last_ci, la = p[lastkey][int(r() * len(p[lastkey]))]
                local = fa + "." + la
                handle = None
                if special == 5 or r() < 0.001:
                    birth_md = 229
                    birth = "%d-02-29" % leap_years[int(r() * len(leap_years))]
                elif special == 11 or r() < 0.78:
                    days_pool = new_year_days if special == 11 else month_days
                    md, birth_md = days_pool[int(r() * len(days_pool))]
                    birth = "%d%s" % (int(1958 + 24 * (r() + r())), md)
                else:
                    birth = birth_md = None

            if special == 17 or r() < 0.14:
                email = email_ci = None
            else:
                domain = p["domains"][int(r() * 4)]
                if company:
                    email = "%s%d@%s.example" % (local, cid, handle[:24] or "company")
                else:
                    email = "%s%d@%s" % (local, cid, domain)
                email_ci = email
            if r() < 0.12:
                phone = None
            else:
                phone = PHONE_FORMATS[loc] % int(r() * PHONE_RANGE[loc])
            if special == 23 or r() < 0.08:
                city = city_ci = None
                country, country_ci = (None, None) if r() < 0.5 else p["cities"][0][2:]
            else:
                city, city_ci, country, country_ci = p["cities"][int(r() * len(p["cities"]))]
            source, source_ci = p["sources"][int(r() * len(p["sources"]))] if r() < 0.9 else (None, None)
            managers = p["managers"]
            manager = (
                (managers[int(r() * len(managers))] if r() < 0.85 else all_managers[int(r() * len(all_managers))])
                if r() < 0.88
                else None
            )
            email_consent = 1 if email is not None and r() < 0.7 else 0
            sms_consent = 1 if phone is not None and r() < 0.4 else 0

            # Arrivals grow over the years: more recent customers than old ones.
            c_day = last_day - int(HISTORY_DAYS * (1 - r() ** 0.75))
            created_at = day_str[c_day] + minute_str[int(r() * 1440)]
            updated_at = created_at

            # --- orders
            pool, rate, lines = personas[persona]
            n_pool, n_lines = len(pool), len(lines)
            lo = c_day + 1
            window = last_day - lo + 1
            if window > 0 and r() < 0.35:  # lapsed: stopped buying at some point
                window = 1 + int(r() * window)
            if special == 29 or window <= 0 or r() < 0.03:
                n_orders = 0
            else:
                n_orders = int(rate * window / 365 * expo(1.0) + r())
                if n_orders > 600:
                    n_orders = 600
            # The store is on Nevsky Prospekt: customers from elsewhere mostly buy online.
            home, other = (online, nevsky) if r() < (0.5 if loc == "ru" else 0.9) else (nevsky, online)
            spent = 0
            if n_orders:
                # Sorted timestamps: order ids follow time, and the ends are the rollup's dates.
                ats = sorted(
                    [
                        day_str[lo + int(r() * window)] + minute_str[order_minutes[int(r() * n_order_minutes)]]
                        for _ in range(n_orders)
                    ]
                )
                quantity = 0
                for at in ats:
                    shop = home if r() < 0.8 else other
                    if shop == online and at >= recent_from:
                        status = RECENT_STATUSES[int(r() * 5)]
                    else:
                        status = statuses[int(r() * n_statuses)]
                    total = 0
                    for _ in range(lines[int(r() * n_lines)]):
                        product_id, price, quantities = pool[int(r() * n_pool)]
                        q = quantities[int(r() * len(quantities))]
                        add_item((iid, oid, product_id, q, price))
                        iid += 1
                        total += price * q
                        quantity += q
                    add_order((oid, "O%08d" % oid, cid, at, status, status, shop, total))
                    if shop == online and at >= delivery_from:
                        value, value_ci = deliveries[int(r() * n_deliveries)]
                        add_value((f_delivery, oid, value, value_ci, None, None, None))
                    oid += 1
                    spent += total
                add_stats((cid, n_orders, spent, quantity, ats[0], ats[-1]))
                updated_at = ats[-1]

            # --- tags and customer fields
            tag_ids = []
            if persona in PERSONA_TAGS:
                tag_ids.append(tags[PERSONA_TAGS[persona]])
            if company:
                tag_ids.append(t_wholesale)
            vip = spent >= 15_000_000 or r() < 0.005
            if vip:
                tag_ids.append(t_vip)
            if n_orders >= 40:
                tag_ids.append(t_regular)
            if email_consent and r() < 0.6:
                tag_ids.append(t_newsletter)

            deals = self._deals(cid, persona, company, c_day, manager, out)
            if deals & 1:
                tag_ids.append(t_gym)
            if deals & 2:
                tag_ids.append(t_traveller)
            if deals & 2 and r() < 0.85 or r() < 0.06:
                dest = p["destinations"][int(r() * len(p["destinations"]))]
                add_value((f_dest, cid, dest, self._f(dest), None, None, None))
            if persona in ("cat_urinary", "cat", "dog") and r() < 0.7:
                pets = (1, 1, 1, 1, 2, 2, 2, 3, 3, 5)[int(r() * 10)]
                add_value((f_pets, cid, None, None, pets, None, None))
            if vip:
                add_value((f_vip, cid, None, None, None, None, 1))
                add_value((f_discount, cid, None, None, ("10", "15")[int(r() * 2)], None, None))
            else:
                if r() < 0.1:
                    add_value((f_vip, cid, None, None, None, None, 0))
                if r() < 0.08:
                    add_value((f_discount, cid, None, None, ("3", "5", "7.5")[int(r() * 3)], None, None))
            if home != online and r() < 0.45:
                card = "LC-%06d" % cid
                add_value((f_card, cid, card, card.casefold(), None, None, None))

            if email_consent or sms_consent:
                email_consent, sms_consent = self._messages(cid, c_day, email_consent, sms_consent, out)
            if email is not None and r() < 0.25:
                self._occurrences(cid, c_day, out)

            for tag_id in tag_ids:
                add_tag((cid, tag_id))
            add_customer(
                (
                    cid,
                    "C%07d" % cid,
                    "company" if company else "contact",
                    first_name,
                    last_name,
                    cname,
                    email,
                    phone,
                    gender,
                    birth,
                    birth_md,
                    city,
                    country,
                    source,
                    manager,
                    email_consent,
                    sms_consent,
                    created_at,
                    updated_at,
                    first_ci,
                    last_ci,
                    company_ci,
                    email_ci,
                    phone,
                    city_ci,
                    country_ci,
                    source_ci,
                )
            )

        self.next_order, self.next_item = oid, iid
        return out

    def _deals(self, cid, persona, company, c_day, manager, out):
        """Deals of one customer; returns a bit set: 1 gym member, 2 traveller, 4 wholesale."""
        r = self.rng.random
        kinds = 0
        if company:
            if r() < 0.6:
                self._pipeline_deals("Wholesale", cid, 1 + int(r() * 4), c_day, manager, out)
                kinds |= 4
            return kinds
        if r() < 0.08 or (persona == "bakery" and r() < 0.05):
            self._pipeline_deals("Memberships", cid, 1 + int(r() * r() * 4), c_day, manager, out)
            kinds |= 1
        if r() < 0.10:
            self._pipeline_deals("Tours", cid, 1 + int(r() * r() * 3), c_day, manager, out)
            kinds |= 2
        return kinds

    def _pipeline_deals(self, name, cid, count, c_day, manager, out):
        r = self.rng.random
        last_day, day_str, minute_str = self.span - 1, self.day_str, self.minute_str
        pipeline_id, stages = self.ref["pipelines"][name]
        open_stages = [s for s, kind in stages if kind == "open"]
        won = [s for s, kind in stages if kind == "won"][0]
        lost = [s for s, kind in stages if kind == "lost"][0]
        fields = self.ref["fields"]
        reasons = LOST_REASON_WEIGHTS[name]
        days = sorted(c_day + int(r() * (last_day - c_day + 1)) for _ in range(count))
        for day in days:
            deal_id = self.next_deal
            self.next_deal += 1
            membership = None
            if name == "Memberships":
                membership = MEMBERSHIP_TYPES[(0, 0, 0, 0, 0, 1, 1, 1, 2, 2)[int(r() * 10)]]
                amount = MEMBERSHIP_PRICES[membership]
            elif name == "Tours":
                amount = (60 + int(r() * 190)) * 1000
            else:
                amount = (50 + int(r() * 950)) * 1000
            age = last_day - day
            if age < 45 and r() < 0.6:
                stage, kind, closed_at = open_stages[int(r() * len(open_stages))], "open", None
            else:
                stage, kind = (won, "won") if r() < 0.6 else (lost, "lost")
                closed = min(day + 1 + int(r() * 30), last_day)
                closed_at = day_str[closed] + minute_str[int(r() * 1440)]
            out["deal"].append(
                (
                    deal_id,
                    "D%07d" % deal_id,
                    cid,
                    pipeline_id,
                    stage,
                    amount * 100,
                    manager if r() < 0.9 else None,
                    day_str[day] + minute_str[int(r() * 1440)],
                    closed_at,
                )
            )
            if membership and (kind == "won" or r() < 0.6):
                out["custom_value"].append(
                    (fields["membership_type"], deal_id, membership, membership, None, None, None)
                )
            if kind == "lost":
                pick, reason = r() * sum(reasons), None
                for option, weight in zip(LOST_REASONS, reasons):
                    pick -= weight
                    if pick < 0:
                        reason = option
                        break
                reason = reason or LOST_REASONS[-1]
                out["custom_value"].append((fields["lost_reason"], deal_id, reason, reason, None, None, None))

    def _messages(self, cid, c_day, email_consent, sms_consent, out):
        """Mailings a subscriber received and what they did; returns the consents after it."""
        r = self.rng.random
        last_day, day_str, minute_str = self.span - 1, self.day_str, self.minute_str
        add = out["message_event"].append
        mailing_minutes, order_minutes = self.mailing_minutes, self.order_minutes
        event_id = self.next_event
        # Some read everything, most now and then, some never: "sleeping" subscribers.
        engagement = r()
        open_p = 0.55 if engagement < 0.3 else 0.18 if engagement < 0.75 else 0.015
        for days_ago, mailing_id, channel, share in self.ref["mailings"]:
            day = last_day + 1 - days_ago
            if day <= c_day or r() >= share:
                continue
            minute = mailing_minutes[int(r() * len(mailing_minutes))]
            sent = day_str[day] + minute_str[minute]
            if channel == "sms":
                if not sms_consent:
                    continue
                add((event_id, cid, "sms", "sent", mailing_id, sent))
                add((event_id + 1, cid, "sms", "delivered", mailing_id, day_str[day] + minute_str[minute + 1]))
                event_id += 2
                if r() < 0.005:
                    add((event_id, cid, "sms", "unsubscribed", mailing_id, day_str[day] + minute_str[minute + 30]))
                    event_id += 1
                    sms_consent = 0
                continue
            if not email_consent:
                continue
            add((event_id, cid, "email", "sent", mailing_id, sent))
            if r() < 0.03:
                add((event_id + 1, cid, "email", "bounced", mailing_id, day_str[day] + minute_str[minute + 1]))
                event_id += 2
                continue
            add((event_id + 1, cid, "email", "delivered", mailing_id, day_str[day] + minute_str[minute + 1]))
            event_id += 2
            opened = r() < open_p
            if opened:
                later = (0, 0, 0, 0, 1, 1, 2, 4)[int(r() * 8)]
                if day + later > last_day:
                    continue
                open_minute = (
                    (minute + 2 + int(r() * 500)) if later == 0 else order_minutes[int(r() * len(order_minutes))]
                )
                if open_minute > 1430:
                    open_minute = 1430
                prefix = day_str[day + later]
                add((event_id, cid, "email", "opened", mailing_id, prefix + minute_str[open_minute]))
                event_id += 1
                if r() < 0.3:
                    add(
                        (
                            event_id,
                            cid,
                            "email",
                            "clicked",
                            mailing_id,
                            prefix + minute_str[open_minute + 1 + int(r() * 8)],
                        )
                    )
                    event_id += 1
            if r() < (0.02 if opened else 0.002):
                at = prefix + minute_str[open_minute + 9] if opened else day_str[day] + minute_str[minute + 5]
                add((event_id, cid, "email", "unsubscribed", mailing_id, at))
                event_id += 1
                email_consent = 0
        self.next_event = event_id
        return email_consent, sms_consent

    def _occurrences(self, cid, c_day, out):
        """Website visits, abandoned carts and app installs of the last three months."""
        r = self.rng.random
        last_day, day_str, minute_str = self.span - 1, self.day_str, self.minute_str
        first = max(c_day + 1, last_day - 90)
        if first > last_day:
            return
        types = self.ref["event_types"]
        add = out["event_occurrence"].append
        occurrence = self.next_occ
        for _i in range(1 + int(r() * r() * 5)):
            add(
                (
                    occurrence,
                    cid,
                    types["website_visit"],
                    day_str[first + int(r() * (last_day - first + 1))] + minute_str[int(r() * 1440)],
                    None,
                )
            )
            occurrence += 1
        if r() < 0.3:
            sku = CATALOGUE[int(r() * len(CATALOGUE))][1][0][0]
            add(
                (
                    occurrence,
                    cid,
                    types["cart_abandoned"],
                    day_str[first + int(r() * (last_day - first + 1))] + minute_str[int(r() * 1440)],
                    '{"sku": "%s"}' % sku,
                )
            )
            occurrence += 1
        if r() < 0.15:
            add(
                (
                    occurrence,
                    cid,
                    types["app_installed"],
                    day_str[first + int(r() * (last_day - first + 1))] + minute_str[int(r() * 1440)],
                    None,
                )
            )
            occurrence += 1
        self.next_occ = occurrence


# --- the command --------------------------------------------------------------

STAGE_LABELS = {
    "catalogue": lambda: _("Managers, shops, catalogue, custom fields, pipelines, mailings"),
    "indexes": lambda: _("Rebuilding indexes"),
    "statistics": lambda: _("Updating planner statistics"),
}


class _Progress:
    """Prints each stage once, and a progress bar for the customers."""

    def __init__(self):
        self.stage = None
        self.bar = ProgressBar()

    def __call__(self, stage, done, total):
        if stage != self.stage:
            self.bar.close()
            self.stage = stage
            if stage == "customers":
                self.bar.open(total, _("Customers"), show_pos=True, width=30)
            else:
                click.echo("%s…" % STAGE_LABELS.get(stage, lambda: stage)())
        self.bar.show(done)

    def close(self):
        self.bar.close()


@click.command("demo-data")
@click.option(
    "--customers", type=click.IntRange(min=0), default=5000, show_default=True, help=_("How many customers to create.")
)
@click.option("--seed", type=int, default=1, show_default=True, help=_("The same seed and size give the same data."))
@with_appcontext
def demo_data_command(customers, seed):
    """Load a realistic demo customer base into an empty database."""
    database.connect(reuse_if_open=True)
    try:
        if not database.table_exists(Customer._meta.table_name):
            raise click.ClickException(_("The database has no tables yet: run `flask db upgrade` first."))
        existing = Customer.select().count()
        if existing:
            raise click.ClickException(
                _(
                    "The database already has %(n)d customers; demo data loads only into an empty "
                    "database. Start from an empty one: point DATABASE_URL at a new database (or "
                    "delete the SQLite file), run `flask db upgrade`, then `flask demo-data` again.",
                    n=existing,
                )
            )
        started = time.monotonic()
        progress = _Progress()
        try:
            counts = generate(customers, seed=seed, progress=progress)
        except DemoError as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            progress.close()
    finally:
        database.close()
    click.echo(_("Loaded in %(s).1f s (seed %(seed)d):", s=time.monotonic() - started, seed=seed))
    for table in sorted(counts):
        click.echo("  %-22s %12d" % (table, counts[table]))
