"""Gunicorn settings, all overridable from the environment.

With DATABASE_URL unset (and APP_ENV not production) the master starts the
embedded PostgreSQL under .data/ once, before any worker forks, and with
RATELIMIT_STORAGE_URI unset the embedded Redis that every worker counts
limits in (stopped on exit, and with the master if it dies); with
MIGRATE_ON_START=1 it applies pending migrations first.
"""

import multiprocessing
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", min(4, multiprocessing.cpu_count() * 2)))
# gthread, closing its listener as soon as a stop begins (app/worker.py).
worker_class = "app.worker.DrainingThreadWorker"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# The app logs one redacted line per request; gunicorn's access log would
# print raw paths, invite codes included.
accesslog = None
errorlog = "-"
# gunicorn's own lines go through the service's redaction too (app/logs.py).
logger_class = "app.logs.GunicornLogger"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Workers load the app after fork, so no connection is shared across processes.
preload_app = False
# gunicorn 27's control socket lives at one per-user path, so two servers on
# one machine (tests, a benchmark, `make run`) would fight over it.
control_socket_disable = True
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

_embedded = None
_embedded_redis = None
_metrics_dir = None


def on_starting(server):
    global _embedded, _embedded_redis, _metrics_dir
    from app import startup
    from app.local import (
        DATA_DIR,
        dev_code_keys,
        dev_jwt_secret,
        ensure_database_url,
        ensure_limit_store_url,
    )

    problems = startup.configuration_problems(os.environ, server.cfg.workers)
    if problems:
        startup.refuse(
            server.log,
            [*problems, f"not started: {len(problems)} configuration problem(s)"],
            os.EX_CONFIG,
        )

    url, _embedded = ensure_database_url()
    os.environ["DATABASE_URL"] = url
    store, _embedded_redis = ensure_limit_store_url()
    os.environ["RATELIMIT_STORAGE_URI"] = store

    if not any(os.environ.get(k) for k in ("JWT_SECRET_KEY", "JWT_PUBLIC_KEY")):
        secret = dev_jwt_secret(create=True)
        if secret:
            os.environ["JWT_SECRET_KEY"] = secret
            server.log.warning(
                "JWT_SECRET_KEY is unset: using the development secret in %s; "
                "`make token` signs with it",
                DATA_DIR,
            )

    if not os.environ.get("CODE_KEYS"):
        keys = dev_code_keys(create=True)
        if keys:
            os.environ["CODE_KEYS"] = keys
            server.log.warning(
                "CODE_KEYS is unset: invite codes are sealed with the development key in %s",
                DATA_DIR,
            )

    migrate = os.environ.get("MIGRATE_ON_START") == "1"
    applied = startup.check_database(server.log, url, migrate=migrate)
    if migrate:
        server.log.info("migrations: %s", ", ".join(applied) or "up to date")

    # Set before any worker makes its metrics (app.metrics).
    _metrics_dir = startup.prepare_metrics_directory()


def post_worker_init(worker):
    # After the app is loaded: the line that says this worker can answer.
    worker.log.info("Worker serving (pid: %s)", worker.pid)


def child_exit(server, worker):
    from app.startup import worker_exited

    worker_exited(worker.pid)


def on_exit(server):
    if _embedded_redis is not None:
        _embedded_redis.stop()
    from app.startup import remove_metrics_directory

    remove_metrics_directory(_metrics_dir)


def pre_request(worker, req):
    """Nothing: gunicorn's default logs each raw path at DEBUG, and invite codes
    travel in paths. The service logs every request's route template itself."""
