"""Production settings served by gunicorn over plain HTTP on loopback (fault tests, benchmarks).

Everything as in production (Argon2id, Redis, DEBUG off, `__Host-` cookies) except what plain
HTTP on 127.0.0.1 cannot do: no HTTPS redirect, and static files served without collectstatic.
"""

from typing import Any, cast

from desk.settings import *  # noqa: F403
from desk.settings import LOG_LEVEL, LOGGING, STORAGES

SECURE_SSL_REDIRECT = False
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
# LOG_LEVEL=DEBUG means every logger, the database's included (it is INFO in production).
LOGGING = {
    **LOGGING,
    "loggers": {
        # LOGGING is inferred as dict[str, object]; its "loggers" entry is a dict of dicts.
        **cast("dict[str, dict[str, Any]]", LOGGING.get("loggers", {})),
        "django.db.backends": {"level": LOG_LEVEL},
    },
}
