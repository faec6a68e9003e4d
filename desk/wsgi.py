"""WSGI entry point: `gunicorn desk.wsgi`."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "desk.settings")

application = get_wsgi_application()

# After setup, before the first request: a production process refuses a lab's configuration.
from core.checks import refuse_unsafe_start  # noqa: E402

refuse_unsafe_start("web")
