"""gunicorn settings, read from the environment (see .env.example)."""

import os
from pathlib import Path

import environ

# The same .env as the Django settings, so MONGO_URI set there also decides the worker count.
environ.Env.read_env(
    os.environ.get("DJANGO_ENV_FILE", Path(__file__).resolve().parent.parent / ".env"), overwrite=False
)

env = environ.Env()  # booleans read as the Django settings read them

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"

if os.environ.get("MONGO_URI"):
    workers = env.int("WEB_CONCURRENCY", default=2)
    # gevent: each worker serves its connections from greenlets that give way whenever they wait on
    # MongoDB. Single POSTs arriving together then share one insert command (estimations/group_insert.py)
    # in bigger batches than a pool of 4 threads allows: 1.2x to 1.3x the POSTs per second of gthread,
    # measured side by side (docs/performance.md). gthread stays available: GUNICORN_WORKER_CLASS=gthread.
    worker_class = env.str("GUNICORN_WORKER_CLASS", default="gevent")
    worker_connections = env.int("GUNICORN_WORKER_CONNECTIONS", default=1000)  # gevent only
    threads = env.int("GUNICORN_THREADS", default=4)  # gthread only
else:
    # The embedded store lives inside one process: more workers would each have their own data, and
    # its in-memory store (mongomock) is served one request at a time.
    worker_class = "gthread"
    workers = 1
    threads = 1

# Each worker listens on its own socket (SO_REUSEPORT) and the kernel spreads new connections over
# them. On one shared socket, whichever worker wakes first accepts: under a burst of keep-alive clients
# one worker often took 12 to 16 of 16 connections while the other idled (measured with `ss`), halving
# throughput for as long as those connections lived. Set GUNICORN_REUSE_PORT=false to share one socket.
reuse_port = env.bool("GUNICORN_REUSE_PORT", default=True)

# Gunicorn's largest request line (it answers 414 beyond, before the app); query parameters such as
# `where` have their own, smaller limits in the app, answered in the error envelope.
limit_request_line = 8190
timeout = env.int("GUNICORN_TIMEOUT", default=30)
graceful_timeout = 20
keepalive = 5
errorlog = "-"
# Workers must not share the master's MongoDB sockets: no app loaded before the fork.
preload_app = False
# One log line per request comes from the app (with its request id); gunicorn's would repeat it.
accesslog = None


def on_starting(server):
    # Metrics of workers from an earlier run must not be added to this run's.
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for name in os.listdir(directory):
            os.remove(os.path.join(directory, name))


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def post_request(worker, req):
    # Under gevent, a request that needed no I/O must not let its keep-alive connection keep the worker
    # (estimations/turns.py); under gthread this does nothing.
    from estimations.turns import give_way

    give_way()
