"""Backups: `flask backup FILE` and `flask restore FILE`.

SQLite: the online backup API (sqlite3 `Connection.backup`), a consistent
copy while the app and workers keep writing. PostgreSQL: pg_dump's custom
format and pg_restore (Debian's postgresql-client), the password passed in
the environment, never on a command line others can read.
"""

import os
import sqlite3
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..i18n import _


class BackupError(Exception):
    pass


def _sqlite_path(url):
    return url[len("sqlite:///") :]


def _pg(url):
    """(connection URL without the password, environment with PGPASSWORD)."""
    parsed = urlparse(url)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = unquote(parsed.password)
    netloc = parsed.hostname or ""
    if parsed.username:
        netloc = f"{parsed.username}@{netloc}"
    if parsed.port:
        netloc = f"{netloc}:{parsed.port}"
    return parsed._replace(netloc=netloc).geturl(), env


def _run(args, env):
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(
            (done.stderr or done.stdout).strip().splitlines()[-1]
            if (done.stderr or done.stdout)
            else f"{args[0]} exited with {done.returncode}"
        )


def backup(url, file):
    """Write a backup of the database at `url` to `file`."""
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite:///"):
        source = sqlite3.connect(_sqlite_path(url))
        target = sqlite3.connect(file)
        try:
            with target:
                source.backup(target, pages=1024)
        finally:
            target.close()
            source.close()
        return
    conninfo, env = _pg(url)
    _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(file), "--dbname", conninfo], env)


def is_empty(url):
    """True when the database has no tables yet (a fresh one to restore into)."""
    if url.startswith("sqlite:///"):
        path = _sqlite_path(url)
        if not os.path.exists(path):
            return True
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0] == 0
    import psycopg

    with psycopg.connect(url) as conn:
        return (
            conn.execute("SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'").fetchone()[0]
            == 0
        )


def restore(url, file, replace=False):
    """Restore `file` (made by `backup`) into the database at `url`: an empty
    one, or with `replace` one whose tables are dropped first."""
    file = Path(file)
    if not file.is_file():
        raise BackupError(_("%(file)s: no such file", file=file))
    if not replace and not is_empty(url):
        raise BackupError(_("The database is not empty: restore into a new database, or pass --replace."))
    if url.startswith("sqlite:///"):
        try:
            source = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
            source.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            raise BackupError(_("%(file)s: not a SQLite backup", file=file)) from exc
        target = sqlite3.connect(_sqlite_path(url))
        try:
            with target:
                source.backup(target)
        finally:
            target.close()
            source.close()
        return
    conninfo, env = _pg(url)
    args = ["pg_restore", "--no-owner", "--exit-on-error", "--single-transaction", "--dbname", conninfo]
    if replace:
        args[1:1] = ["--clean", "--if-exists"]
    _run([*args, str(file)], env)
