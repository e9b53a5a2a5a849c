"""Settings for trialdesk, read from the environment in one place.

Every deployment-specific value comes from an environment variable with a safe
development default; nothing secret is committed.
"""

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-not-for-production"  # noqa: S105
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000")

INSTALLED_APPS = [
    "edc.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "pgtrigger",
    "pghistory",
    "pghistory.admin",
    "edc.core",
    "accounts",
    "trials",
    "subjects",
    "visits",
    "epro",
    "adverse_events",
    "data_management",
    "exports",
    "notifications",
    "edc.apps.ProjectConfig",
]

# What the core (edc.core) needs from the domain apps, by name (edc.core.hooks, checked at
# start-up): the core imports no domain app.
EDC_TRIAL_MODEL = "trials.Trial"
EDC_MEMBERSHIP_MODEL = "subjects.Membership"
EDC_BLINDING_POLICY = "trials.masking"
EDC_WRITE_GUARD = "data_management.guards"
# The dose-finding recommendation enrollment follows (it reads adverse events, above subjects).
SUBJECTS_DOSE_ADVISOR = "adverse_events.dose_escalation.recommendation"
# What the apps above subjects add to the admin's subject list and page (subjects.page_sections).
SUBJECTS_PAGE_SECTIONS = ["visits.subject_page.Schedule",
                          "adverse_events.subject_page.AdverseEvents"]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # static files (admin CSS, API docs) from gunicorn itself, compressed and cached
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # the language of pages and API messages: the admin's language switch (cookie), else the
    # browser's Accept-Language, else LANGUAGE_CODE
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "pghistory.middleware.HistoryMiddleware",
    "edc.core.api.limits.RequestLimitsMiddleware",
    "edc.core.api.idempotency.IdempotencyMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "edc.urls"
WSGI_APPLICATION = "edc.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "edc" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Seconds a process keeps its database connection (0: one per request); a kept connection is
# checked before each request reuses it, so a restarted or failed-over server costs no error.
DB_CONN_MAX_AGE = int(os.environ.get("DB_CONN_MAX_AGE", "0"))
# PostgreSQL is the only supported engine (see edc.core.checks).
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/trialdesk",
        conn_max_age=DB_CONN_MAX_AGE, conn_health_checks=DB_CONN_MAX_AGE > 0,
    )
}
# A streaming replica (hot standby) for exports, listings and reports (edc.core.replica): only
# reads that ask for it go there; the ORM, every write and every read of one's own writes stay
# on the primary. Tests mirror it to the primary's test database.
if os.environ.get("DATABASE_REPLICA_URL"):
    DATABASES["replica"] = {
        **dj_database_url.parse(os.environ["DATABASE_REPLICA_URL"],
                                conn_max_age=DB_CONN_MAX_AGE,
                                conn_health_checks=DB_CONN_MAX_AGE > 0),
        "TEST": {"MIRROR": "default"},
    }
    DATABASE_ROUTERS = ["edc.core.replica.PrimaryRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Deployment roles (README "Deployment roles"): the application logs in as a least-privilege
# role (no superuser, owns no table: no TRUNCATE, no ALTER/DISABLE TRIGGER, no
# session_replication_role); migrations run as the owner role. ``migrate`` run by the owner
# creates this role if it is missing (LOGIN, with this password when one is given) and grants
# it data access on every table and sequence (``edc.core.dbroles``).
DATABASE_APP_ROLE = os.environ.get("DATABASE_APP_ROLE", "trialdesk_app")
DATABASE_APP_PASSWORD = os.environ.get("DATABASE_APP_PASSWORD", "")

# Password policy (21 CFR 11.300(b)): at least 12 characters, not common, not all digits,
# not close to the user's name or e-mail.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": int(os.environ.get("PASSWORD_MIN_LENGTH", "12"))}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Accounts (21 CFR 11.300(d)): django-axes locks an account (by username, whatever the entry
# point: admin, API session or token log-in, e-signature) after AXES_FAILURE_LIMIT failed
# password attempts in a row, for AXES_COOLOFF_TIME or until an admin unlocks it.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "30")))
AXES_LOCKOUT_PARAMETERS = ["username"]  # the account, not a hospital's shared address
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
# Sessions end after SESSION_IDLE_TIMEOUT_SECONDS without a request (sliding: every request
# renews the expiry) and when the browser closes.
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_IDLE_TIMEOUT_SECONDS", str(30 * 60)))
SESSION_SAVE_EVERY_REQUEST = True
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
# API tokens (django-rest-knox): hashed in the database, refused after their expiry.
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=int(os.environ.get("API_TOKEN_TTL_HOURS", "10"))),
    "AUTO_REFRESH": False,
}
# Request limits for the JSON API (answered in the JSON error shape, edc.core.api.limits).
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("API_MAX_BODY_BYTES", str(2_621_440)))
API_JSON_MAX_DEPTH = int(os.environ.get("API_JSON_MAX_DEPTH", "32"))
# An Idempotency-Key claim whose request never finished is taken over after this.
IDEMPOTENCY_CLAIM_TIMEOUT_SECONDS = int(os.environ.get("IDEMPOTENCY_CLAIM_TIMEOUT_SECONDS",
                                                       "120"))

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
# The sites' languages (seed sites in China and France). Messages are extracted with
# ``manage.py makemessages`` into locale/ and compiled at install (README, scripts/install-browser
# installs gettext's msgfmt): locale/<lang>/LC_MESSAGES/django.po -> .mo.
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文"), ("fr", "Français")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Pages format dates and numbers in the active language (Django's formats: zh-hans
# 2026年11月30日, fr 30/11/2026 and 66,7; English short dates 2026-11-30, edc/formats/en);
# the API and the exports stay ISO 8601 with a decimal point.
FORMAT_MODULE_PATH = ["edc.formats"]
# Notifications are written in the language of the site's country (else LANGUAGE_CODE).
NOTIFICATION_LANGUAGES = {"China": "zh-hans", "France": "fr"}
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "var" / "static"))
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "var" / "media"))

