"""gunicorn settings, read from the environment (see .env.example)."""

import logging
import os
import sys
from pathlib import Path

import environ

from core.environment import CheckedEnv

# The same .env as the Django settings, so MONGO_URI set there also decides the worker count.
environ.Env.read_env(
    os.environ.get("DJANGO_ENV_FILE", Path(__file__).resolve().parent.parent / ".env"), overwrite=False
)

env = CheckedEnv()  # each setting read, and refused, as the Django settings read it

# HOST: every interface by default (a container's port is published); the .env that `make run` writes
# says 127.0.0.1, so a trial server with anonymous writes is reachable from this machine only.
HOST = os.environ.get("HOST") or "0.0.0.0"
PORT = os.environ.get("PORT") or "8000"
if not (PORT.isascii() and PORT.isdigit() and 1 <= int(PORT) <= 65535):
    raise SystemExit(f"PORT={PORT[:20]!r}: give a port number from 1 to 65535 (the default is 8000).")
bind = f"{HOST}:{PORT}"
# No gunicornc control socket: its default path is one per user, so every server a user starts would
# share it (and the first to stop would remove it under the others).
control_socket_disable = True

# A client that is silent or slow never holds up the others, with MongoDB or without: under gevent a
# connection waiting for its request costs a greenlet, not the worker. gunicorn closes a connection whose
# request head has not arrived within `keepalive` seconds, and serves at most `worker_connections` at once
# per worker; gunicorn has no limit for a body, so the service sets one (CLIENT_BODY_TIMEOUT, then 408:
# core/deadlines.py). Behind the bundled nginx, a request reaches gunicorn only once its
# body is all in (training uploads excepted: they are streamed).
if os.environ.get("MONGO_URI"):
    workers = env.int("WEB_CONCURRENCY", default=2, at_least=1)
    # gevent: each worker serves its connections from greenlets that give way whenever they wait on
    # MongoDB. Single POSTs arriving together then share one insert command (core/runtime/group_insert.py)
    # in bigger batches than a pool of 4 threads allows: 1.2x to 1.3x the POSTs per second of gthread,
    # measured side by side (docs/performance.md). gthread stays available: GUNICORN_WORKER_CLASS=gthread.
    worker_class = env.str("GUNICORN_WORKER_CLASS", default="gevent")
    threads = env.int("GUNICORN_THREADS", default=4, at_least=1)  # gthread only
    timeout = env.int("GUNICORN_TIMEOUT", default=30, at_least=0)  # a worker silent this long is restarted
else:
    # The embedded store (mongomock) lives inside one process, so one worker: more would each have their
    # own data. It is a gevent worker, whose greenlets switch only where one waits: on a socket (a client's
    # request or answer), or where our code gives way (core/runtime/__init__.py: between requests, and every
    # 500 items of a bulk insert's validation and stamping, all before or after its one insert_many;
    # group_insert.py: before a write, and waiting for the batch ahead). mongomock does no I/O and never
    # waits: a find copies its matches into a list in one go, and each write runs to its end. So every
    # store operation runs whole between two switches, as one command runs on MongoDB, and the locks
    # mongomock takes inside an operation (threading locks, gevent's once patched) are never contended.
    workers = 1
    worker_class = "gevent"
    # Never restarted for being silent: its one worker holds the only copy of the data. A gevent worker
    # is silent while one request computes without waiting, and mongomock reads a whole collection for
    # every query (a page of 25 from 10,000 estimations: 0.7 s here; all of 100,000, for an export or a
    # replay: over a minute), so a restart after GUNICORN_TIMEOUT would wipe the store mid-request.
    timeout = 0
worker_connections = env.int("GUNICORN_WORKER_CONNECTIONS", default=1000, at_least=1)  # gevent only

# Each worker listens on its own socket (SO_REUSEPORT) and the kernel spreads new connections over
# them. On one shared socket, whichever worker wakes first accepts: under a burst of keep-alive clients
# one worker often took 12 to 16 of 16 connections while the other idled (measured with `ss`), halving
# throughput for as long as those connections lived. Set GUNICORN_REUSE_PORT=false to share one socket.
reuse_port = env.bool("GUNICORN_REUSE_PORT", default=True)

# Gunicorn's largest request line (it answers 414 beyond, before the app); query parameters such as
# `where` have their own, smaller limits in the app, answered in the error envelope.
limit_request_line = 8190
graceful_timeout = 20
keepalive = 5
errorlog = "-"
# Workers must not share the master's MongoDB sockets: no app loaded before the fork.
preload_app = False
# One log line per request comes from the app (with its request id); gunicorn's would repeat it.
accesslog = None


def on_starting(server):
    _refuse_a_taken_port(server)
    # Metrics of workers from an earlier run must not be added to this run's.
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            os.remove(os.path.join(directory, name))


def _refuse_a_taken_port(server):
    """With reuse_port each worker binds its own socket, so the master never finds a taken port itself: its
    workers would fail and be restarted every few seconds for ever, or, beside another server with
    SO_REUSEPORT (a second `make run`), share the port and half its clients. Refused here, with what to do."""
    import socket
    import sys

    host = HOST.strip("[]")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds: past TIME_WAIT
        try:
            probe.bind((host, int(PORT)))
        except OSError as exc:
            server.log.error(
                "Cannot listen on %s:%s (%s): another server holds that port, perhaps another `make run`. "
                "Stop it, or set PORT to a free port.",
                HOST,
                PORT,
                exc.strerror,
            )
            sys.exit(1)


def when_ready(server):
    shown = "localhost" if HOST in ("0.0.0.0", "::", "[::]") else HOST
    where = " (every interface)" if shown == "localhost" else ""
    server.log.info("Serving on http://%s:%s%s", shown, PORT, where)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_request(worker, req):
    # Under gevent, a request that needed no I/O must not let its keep-alive connection keep the worker
    # (core/runtime/__init__.py); under gthread this does nothing.
    from core.runtime import give_way

    give_way()


def worker_int(worker):
    """A gevent worker told to quit at once (Ctrl-C, which reaches every process of the terminal, or the
    master's SIGQUIT) ends here, as a quick stop means, instead of raising SystemExit in the greenlet
    gunicorn runs its quit in, which printed a traceback on every Ctrl-C. Logs are flushed first (safe
    there: a greenlet, not a signal handler); the master reaps it as before. A thread worker quits from
    its signal handler, cleanly already, and is left to it."""
    if "gevent" not in type(worker).__module__:
        return
    worker.log.info("worker %s: stopping now", worker.pid)
    for handler in logging.getLogger().handlers + logging.getLogger("gunicorn.error").handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
