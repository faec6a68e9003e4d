"""The Celery application; configuration comes from Django settings (CELERY_ namespace)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "desk.settings")

app = Celery("desk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# One beat at a time (a Redis lock); imported here so every `celery -A desk` process connects it.
import desk.beat_lock  # noqa: E402, F401
