"""gunicorn's settings for production (``gunicorn -c gunicorn_settings.py
'app:create_app()'``): the access log on, in the app's ``LOG_FORMAT``, and
a dead worker's live metrics dropped (``PROMETHEUS_MULTIPROC_DIR`` set for
gunicorn and the consumers alike). ``python app.py`` sets the same itself."""
import os

from core import logs, metrics

accesslog = "-"
logger_class = logs.access_logger_class(os.environ.get("LOG_FORMAT") or "json")


def child_exit(server, worker):
    metrics.mark_process_dead(worker.pid)
