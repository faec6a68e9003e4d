"""Guichet settings: every deploy knob comes from the environment (docs/interfaces.md, README)."""

import os
from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key
from django.utils.translation import gettext_lazy as _

from core.redis_urls import kombu_broker, role_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("GUICHET_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off.")
    # Development only: a fresh key per process start, as `make run` promises.
    SECRET_KEY = get_random_secret_key()

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list(
    "CSRF_TRUSTED_ORIGINS", default=["http://localhost", "http://127.0.0.1"]
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_fsm",
    "django_tables2",
    "django_filters",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Bottom to top (docs/architecture.md): each imports only the ones above it in this list.
    "core",
    "members",
    "tickets",
    "workflows",
    "portal",
    "agentdesk",
    "supervision",
    "api",
]

MIDDLEWARE = [
    "core.middleware.RequestIdMiddleware",
    "core.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # request.user.is_verified(): the session's second factor (docs/security.md §40).
    "django_otp.middleware.OTPMiddleware",
    "core.middleware.SecondFactorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.middleware.SessionLifetimeMiddleware",
    "core.middleware.TemporaryPasswordMiddleware",
    # Last: its process_view runs the view inside a hash slot (after CSRF, auth and the jail).
    "core.shedding.OverloadSheddingMiddleware",
]

ROOT_URLCONF = "desk.urls"
WSGI_APPLICATION = "desk.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.guichet",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'guichet.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Seconds a connection is kept for the next request (0: close after each request). Behind
    # PgBouncer the client side is cheap to keep; see docs/operations.md.
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
    # True behind PgBouncer in transaction mode: a server-side cursor (a named cursor held across
    # fetches) would land on another client's session. Guichet's exports and `verify_history`
    # read in keyset chunks and never need one (core/keyset.py).
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool(
        "DISABLE_SERVER_SIDE_CURSORS", default=False
    )
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default serves several agents at once (`make run`, docs/operations.md):
    # WAL lets readers work beside the one writer; IMMEDIATE takes the write lock when a
    # transaction begins, so two writers queue on the busy timeout instead of one failing with
    # "database is locked" when its read lock cannot be upgraded.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("SQLITE_BUSY_TIMEOUT_SECONDS", default=20),
            "init_command": (
                # WAL is a property of the file (kept once set); synchronous=NORMAL is safe
                # under WAL (a power cut may lose the last commits, never corrupt the file).
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
            ),
        }
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Covering indexes (INCLUDE) serve PostgreSQL; SQLite (make run) builds them without the extra
# columns, which is harmless, so its warning is silenced there only.
SILENCED_SYSTEM_CHECKS = (
    ["models.W040"] if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" else []
)

# --- Cache and background work ---------------------------------------------------------------
# Three roles, each its own Redis database (or server): the broker (queued tasks), the cache
# (heartbeat, desk counters) and the limits store (abuse counters). Each defaults to REDIS_URL with
# its database number + 0, + 1, + 2 (docs/operations.md, "Redis roles"); Sentinel URLs accepted.
REDIS_URL = env.str("REDIS_URL", default="")
_broker_url = role_url("broker", explicit=env.str("CELERY_BROKER_URL", default=""), base=REDIS_URL)
CACHE_URL = role_url("cache", explicit=env.str("CACHE_URL", default=""), base=REDIS_URL)
GUICHET_LIMITS_URL = role_url(
    "limits", explicit=env.str("GUICHET_LIMITS_URL", default=""), base=REDIS_URL
)


def _redis_cache(url: str, prefix: str) -> dict[str, object]:
    return {
        "BACKEND": "core.cache.GuichetRedisCache",
        "LOCATION": url,
        "KEY_PREFIX": prefix,
        # A cache that is down must not hang a request: fail fast (the limiter's policy applies).
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }


CACHES: dict[str, dict[str, object]] = {
    "default": (
        _redis_cache(CACHE_URL, "guichet")
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    ),
    "limits": (
        _redis_cache(GUICHET_LIMITS_URL, "guichet-limits")
        if GUICHET_LIMITS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "limits"}
    ),
}

