"""Settings, 12-factor: everything that differs between installs is an environment variable.

Embedded default (no server needed): SQLite and a filesystem Celery broker under
DATA_DIR. Production: DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis).
"""
import json
import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("IDP_DATA_DIR", BASE_DIR / "var"))
DATA_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in ("1", "true", "yes", "on")


DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "insecure-development-key-only-for-DJANGO_DEBUG"
ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "auditlog",
    "policy",
    "scheduler",
    "cells",
    "dr",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context.navigation",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'idp.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several processes (portal, workers) share the file: WAL lets readers run beside the writer, and
    # IMMEDIATE transactions take the write lock up front (waiting up to the timeout) instead of failing
    # with "database is locked" when a read transaction tries to upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        timeout=20, transaction_mode="IMMEDIATE",
        init_command="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True  # serve static/ without a collectstatic step

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

REST_FRAMEWORK = {
    # Token first so an unauthenticated call gets 401 with WWW-Authenticate: Token.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "cells.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "idp-multicloud API",
    "DESCRIPTION": "Self-service multi-cloud DR: place a cell, provision data and compute DR, read its status.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from our own static files (drf-spectacular-sidecar): no CDN at run time.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# The active policy file. An invalid edit is reported and never replaces the active policy.
IDP_POLICY_FILE = Path(os.environ.get("IDP_POLICY_FILE", BASE_DIR / "policy" / "policy.yaml"))

# Delivery of rendered manifests: "gitops" (commit into a git repository) or "kubernetes" (server-side apply).
IDP_DELIVERY_TARGET = os.environ.get("IDP_DELIVERY_TARGET", "gitops")
IDP_GITOPS_REPO = Path(os.environ.get("IDP_GITOPS_REPO", DATA_DIR / "gitops"))
IDP_GITOPS_REMOTE = os.environ.get("IDP_GITOPS_REMOTE", "")  # e.g. git@github.com:acme/platform-gitops.git
IDP_GITOPS_BRANCH = os.environ.get("IDP_GITOPS_BRANCH", "main")
IDP_GITOPS_SSH_KEY = os.environ.get("IDP_GITOPS_SSH_KEY", "")  # path to a mounted deploy key
# One management cluster per cloud, by kubeconfig context: {"oci": "mgmt-oci", "aws": "mgmt-aws", ...}
IDP_KUBE_CONTEXTS = json.loads(os.environ.get("IDP_KUBE_CONTEXTS", "{}"))
IDP_KUBECONFIG = os.environ.get("IDP_KUBECONFIG") or None
# Where observed cluster state comes from: "simulator" (plays Argo CD and Crossplane over what was delivered) or "kubernetes".
IDP_STATUS_SOURCE = os.environ.get("IDP_STATUS_SOURCE", "simulator")
# The simulator: seconds a composed cloud resource takes to report Ready and pods to start.
IDP_SIMULATOR_READY_DELAY = float(os.environ.get("IDP_SIMULATOR_READY_DELAY", "3"))
# "deliver": the platform package (XRDs, Compositions, Function) goes with the claims to each management
# cluster; "external": the platform team installs it (python manage.py platform install, or its own GitOps).
IDP_PLATFORM_PACKAGE = os.environ.get("IDP_PLATFORM_PACKAGE", "deliver")
# Provider names (from the policy) that the sandbox plays in this deployment: "*" for all (the embedded
# default with DJANGO_DEBUG), empty in production so every provider needs its real adapter and credentials.
IDP_SANDBOX_PROVIDERS = [p.strip() for p in os.environ.get("IDP_SANDBOX_PROVIDERS", "*" if DEBUG else "").split(",") if p.strip()]
# The cells' database connections for the mysql adapters (a mounted YAML/JSON file; see dr/mysqlconn.py).
IDP_MYSQL_CONNECTIONS = os.environ.get("IDP_MYSQL_CONNECTIONS", "")
# PowerDNS (the powerdns traffic provider): API URL, key, zones, and a DNS server to verify answers against.
IDP_POWERDNS_URL = os.environ.get("IDP_POWERDNS_URL", "")
IDP_POWERDNS_API_KEY = os.environ.get("IDP_POWERDNS_API_KEY", "")
IDP_POWERDNS_SERVER_ID = os.environ.get("IDP_POWERDNS_SERVER_ID", "localhost")
IDP_POWERDNS_ZONES = [z.strip() for z in os.environ.get("IDP_POWERDNS_ZONES", "").split(",") if z.strip()]
IDP_POWERDNS_RESOLVER = os.environ.get("IDP_POWERDNS_RESOLVER", "")  # host:port answering DNS queries
# Failover runs: a worker holding a run refreshes its heartbeat; a run whose heartbeat is older is resumed.
IDP_RUN_LEASE = float(os.environ.get("IDP_RUN_LEASE", "60"))
IDP_RUN_RESUME_INTERVAL = float(os.environ.get("IDP_RUN_RESUME_INTERVAL", "5"))
# Pipeline timing (seconds).
IDP_DISPATCH_INTERVAL = float(os.environ.get("IDP_DISPATCH_INTERVAL", "10"))
IDP_OBSERVE_INTERVAL = float(os.environ.get("IDP_OBSERVE_INTERVAL", "3"))
IDP_DELIVERY_LEASE = float(os.environ.get("IDP_DELIVERY_LEASE", "120"))  # a delivering row older than this is stale
IDP_DELIVERY_MAX_ATTEMPTS = int(os.environ.get("IDP_DELIVERY_MAX_ATTEMPTS", "8"))

# The embedded default: kombu's filesystem transport with atomic writes (portal/broker.py). No server needed.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "idpfs://")
if CELERY_BROKER_URL.startswith(("idpfs://", "filesystem://")):
    _broker_dir = DATA_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True  # progress lives in our own rows, never in a result backend
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# A request must answer at once even when the broker is down: the outbox row stays and the dispatcher sends it later.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    "dispatch-outbox": {"task": "cells.tasks.dispatch_outbox", "schedule": IDP_DISPATCH_INTERVAL},
    "observe-clusters": {"task": "cells.tasks.observe_clusters", "schedule": IDP_OBSERVE_INTERVAL},
    "resume-failover-runs": {"task": "dr.tasks.resume_stale_runs", "schedule": IDP_RUN_RESUME_INTERVAL},
    "scheduled-drills": {"task": "dr.tasks.run_scheduled_drills", "schedule": 300.0},
    "probe-replication-lag": {"task": "dr.tasks.probe_replication_lag",
                              "schedule": float(os.environ.get("IDP_LAG_PROBE_INTERVAL", "5"))},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

AUDITLOG_INCLUDE_ALL_MODELS = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}
