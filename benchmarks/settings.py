"""Settings for the desk benchmark: production settings, plain static storage, a floor view."""

import os

os.environ.setdefault("SECRET_KEY", "benchmark-only-not-a-secret-" + "x" * 40)
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")

from desk.settings import *  # noqa: F403
from desk.settings import ALLOWED_HOSTS, LOGGING, STORAGES

DEBUG = False
ROOT_URLCONF = "benchmarks.urls"
# Django's test client, in-process; no test-environment instrumentation (it slows templates).
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# No collectstatic for a benchmark: the manifest storage would refuse {% static %}.
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING = {**LOGGING, "root": {"handlers": ["console"], "level": "WARNING"}}