# The broker in Guichet's URL syntax ("" = in-process), read by the checks and the probes.
GUICHET_BROKER_REDIS_URL = _broker_url
CELERY_BROKER_URL, _broker_sentinel_options = kombu_broker(_broker_url or "memory://localhost/")
# Without Redis, tasks run in-process right after the transaction commits (make run).
CELERY_TASK_ALWAYS_EAGER = not _broker_url
CELERY_TASK_EAGER_PROPAGATES = False
# No result backend: task results could otherwise hold data we never want at rest.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
# Redeliver a message whose worker died mid-task; tasks are idempotent (outbox claim).
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int(
    "CELERY_TASK_SOFT_TIME_LIMIT", default=CELERY_TASK_TIME_LIMIT * 4 // 5
)
# Must exceed the longest task (time limit above) and any countdown we schedule.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=1800),
    "socket_connect_timeout": 1,
    "socket_timeout": 2,
    **_broker_sentinel_options,
}
# Publishing happens after commit on the request path: give up fast, the outbox sweep retries.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TIMEZONE = "UTC"
# Beat's schedule state lives under var/ (or here), never in the working directory.
CELERY_BEAT_SCHEDULE_FILENAME = env.str(
    "GUICHET_BEAT_SCHEDULE_FILE", default=str(VAR_DIR / "celerybeat-schedule")
)
# Several beats may run for failover: one holds this Redis lock and schedules (desk/beat_lock.py);
# a standby takes over within this many seconds of the holder's death.
GUICHET_BEAT_LOCK_SECONDS = env.int("GUICHET_BEAT_LOCK_SECONDS", default=60)
CELERY_BEAT_SCHEDULE = {
    "outbox-sweep": {
        "task": "workflows.tasks.outbox_sweep",
        "schedule": timedelta(seconds=env.int("GUICHET_OUTBOX_SWEEP_SECONDS", default=30)),
    },
    "worker-heartbeat": {
        "task": "workflows.tasks.worker_heartbeat",
        "schedule": timedelta(seconds=30),
    },
    "expire-stale-requests": {
        "task": "workflows.tasks.tickets_expire",
        "schedule": crontab(minute=7),
    },
    "webhook-sweep": {
        "task": "workflows.tasks.webhook_sweep",
        "schedule": timedelta(seconds=env.int("GUICHET_OUTBOX_SWEEP_SECONDS", default=30)),
    },
    # Pending e-mail changes whose waiting time is over are applied (idempotent, row-locked).
    "email-changes-apply": {
        "task": "workflows.tasks.email_changes_apply",
        "schedule": timedelta(minutes=5),
    },
    "purge-form-tokens": {
        "task": "workflows.tasks.form_tokens_purge",
        "schedule": crontab(minute=37),
    },
    "purge-intake-traces": {
        "task": "workflows.tasks.intake_traces_purge_task",
        "schedule": crontab(minute=47),
    },
    # Retention (docs/operations.md): daily, at night, in small batches.
    "retention-purge": {
        "task": "workflows.tasks.retention_daily_purge",
        "schedule": crontab(hour=3, minute=41),
    },
    # Supervisors' daily rollups: closed days, refreshed for late codes e-mails.
    "supervision-rollup": {
        "task": "supervision.tasks.supervision_rollup",
        "schedule": crontab(minute=17),
    },
}

# --- E-mail ----------------------------------------------------------------------------------
EMAIL_FILE_PATH = VAR_DIR / "mail"
_email_url = env.str("EMAIL_URL", default="")
if _email_url:
    vars().update(environ.Env.email_url_config(_email_url))
else:
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Guichet <no-reply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Authentication --------------------------------------------------------------------------
AUTH_USER_MODEL = "members.Account"
AUTHENTICATION_BACKENDS = ["members.backends.PortalBackend"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "account"
PASSWORD_HASHERS = [
    "members.hashers.GuichetArgon2PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "members.validators.MaximumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "members.validators.NotIdentifierValidator"},
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
]

