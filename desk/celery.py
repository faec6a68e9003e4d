"""The Celery application; configuration comes from Django settings (CELERY_ namespace)."""

import os

from celery import Celery

from core.worker_metrics import multiprocess_dir_prepare

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "desk.settings")
# Before prometheus-client is first imported: a worker with its exporter on writes its pool
# children's metrics to a shared directory (core/worker_metrics.py).
multiprocess_dir_prepare()

app = Celery("desk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# One beat at a time (a Redis lock); imported here so every `celery -A desk` process connects it.
import core.worker_metrics  # noqa: E402, F401  (GUICHET_WORKER_METRICS_PORT: the exporter)
import desk.beat_lock  # noqa: E402, F401