# Source documents (data_management.source_documents): the storage alias
# "source_documents". Local disk under MEDIA_ROOT/source-documents/ by default (demo, tests),
# never served as static media (downloads go through the API's checks); an S3-compatible
# bucket when SOURCE_DOCUMENTS_S3_BUCKET is set (needs the "s3" extra: django-storages[s3]).
SOURCE_DOCUMENT_MAX_BYTES = int(os.environ.get("SOURCE_DOCUMENT_MAX_BYTES", str(20 * 1024 * 1024)))
if os.environ.get("SOURCE_DOCUMENTS_S3_BUCKET"):
    SOURCE_DOCUMENTS_STORAGE = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": os.environ["SOURCE_DOCUMENTS_S3_BUCKET"],
            "endpoint_url": os.environ.get("SOURCE_DOCUMENTS_S3_ENDPOINT_URL") or None,
            "region_name": os.environ.get("SOURCE_DOCUMENTS_S3_REGION") or None,
            # credentials: boto3's own environment (AWS_ACCESS_KEY_ID, ...) or instance role
            "location": os.environ.get("SOURCE_DOCUMENTS_S3_PREFIX", ""),
            "default_acl": None,
            "file_overwrite": False,
            "querystring_auth": True,
        },
    }
else:
    SOURCE_DOCUMENTS_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
# A multipart upload's body: one source document and its form fields.
API_MAX_UPLOAD_BYTES = SOURCE_DOCUMENT_MAX_BYTES + 64 * 1024
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "source_documents": SOURCE_DOCUMENTS_STORAGE,
}

LOGIN_URL = "admin:login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "edc.core.api.limits.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": [
        "edc.core.api.filters.PolicyFilterBackend",
        "edc.core.api.filters.PolicyOrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "edc.core.api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "edc.core.api.errors.exception_handler",
    "DEFAULT_VERSIONING_CLASS": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "trialdesk API",
    "DESCRIPTION": "Electronic Data Capture for early-phase cell-therapy and oncology trials.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc from the installed package (drf-spectacular-sidecar): no CDN, so the
    # docs render offline and behind firewalls.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "edc.core.api.schema.add_error_responses",
    ],
}

# Celery: Redis broker; results that matter land in PostgreSQL, not in a result backend.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "trialdesk")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 2}
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE = {
    "requeue-pending-work": {"task": "edc.core.tasks.requeue_pending",
                             "schedule": float(os.environ.get("OUTBOX_SWEEP_SECONDS", "15"))},
    "overdue-visit-queries": {"task": "data_management.tasks.raise_overdue_visit_queries",
                              "schedule": 24 * 60 * 60.0},
    "sae-overdue": {"task": "adverse_events.tasks.raise_overdue_saes", "schedule": 300.0},
    "toxicity-ongoing-daily": {"task": "adverse_events.tasks.reevaluate_ongoing_toxicity",
                               "schedule": 24 * 60 * 60.0},
    "deliver-notifications": {"task": "notifications.tasks.deliver_due_notifications",
                              "schedule": 60.0},
    "verify-audit-trail": {"task": "edc.core.tasks.verify_audit_trail",
                           "schedule": float(os.environ.get("AUDIT_VERIFY_SECONDS", "3600"))},
    "prune-bookkeeping": {"task": "edc.core.tasks.prune_bookkeeping", "schedule": 3600.0},
    "remove-expired-tokens": {"task": "accounts.tasks.remove_expired_tokens",
                              "schedule": 3600.0},
    "epro-reminders": {"task": "epro.tasks.remind_due_forms", "schedule": 3600.0},
}
# Bookkeeping rows (never clinical data) kept this long, then pruned hourly: finished outbox
# rows (done/failed) and idempotency records (a client retries within minutes, not days).
OUTBOX_KEEP_DAYS = int(os.environ.get("OUTBOX_KEEP_DAYS", "30"))
IDEMPOTENCY_KEEP_HOURS = int(os.environ.get("IDEMPOTENCY_KEEP_HOURS", "48"))