# --- Sessions and cookies --------------------------------------------------------------------
SESSION_ENGINE = "django.contrib.sessions.backends.db"
# Idle timeout (ASVS L2: 30 min): the cookie is refreshed on every request.
SESSION_COOKIE_AGE = env.int("SESSION_IDLE_SECONDS", default=30 * 60)
SESSION_SAVE_EVERY_REQUEST = True
# Absolute timeout (ASVS L2: 12 h), enforced by SessionLifetimeMiddleware.
GUICHET_SESSION_ABSOLUTE_SECONDS = env.int("SESSION_ABSOLUTE_SECONDS", default=12 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if not DEBUG:
    # `__Host-` cookies must be Secure, host-only and path=/ (ASVS 3.3.1).
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Internationalisation --------------------------------------------------------------------
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("French")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "Europe/Paris"
USE_TZ = True

# --- Static files ----------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Request limits (Django defaults, stated so they are reviewed) -----------------------------
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

# --- Guichet's own knobs ---------------------------------------------------------------------
GUICHET_ORG_NAME = env.str("GUICHET_ORG_NAME", default="Guichet")
# Logo shown beside the name; empty = the neutral one shipped in static/img/logo.svg.
GUICHET_LOGO_URL = env.str("GUICHET_LOGO_URL", default="")
# Address members reach the portal at, for links in e-mails (set it in production).
GUICHET_PUBLIC_URL = env.str("GUICHET_PUBLIC_URL", default="http://localhost:8000")
GUICHET_TEMP_PASSWORD_TTL = timedelta(hours=env.int("GUICHET_TEMP_PASSWORD_TTL_HOURS", default=24))
GUICHET_REQUEST_EXPIRY_DAYS = env.int("GUICHET_REQUEST_EXPIRY_DAYS", default=14)
GUICHET_SECRET_ANSWER_MAX_TRIES = env.int("GUICHET_SECRET_ANSWER_MAX_TRIES", default=3)
# Four-eyes on confirmations (tickets/four_eyes.py, docs/product.md): `risky` (default) asks a
# second, different staff member to approve the risky ones only; `all` widens it to every
# confirmation. It can only widen: the risky ones always need two people.
GUICHET_FOUR_EYES = env.str("GUICHET_FOUR_EYES", default="risky")
if GUICHET_FOUR_EYES not in ("risky", "all"):
    raise ValueError("GUICHET_FOUR_EYES must be 'risky' or 'all'")
# Lifetime of the link that confirms a self-service e-mail change (sent to the new address).
GUICHET_EMAIL_CHANGE_LINK_SECONDS = env.int("GUICHET_EMAIL_CHANGE_LINK_SECONDS", default=3600)
# A change of the address on file (self-service or by support) waits this many hours, during
# which the old address can veto it (docs/product.md, "E-mail changes wait"); 0 = at once (a lab).
GUICHET_EMAIL_CHANGE_DELAY_HOURS = env.int("GUICHET_EMAIL_CHANGE_DELAY_HOURS", default=72)
if GUICHET_EMAIL_CHANGE_DELAY_HOURS < 0:
    raise ValueError("GUICHET_EMAIL_CHANGE_DELAY_HOURS must be an integer >= 0")
# Form-triggered e-mails per recipient address per hour (docs/product.md §6).
GUICHET_EMAILS_PER_ADDRESS_PER_HOUR = env.int("GUICHET_EMAILS_PER_ADDRESS_PER_HOUR", default=5)
GUICHET_SUBMISSIONS_PER_IP_PER_HOUR = env.int("GUICHET_SUBMISSIONS_PER_IP_PER_HOUR", default=30)
GUICHET_SUBMISSIONS_PER_IDENTIFIER_PER_HOUR = env.int(
    "GUICHET_SUBMISSIONS_PER_IDENTIFIER_PER_HOUR", default=5
)
GUICHET_STATUS_PAGE_PER_IP_PER_MINUTE = env.int("GUICHET_STATUS_PAGE_PER_IP_PER_MINUTE", default=30)
GUICHET_LOGIN_FAILURES_BEFORE_LOCK = env.int("GUICHET_LOGIN_FAILURES_BEFORE_LOCK", default=10)
GUICHET_LOGIN_LOCK_SECONDS = env.int("GUICHET_LOGIN_LOCK_SECONDS", default=15 * 60)
GUICHET_LOGIN_FAILURES_PER_IP_PER_HOUR = env.int(
    "GUICHET_LOGIN_FAILURES_PER_IP_PER_HOUR", default=50
)
# Staff second factor (docs/security.md §40): sensitive actions need a code verified this recently.
GUICHET_STEP_UP_SECONDS = env.int("GUICHET_STEP_UP_SECONDS", default=600)
# Fernet key (urlsafe base64, 32 bytes) encrypting authenticator keys at rest; empty = derived
# from SECRET_KEY (rotating SECRET_KEY then means every staff member enrols again).
GUICHET_OTP_ENCRYPTION_KEY = env.str("GUICHET_OTP_ENCRYPTION_KEY", default="")
if not GUICHET_OTP_ENCRYPTION_KEY and DEBUG and not env.str("SECRET_KEY", default=""):
    # `make run`: SECRET_KEY changes at every process start, the demo's authenticators must not
    # (seed_demo and runserver are separate processes): a development key kept under var/.
    _dev_otp_key = VAR_DIR / "dev-otp-key"
    if not _dev_otp_key.exists():
        import base64
        import os

        VAR_DIR.mkdir(parents=True, exist_ok=True)
        fd = os.open(_dev_otp_key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.urlsafe_b64encode(os.urandom(32)).decode())
    GUICHET_OTP_ENCRYPTION_KEY = _dev_otp_key.read_text().strip()
# The name authenticator apps show beside the account.
GUICHET_OTP_ISSUER = env.str("GUICHET_OTP_ISSUER", default="Guichet")
# How many reverse proxies in front of us append to X-Forwarded-For; 0 = use REMOTE_ADDR only.
GUICHET_TRUSTED_PROXY_COUNT = env.int("GUICHET_TRUSTED_PROXY_COUNT", default=0)
# An outbox message claimed by a worker that vanished is retried after this lease.
GUICHET_OUTBOX_LEASE_SECONDS = env.int("GUICHET_OUTBOX_LEASE_SECONDS", default=120)
GUICHET_OUTBOX_MAX_ATTEMPTS = env.int("GUICHET_OUTBOX_MAX_ATTEMPTS", default=8)
# Retention (docs/operations.md): days after which a sent or failed e-mail forgets its recipient
# address and context, and a finished e-mail change request is deleted; rows per purge batch.
GUICHET_OUTBOX_RETENTION_DAYS = env.int("GUICHET_OUTBOX_RETENTION_DAYS", default=90)
GUICHET_EMAIL_CHANGE_RETENTION_DAYS = env.int("GUICHET_EMAIL_CHANGE_RETENTION_DAYS", default=30)
# Access journal (who looked at which member's file): rows kept this many days.
GUICHET_ACCESS_JOURNAL_DAYS = env.int("GUICHET_ACCESS_JOURNAL_DAYS", default=365)
GUICHET_RETENTION_BATCH = env.int("GUICHET_RETENTION_BATCH", default=1000)
GUICHET_WORKER_HEARTBEAT_MAX_AGE = env.int("GUICHET_WORKER_HEARTBEAT_MAX_AGE", default=120)

# --- Supervisors' views: business calendar, per-kind targets, the codes promise ---------------
# Opening hours used to count a ticket's waiting time in business hours (weekday 0 = Monday).
GUICHET_BUSINESS_HOURS = {
    "timezone": env.str("GUICHET_BUSINESS_TIMEZONE", default="Europe/Paris"),
    "weekdays": env.list("GUICHET_BUSINESS_WEEKDAYS", cast=int, default=[0, 1, 2, 3, 4]),
    "opens": env.str("GUICHET_BUSINESS_OPENS", default="09:00"),
    "closes": env.str("GUICHET_BUSINESS_CLOSES", default="18:00"),
}
# Public holidays of this country, every year, from the `holidays` library ("" = none); a
# subdivision adds regional ones: "57" (Moselle) or "6AE" (Alsace) for Alsace-Moselle.
GUICHET_HOLIDAYS_COUNTRY = env.str("GUICHET_HOLIDAYS_COUNTRY", default="FR")
GUICHET_HOLIDAYS_SUBDIV = env.str("GUICHET_HOLIDAYS_SUBDIV", default="")
# Extra ISO dates on which the desk is closed (bridges, a site closure), on top of the holidays.
GUICHET_PUBLIC_HOLIDAYS = env.list("GUICHET_PUBLIC_HOLIDAYS", default=[])
# Target time to a decision per ticket kind, in business hours (a kind left out has no target).
GUICHET_TARGET_BUSINESS_HOURS = {
    "REG": env.int("GUICHET_TARGET_REG_HOURS", default=16),
    "REC": env.int("GUICHET_TARGET_REC_HOURS", default=8),
    "EML": env.int("GUICHET_TARGET_EML_HOURS", default=16),
    "CLO": env.int("GUICHET_TARGET_CLO_HOURS", default=40),
    "ACC": env.int("GUICHET_TARGET_ACC_HOURS", default=8),
}
# The insurer's promise: codes accepted by the mail server within this many minutes of a decision.
GUICHET_PROMISE_MINUTES = env.int("GUICHET_PROMISE_MINUTES", default=10)
# A claim older than this (hours) on an open ticket is "stale" and may be released in bulk.
GUICHET_STALE_CLAIM_HOURS = env.int("GUICHET_STALE_CLAIM_HOURS", default=4)
# Closed days whose rollups the hourly task recomputes (codes e-mails accepted after midnight).
GUICHET_ROLLUP_REFRESH_DAYS = env.int("GUICHET_ROLLUP_REFRESH_DAYS", default=3)
# A worker refuses to start on an unsafe broker (docs/security.md §23); DEBUG turns the refusal off.
GUICHET_BROKER_CHECK_ON_WORKER_START = env.bool(
    "GUICHET_BROKER_CHECK_ON_WORKER_START", default=not DEBUG
)
# A broker that refuses CONFIG GET (managed Redis): "warn" (default, the worker starts and logs
# guichet.W001) or "strict" (guichet.E006: refuse, as for an evicting broker).
GUICHET_BROKER_CONFIG_CHECK = env.str("GUICHET_BROKER_CONFIG_CHECK", default="warn")
# With DEBUG off, check --deploy and the web and worker processes refuse e-mail to files or the
# console, an in-process broker, per-process limits (core.checks.deployment_is_safe). A lab may
# allow each one explicitly; the override is logged at every start.
GUICHET_ALLOW_UNSAFE_EMAIL = env.bool("GUICHET_ALLOW_UNSAFE_EMAIL", default=False)
GUICHET_ALLOW_UNSAFE_BROKER = env.bool("GUICHET_ALLOW_UNSAFE_BROKER", default=False)
GUICHET_ALLOW_UNSAFE_LIMITS = env.bool("GUICHET_ALLOW_UNSAFE_LIMITS", default=False)
# Fault tests only: lets GUICHET_FAULT_INJECT kill a worker at a named step. Never in production.
GUICHET_ALLOW_FAULT_INJECTION = env.bool("GUICHET_ALLOW_FAULT_INJECTION", default=False)
# Pending outbox rows younger than this are left to the after-commit publish, not the sweep.
GUICHET_OUTBOX_SWEEP_GRACE_SECONDS = env.int("GUICHET_OUTBOX_SWEEP_GRACE_SECONDS", default=30)
# A pending e-mail never attempted this many minutes after it was queued is "stuck" (the broker or
# the workers are not taking it): the supervisors' troubled e-mails list shows it.
GUICHET_OUTBOX_STUCK_MINUTES = env.int("GUICHET_OUTBOX_STUCK_MINUTES", default=10)
# First retry delay after a failed send; doubles per attempt up to an hour.
GUICHET_OUTBOX_RETRY_BASE_SECONDS = env.int("GUICHET_OUTBOX_RETRY_BASE_SECONDS", default=30)

# --- Overload shedding (docs/operations.md, "Overload") -------------------------------------------
# Password hashes (Argon2) at once per node; beyond, the forms below answer 503 at once. 0 = off.
GUICHET_HASH_CONCURRENCY = env.int("GUICHET_HASH_CONCURRENCY", default=os.cpu_count() or 2)
GUICHET_SHED_DIR = env.str("GUICHET_SHED_DIR", default=str(VAR_DIR / "shed"))
GUICHET_SHED_RETRY_AFTER_SECONDS = env.int("GUICHET_SHED_RETRY_AFTER_SECONDS", default=5)
# URL names of the public POSTs that hash (docs/interfaces.md lists the paths).
GUICHET_SHED_URL_NAMES = env.list(
    "GUICHET_SHED_URL_NAMES",
    default=["register", "recover", "support", "login", "email_change", "password_change"],
)

# --- Metrics (docs/operations.md, "Metrics") ------------------------------------------------------
# GET /metrics answers a bearer token, or a peer (REMOTE_ADDR) in one of these networks.
GUICHET_METRICS_TOKEN = env.str("GUICHET_METRICS_TOKEN", default="")
GUICHET_METRICS_ALLOWED_NETWORKS = env.list(
    "GUICHET_METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"]
)
# The Celery worker's own exporter (core/worker_metrics.py): 0 = off; same token and networks.
GUICHET_WORKER_METRICS_PORT = env.int("GUICHET_WORKER_METRICS_PORT", default=0)
GUICHET_WORKER_METRICS_BIND = env.str("GUICHET_WORKER_METRICS_BIND", default="127.0.0.1")

