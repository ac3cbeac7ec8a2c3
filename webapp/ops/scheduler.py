"""Exactly one cron scheduler among any number of worker processes and machines.

RQ's CronScheduler does not coordinate with others: each one enqueues every
registered job on its own clock, so three workers with a scheduler each would
run every periodic job three times. Every worker pool therefore starts a
candidate, and only the one holding the leader lease in Redis runs RQ's
CronScheduler; the others wait. The leader renews its lease every sixth of
LEASE_SECONDS; when it dies (SIGKILL, machine lost) the lease expires and a
waiting candidate takes over (at once when it was on the same machine). When
the queue server restarts empty, the leader takes its lease back at its next
renewal: a candidate that has seen a leader waits two renewal periods before
it takes a vanished lease, so two never run together. A leader that stops
cleanly marks its lease released, and a candidate takes it at once.
"""

import logging
import os
import signal
import socket
import threading
import time
import uuid
from pathlib import Path

from redis.exceptions import RedisError
from rq import cron_scheduler_registry
from rq.cron import CronScheduler

LEADER_KEY = "segmento:cron:leader"
RELEASED_KEY = "segmento:cron:released"
LEASE_SECONDS = 30

log = logging.getLogger("segmento.scheduler")

# Renew our lease, or take it when nobody holds it (the server restarted
# empty); 0 when another candidate holds it.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""


_RELEASE_IF = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _holder_died_here(holder):
    """True when `holder` names a process on this machine that is gone: its
    lease need not run out (a killed worker pool restarts at once)."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    # A killed process nobody reaped yet (a zombie) is gone too.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state == "Z"


def _scheduler_beating(redis, lease_seconds):
    tick = last_tick(redis)
    return tick is not None and time.time() - tick < lease_seconds / 3


def last_tick(redis):
    """Unix time of the latest cron scheduler heartbeat, or None."""
    newest = redis.zrange(cron_scheduler_registry.get_registry_key(), -1, -1, withscores=True)
    return newest[0][1] if newest else None


def leader(redis):
    """The name of the candidate holding the lease, or None."""
    value = redis.get(LEADER_KEY)
    return value.decode() if value else None


class _Lost(Exception):
    pass


def run(make_scheduler, connection_factory, lease_seconds=LEASE_SECONDS, poll_seconds=None):
    """Wait for the lease, then run `make_scheduler(connection)` (a registered
    CronScheduler) while it is held. Returns on SIGTERM/SIGINT."""
    name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    poll = poll_seconds or max(0.5, min(2.0, lease_seconds / 6))
    stopping = threading.Event()
    missing_since = None
    seen_leader = False

    def _stop(signum, frame):
        stopping.set()
        raise KeyboardInterrupt

    try:
        while not stopping.is_set():
            # CronScheduler.start() installs its own handlers: ours again while waiting.
            signal.signal(signal.SIGTERM, _stop)
            signal.signal(signal.SIGINT, _stop)
            try:
                redis = connection_factory()
                renew = redis.register_script(_RENEW)
                holder = leader(redis)
                if holder and _holder_died_here(holder):
                    redis.register_script(_RELEASE_IF)(keys=[LEADER_KEY], args=[holder])
                    holder = None
                    missing_since = 0.0  # known dead: no need to wait for a renewal
                if holder:
                    missing_since = None
                    seen_leader = True
                elif missing_since is None:
                    missing_since = 0.0 if redis.get(RELEASED_KEY) else time.monotonic()
                # No lease: the leader stopped (released, or died here), or its
                # lease ran out, or the server was emptied under a live leader,
                # which takes its lease back at its next renewal. Unless it is
                # known to be gone, a candidate that has seen a leader waits two
                # renewal periods before taking it (a fresh one, only while a
                # scheduler still beats).
                waited = time.monotonic() - (missing_since or 0.0)
                may_take = holder is None and (
                    missing_since == 0.0
                    or waited > lease_seconds / 3 + 1
                    or (not seen_leader and not _scheduler_beating(redis, lease_seconds))
                )
                if may_take and redis.set(LEADER_KEY, name, nx=True, px=int(lease_seconds * 1000)):
                    redis.delete(RELEASED_KEY)
                    missing_since, seen_leader = None, True
                    log.warning("cron scheduler %s: leader", name)
                    _lead(
                        make_scheduler(redis),
                        redis,
                        renew,
                        name,
                        lease_seconds,
                        stopping,
                    )
                    continue
            except RedisError:
                pass  # the queue server is away: try again after a pause
            stopping.wait(poll)
    except KeyboardInterrupt:
        pass


def _lead(scheduler, redis, renew, name, lease_seconds, stopping):
    lost = threading.Event()
    main_thread = threading.main_thread().ident

    def _beat():
        failures = 0
        while not stopping.is_set() and not lost.is_set():
            time.sleep(lease_seconds / 6)
            try:
                held = renew(keys=[LEADER_KEY], args=[name, int(lease_seconds * 1000)])
                failures = 0
            except RedisError:
                failures += 1
                held = failures * lease_seconds / 6 < lease_seconds
            if not held:
                lost.set()
                # Interrupt the scheduler's sleep in the main thread.
                signal.pthread_kill(main_thread, signal.SIGUSR1)

    def _on_lost(signum, frame):
        raise _Lost

    signal.signal(signal.SIGUSR1, _on_lost)
    beat = threading.Thread(target=_beat, daemon=True)
    beat.start()
    try:
        scheduler.start()  # returns on SIGTERM/SIGINT (its own handlers)
        stopping.set()
    except _Lost:
        log.warning("cron scheduler %s: lease lost, standing by", name)
    except Exception:  # noqa: BLE001 - the queue server went away mid-loop (or restarted empty)
        log.warning("cron scheduler %s: queue server unreachable, standing by", name)
    finally:
        lost.set()
        try:
            if leader(redis) == name and stopping.is_set():
                # a clean stop hands over at once
                redis.set(RELEASED_KEY, name, px=int(lease_seconds * 1000))
                redis.delete(LEADER_KEY)
        except RedisError:
            pass


def make_cron(jobs, logging_level="WARNING"):
    """A factory of CronSchedulers with `jobs` ((func, seconds or cron string,
    queue) triples) registered, for `run`."""

    def make(redis):
        cron = CronScheduler(connection=redis, logging_level=logging_level)
        for func, every, queue in jobs:
            when = {"cron": every} if isinstance(every, str) else {"interval": every}
            cron.register(func, queue_name=queue, **when)
        return cron

    return make