# Outbox: pending work older than this is re-queued by the sweep.
OUTBOX_REQUEUE_AFTER_SECONDS = int(os.environ.get("OUTBOX_REQUEUE_AFTER_SECONDS", "30"))
# A task started this long ago whose row its worker no longer locks lost its worker: re-sent.
OUTBOX_ORPHAN_AFTER_SECONDS = int(os.environ.get("OUTBOX_ORPHAN_AFTER_SECONDS", "20"))

# Safety alerts by email (notifications): Django's SMTP backend, configured here only.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "10"))
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "trialdesk@localhost")
#: The address of this EDC as its users reach it: links in alerts point there.
TRIALDESK_BASE_URL = os.environ.get("TRIALDESK_BASE_URL", "http://127.0.0.1:8000")
# A notification the mail server did not accept is retried after this many seconds, doubled
# after every failure up to the maximum (notifications.services.deliver_due).
NOTIFICATION_RETRY_BASE_SECONDS = int(os.environ.get("NOTIFICATION_RETRY_BASE_SECONDS", "60"))
NOTIFICATION_RETRY_MAX_SECONDS = int(os.environ.get("NOTIFICATION_RETRY_MAX_SECONDS", "3600"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# Audit trail (django-pghistory): every clinical model is tracked by PostgreSQL triggers.
# The context (user, reason, url) is stored in the event row itself and event tables are
# append-only, so the whole audit record is protected against UPDATE and DELETE.
import pghistory  # noqa: E402

PGHISTORY_CONTEXT_FIELD = pghistory.ContextJSONField()
PGHISTORY_APPEND_ONLY = True
PGHISTORY_OBJ_FIELD = pghistory.ObjForeignKey(db_index=True)
# Event rows carry the database role that wrote them and a hash chained per table
# (``edc.core.audit_integrity``); the context is signed with AUDIT_SIGNING_KEY so that a context a
# session set by hand (a forged user or reason) is reported by ``verify_audit``.
PGHISTORY_JSON_ENCODER = "edc.core.audit_integrity.SigningEncoder"
AUDIT_SIGNING_KEY = os.environ.get("AUDIT_SIGNING_KEY", "")
if not AUDIT_SIGNING_KEY:
    if not DEBUG:
        raise RuntimeError("AUDIT_SIGNING_KEY must be set when DEBUG is off")
    AUDIT_SIGNING_KEY = "dev-only-audit-signing-key"  # noqa: S105

# ePRO links (epro): a link expires this many hours after it is issued, or at the end of its
# visit's window, whichever comes first; the patient pages and link issue are rate-limited.
# Rate-limit counters (and any other cache use) live in the default cache, a Redis shared by
# every web process (a limit is one limit, however many processes serve): CACHE_URL, else the
# broker's Redis with the next database number (broker db 0 -> cache db 1), never the broker's
# own database (clearing the cache empties its database). CACHE_URL=locmem:// keeps counters
# in the process (the demo without Redis).
def _cache_url(broker: str) -> str:
    parts = urlsplit(broker)
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db + 1) % 16}"))


CACHE_URL = os.environ.get("CACHE_URL") or _cache_url(CELERY_BROKER_URL)
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
          if CACHE_URL.startswith("locmem:") else
          {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
EPRO_LINK_TTL_HOURS = int(os.environ.get("EPRO_LINK_TTL_HOURS", "72"))
EPRO_PAGE_RATE = os.environ.get("EPRO_PAGE_RATE", "300/min")  # patient pages, per address
# (one patient makes about 65 requests for a form; tablets of a site share one address)
EPRO_ISSUE_RATE = os.environ.get("EPRO_ISSUE_RATE", "60/hour")  # link issue, per user

# Secret mixed into allocation-list seeds: lists are reproducible by whoever holds it only.
RANDOMIZATION_SECRET = os.environ.get("RANDOMIZATION_SECRET", "dev-only-randomization-secret")