# --- Logging: no secrets, CR/LF encoded, UTC timestamps -----------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
# "json" (one object per line with the request id: production) or "text" (make run).
LOG_FORMAT = env.str("LOG_FORMAT", default="text" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "encode_controls": {"()": "core.logging.ControlCharacterFilter"},
        "request_id": {"()": "core.logging.RequestIdFilter"},
    },
    "formatters": {
        "utc": {
            "()": "core.logging.UTCFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
        "json": {"()": "core.logging.JSONFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "utc",
            "filters": ["encode_controls", "request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
    },
}

# --- Machine interface (api/, docs/interfaces.md "API") -----------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.auth.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.auth.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["api.auth.ClientRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["api.parsers.TextJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.problems.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Guichet API",
    "DESCRIPTION": "Submit members' requests, follow them, feed the registry, read events.",
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the sidecar package: served by us (no CDN), allowed by the CSP.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # The event types appear in the feed and in webhook subscriptions: one named enum for both.
    "ENUM_NAME_OVERRIDES": {"EventTypeEnum": "api.serializers.EVENT_TYPE_CHOICES"},
}
# Access tokens from POST /api/v1/token live this long (hashed at rest).
GUICHET_API_TOKEN_TTL_SECONDS = env.int("GUICHET_API_TOKEN_TTL_SECONDS", default=900)
# After `api_client rotate`, the previous secret still works this long.
GUICHET_API_ROTATE_GRACE_SECONDS = env.int("GUICHET_API_ROTATE_GRACE_SECONDS", default=24 * 3600)
# Calls per client per minute unless the client has its own figure (`--rate`).
GUICHET_API_CALLS_PER_MINUTE = env.int("GUICHET_API_CALLS_PER_MINUTE", default=600)
# Largest registry batch accepted by POST /api/v1/registry/members.
GUICHET_API_REGISTRY_BATCH_MAX = env.int("GUICHET_API_REGISTRY_BATCH_MAX", default=1000)
# Events newer than this are not served yet, so a transaction that commits late is never skipped.
GUICHET_API_EVENTS_SETTLE_SECONDS = env.int("GUICHET_API_EVENTS_SETTLE_SECONDS", default=2)
# Webhooks: a target on a private or loopback address is refused unless this is on (tests only).
GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool(
    "GUICHET_WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False
)
# Fraud veto hook (workflows/services/veto.py, docs/interfaces.md): before a risky confirmation
# is carried out, a signed POST to this URL; only a signed "allow" lets it go on (fail closed).
# Empty = no hook. The secret signs both ways and is required with the URL.
GUICHET_FRAUD_VETO_URL = env.str("GUICHET_FRAUD_VETO_URL", default="")
GUICHET_FRAUD_VETO_SECRET = env.str("GUICHET_FRAUD_VETO_SECRET", default="")
if GUICHET_FRAUD_VETO_URL and len(GUICHET_FRAUD_VETO_SECRET) < 32:
    raise ValueError(
        "GUICHET_FRAUD_VETO_URL needs GUICHET_FRAUD_VETO_SECRET (32 characters or more)"
    )
GUICHET_WEBHOOK_MAX_ATTEMPTS = env.int("GUICHET_WEBHOOK_MAX_ATTEMPTS", default=10)
GUICHET_WEBHOOK_RETRY_BASE_SECONDS = env.int("GUICHET_WEBHOOK_RETRY_BASE_SECONDS", default=30)
