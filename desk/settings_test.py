"""Test settings: the production settings with a fixed key and a fast hasher for unit tests.

Integration tests start real processes (Celery worker, gunicorn) with `desk.settings`, so the
real Argon2 hasher is what they exercise.
"""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret-" + "x" * 40)

from desk.settings import *  # noqa: F403
from desk.settings import PASSWORD_HASHERS

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SECURE_SSL_REDIRECT = False
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
