"""Live previews: one running preview per user, the older one cancelled in the database.

The builder asks for a new count at every change; the marketer keeps typing,
so a preview is usually outdated before it ends. `live(user_id)` runs a
preview as the user's current one: starting it cancels the one still running
for that user, and `cancel(user_id)` cancels it when the browser abandons it
(the page is left). Cancelled means stopped in the database, not only
ignored: the statement ends and its connection is free.

- SQLite runs in this process: a progress handler on the preview's
  connection aborts the statement ("interrupted") once a newer preview of the
  same user has started, here or (through the queue server, looked at every
  50 ms) in another web process.
- PostgreSQL runs in its server: the preview's connection carries the
  `application_name` segmento-preview-<user>-<token> while it works, and a
  newer preview (from any web process) cancels the other statements of that
  user through `pg_cancel_backend`, found in `pg_stat_activity`.

Previews never wait for each other: nothing is locked, the older one is
stopped. Flask-free.
"""

import contextlib
import logging
import threading
import time
import uuid

import peewee as pw
from redis.exceptions import RedisError

from .. import queue, settings
from ..db import database, is_postgres

log = logging.getLogger(__name__)

# SQLite calls the handler every this many virtual machine instructions
# (a few microseconds): a superseded preview stops well within 100 ms.
PROGRESS_STEPS = 2000

SHARED_CHECK_SECONDS = 0.05  # SQLite: how often a running preview asks the queue server
QUERY_CANCELED = "57014"  # PostgreSQL: the statement was cancelled (by a newer preview elsewhere)

_lock = threading.Lock()
_current = {}  # user id -> token of the user's newest preview in this process


class Superseded(Exception):
    """The preview was cancelled: a newer one started, or the browser left it."""


def _name_prefix(user_id):
    return f"segmento-preview-{int(user_id)}-"


def _shared():
    """The queue server, where SQLite previews of several web processes meet; None without one."""
    url = settings.redis_url()
    return queue.connection(url) if url else None


def _shared_key(user_id):
    return f"segmento:preview:{int(user_id)}"


def _take_over(user_id):
    """Make a new token the user's current one and cancel what runs for the user."""
    token = uuid.uuid4().hex[:16]
    with _lock:
        _current[user_id] = token
    if not is_postgres():
        shared = _shared()
        if shared is not None:
            try:
                shared.set(_shared_key(user_id), token, ex=3600)
            except RedisError:
                log.warning("previews in other web processes are not cancelled: no queue server", exc_info=True)
    else:
        database.execute_sql(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
            "WHERE application_name LIKE %s AND pid <> pg_backend_pid()",
            (_name_prefix(user_id) + "%",),
        )
    return token


def _sqlstate(exc):
    """The SQLSTATE of a wrapped driver error (peewee keeps the driver's as `orig`)."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None)


def _is_current(user_id, token):
    return _current.get(user_id) == token


def cancel(user_id):
    """Cancel the user's running preview, if any (the browser abandoned it)."""
    _take_over(user_id)


@contextlib.contextmanager
def _tagged(name):
    """The connection named `name` in pg_stat_activity for the block."""
    previous = database.execute_sql("SELECT current_setting('application_name')").fetchone()[0]
    database.execute_sql("SELECT set_config('application_name', %s, false)", (name,))
    try:
        yield
    finally:
        # a cancel aimed at the block's last statement may land on this one: retry
        for attempt in (1, 2):
            try:
                database.execute_sql("SELECT set_config('application_name', %s, false)", (previous,))
                break
            except pw.DatabaseError:
                if attempt == 2:
                    raise


@contextlib.contextmanager
def _interruptible(user_id, token):
    """Abort the connection's statements once the token is no longer current."""
    connection = database.connection()
    shared, key = _shared(), _shared_key(user_id)
    next_look = time.monotonic() + SHARED_CHECK_SECONDS

    def superseded():
        nonlocal next_look
        if not _is_current(user_id, token):
            return 1
        if shared is None or time.monotonic() < next_look:
            return 0
        next_look = time.monotonic() + SHARED_CHECK_SECONDS
        try:
            newest = shared.get(key)
        except RedisError:
            return 0
        if newest is None or newest.decode() == token:
            return 0
        _drop(user_id, token)  # no longer current here either: `live` reports it superseded
        return 1

    connection.set_progress_handler(superseded, PROGRESS_STEPS)
    try:
        yield
    finally:
        connection.set_progress_handler(None, 0)


@contextlib.contextmanager
def live(user_id):
    """Run the block as the user's one live preview; raises Superseded when a newer
    preview (or `cancel`) stops it. The block's statements must not run inside a
    transaction of the caller's (a cancelled statement would abort it)."""
    database.connect(reuse_if_open=True)
    token = _take_over(user_id)
    guard = _tagged(_name_prefix(user_id) + token) if is_postgres() else _interruptible(user_id, token)
    try:
        with guard:
            if not _is_current(user_id, token):
                raise Superseded()
            yield
    except pw.DatabaseError as exc:
        if _is_current(user_id, token) and _sqlstate(exc) != QUERY_CANCELED:
            raise
        raise Superseded() from None
    finally:
        _drop(user_id, token)


def _drop(user_id, token):
    with _lock:
        if _current.get(user_id) == token:
            del _current[user_id]
