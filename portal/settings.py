"""Settings, 12-factor: everything that differs between installs is an environment variable.

Embedded default (no server needed): SQLite and a filesystem Celery broker under
DATA_DIR. Production: DATABASE_URL (PostgreSQL) and CELERY_BROKER_URL (Redis).
"""
import ipaddress
import json
import os
from datetime import timedelta
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
# Sessions, CSRF tokens and password reset links are signed with it: in production it must be one Django's
# deploy check accepts (50+ characters, 5+ distinct, not a generated "django-insecure-" one).
if not DEBUG and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5 or SECRET_KEY.startswith("django-insecure-")):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is too weak for production: it needs at least 50 characters, 5 of them different "
        "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(64))')")
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
    "axes",  # locks out repeated failed sign-ins (below)
    "csp",  # Content-Security-Policy header (below)
    "policy",
    "scheduler",
    "cells",
    "dr",
    "portal",
]

MIDDLEWARE = [
    "portal.logs.RequestIdMiddleware",  # first: every log line and task of the request carries its id
    "portal.metrics.MetricsMiddleware",  # times the whole request
    "portal.ops.OpsEndpointsMiddleware",  # /healthz, /readyz, /metrics: before host checks, redirects, sessions
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "portal.api_errors.ApiErrorsMiddleware",  # /api/: unexpected errors and unknown URLs answer the API's JSON shape
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.input_guard.RejectNulMiddleware",  # a NUL in a query string: 400 naming the parameter, never a 500
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "auditlog.middleware.AuditlogMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into the sign-in page's answer (portal/signin.py)
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

# Single sign-on, OpenID Connect (portal/sso.py, mozilla-django-oidc): on when a client id and the provider (its
# discovery URL, or the endpoints) are set. Local accounts keep working beside it (the demo users, break-glass).
AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend", "portal.sso.SSOBackend"]  # SSO: inert when off
# django-axes first: it refuses a sign-in (even with the right password) while its user and address are locked out.
AUTHENTICATION_BACKENDS.insert(0, "axes.backends.AxesStandaloneBackend")
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_RP_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_RP_CLIENT_SECRET", "")
OIDC_OP_DISCOVERY_URL = os.environ.get("OIDC_OP_DISCOVERY_URL", "")  # .../.well-known/openid-configuration
OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("OIDC_OP_AUTHORIZATION_ENDPOINT", "")  # explicit ones win
OIDC_OP_TOKEN_ENDPOINT = os.environ.get("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = os.environ.get("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = os.environ.get("OIDC_OP_JWKS_ENDPOINT", "")
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = os.environ.get("OIDC_RP_SCOPES", "openid email profile")
OIDC_VERIFY_SSL = env_bool("OIDC_VERIFY_SSL", True)
OIDC_TIMEOUT = 10
OIDC_AUTHENTICATE_CLASS = "portal.sso.SSOAuthenticateView"
OIDC_CALLBACK_CLASS = "portal.sso.SSOCallbackView"
# The claim that lists the person's groups, and what a group gives: "operators" or "team:<slug>" (others: nothing).
IDP_OIDC_GROUPS_CLAIM = os.environ.get("IDP_OIDC_GROUPS_CLAIM", "groups")
try:
    IDP_OIDC_GROUP_MAP = json.loads(os.environ.get("IDP_OIDC_GROUP_MAP") or "{}")
except json.JSONDecodeError as _exc:
    raise ImproperlyConfigured(f"IDP_OIDC_GROUP_MAP is not JSON: {_exc}") from None
if not isinstance(IDP_OIDC_GROUP_MAP, dict) or not all(
        isinstance(v, str) and (v == "operators" or (v.startswith("team:") and v[5:])) for v in IDP_OIDC_GROUP_MAP.values()):
    raise ImproperlyConfigured('IDP_OIDC_GROUP_MAP must map group names to "operators" or "team:<slug>", '
                               'e.g. {"idp-operators": "operators", "team-payments": "team:payments"}')

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", DATA_DIR / "staticfiles"))  # the image collects into /app/staticfiles
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True  # serve static/ without a collectstatic step

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# Production is served over TLS. HSTS (DJANGO_SECURE_HSTS_SECONDS, 0 turns it off) and the redirect of plain
# HTTP to HTTPS default on when DJANGO_DEBUG is off; the probes and the scraper (/healthz, /readyz, /metrics)
# stay reachable over plain HTTP. Behind a proxy that terminates TLS, DJANGO_BEHIND_PROXY=1 trusts its
# X-Forwarded-Proto (and X-Forwarded-For for the sign-in lockout): the proxy must set both, never pass a client's.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
DJANGO_BEHIND_PROXY = env_bool("DJANGO_BEHIND_PROXY", False)
IDP_PROXY_COUNT = int(os.environ.get("IDP_PROXY_COUNT", "1"))  # proxies in front that append to X-Forwarded-For
if DJANGO_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SILENCED_SYSTEM_CHECKS = [
    # security.W021 (HSTS preload): joining the browsers' preload list is a decision for the owner of the whole
    # registrable domain (hstspreload.org), and hard to undo; DJANGO_SECURE_HSTS_PRELOAD=1 sends it.
    "security.W021",
]

# Content-Security-Policy (django-csp): scripts, styles and everything else from this origin only; no inline
# script or style, no eval (htmx runs with allowEval off and without its injected indicator styles, see
# base.html; the Swagger UI at /api/docs/ loads its init script from its own URL).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# The cache: API throttles count requests in it. IDP_CACHE_URL: locmem:// (default: per process, so each
# gunicorn worker counts on its own) or redis://host:6379/1 (shared: use it in production).
IDP_CACHE_URL = os.environ.get("IDP_CACHE_URL", "locmem://")
if IDP_CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": IDP_CACHE_URL}}
elif IDP_CACHE_URL.startswith("locmem://"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "idp"}}
else:
    raise ImproperlyConfigured(f"IDP_CACHE_URL must be locmem:// or redis://host:port/db, not {IDP_CACHE_URL!r}")

# Sign-in lockout (django-axes, records in the database: every process sees them). After
# IDP_LOGIN_FAILURE_LIMIT failed sign-ins of one user name from one address, that user name is refused from that
# address for IDP_LOGIN_COOLOFF_SECONDS, the right password too (the sign-in page says so). The portal's form and
# the admin's share it; API tokens are not passwords and are not affected. An operator unlocks early in the admin
# (Access attempts: delete) or with `python manage.py axes_reset_username USER`.
AXES_FAILURE_LIMIT = int(os.environ.get("IDP_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(seconds=float(os.environ.get("IDP_LOGIN_COOLOFF_SECONDS", "900")))
# IDP_LOGIN_LOCKOUT_BY: what is locked, comma-separated, "+" for a combination: username+ip_address (default),
# ip_address, username (beware: anyone can then lock a user out).
AXES_LOCKOUT_PARAMETERS = [p.split("+") if "+" in p else p for p in
                           (x.strip() for x in os.environ.get("IDP_LOGIN_LOCKOUT_BY", "username+ip_address").split(","))
                           if p]
AXES_RESET_ON_SUCCESS = True  # a successful sign-in clears the user's earlier failures
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # the lockout ends IDP_LOGIN_COOLOFF_SECONDS after it began
AXES_LOCKOUT_CALLABLE = "portal.signin.locked_out"  # the sign-in page with the reason, 429 and Retry-After
AXES_CLIENT_IP_CALLABLE = "portal.signin.client_ip"  # REMOTE_ADDR, or behind DJANGO_BEHIND_PROXY X-Forwarded-For
AXES_VERBOSE = False

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
    # JSON nested too deeply for the parser is a 400 (cells/api/parsers.py), not a RecursionError.
    "DEFAULT_PARSER_CLASSES": ["cells.api.parsers.JSONParser", "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    # 429 with Retry-After beyond IDP_API_THROTTLE_RATES (counted in the cache: CACHES above).
    "DEFAULT_THROTTLE_CLASSES": ["cells.api.throttles.AnonThrottle", "cells.api.throttles.UserThrottle"],
    # The client's address: REMOTE_ADDR, or behind DJANGO_BEHIND_PROXY the one the proxy appended (a client's own
    # X-Forwarded-For is never trusted).
    "NUM_PROXIES": IDP_PROXY_COUNT if DJANGO_BEHIND_PROXY else 0,
}
# Requests per client and period ("N/second|minute|hour|day"; "off": none): user = per signed-in user or token,
# anon = per address before authentication succeeds.
IDP_API_THROTTLE_RATES = {
    "user": os.environ.get("IDP_API_THROTTLE_USER", "1200/minute"),
    "anon": os.environ.get("IDP_API_THROTTLE_ANON", "120/minute"),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "idp-multicloud API",
    "DESCRIPTION": ("Self-service multi-cloud DR: place a cell, provision data and compute DR, read its status.\n\n"
                    "Authenticate with the header `Authorization: Token <key>`. Create or replace your token on "
                    "[your profile page](/profile/)."),
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
# An evacuation steps this many of a wave's runs at once in its worker (threads: the steps wait on I/O).
IDP_EVACUATION_THREADS = int(os.environ.get("IDP_EVACUATION_THREADS", "4"))
# ... and spreads each wave over this many worker processes (one Python process runs on one core): the others step
# their shard as a Celery task; a shard no worker has started is stepped by the evacuation's own worker.
IDP_EVACUATION_SHARDS = int(os.environ.get("IDP_EVACUATION_SHARDS", "2"))
# A shard holds at least this many runs: handing fewer to another process costs more than it saves.
IDP_EVACUATION_SHARD_MIN = int(os.environ.get("IDP_EVACUATION_SHARD_MIN", "20"))
# Pipeline timing (seconds).
IDP_DISPATCH_INTERVAL = float(os.environ.get("IDP_DISPATCH_INTERVAL", "10"))
IDP_OBSERVE_INTERVAL = float(os.environ.get("IDP_OBSERVE_INTERVAL", "3"))
IDP_DELIVERY_LEASE = float(os.environ.get("IDP_DELIVERY_LEASE", "120"))  # a delivering row older than this is stale
IDP_DELIVERY_MAX_ATTEMPTS = int(os.environ.get("IDP_DELIVERY_MAX_ATTEMPTS", "8"))
# /metrics (portal/metrics.py): a bearer token, and/or the networks allowed without one (unset: loopback only;
# set to empty: none). /readyz: how long the broker check waits.
IDP_METRICS_TOKEN = os.environ.get("IDP_METRICS_TOKEN", "")
IDP_METRICS_ALLOWED_NETWORKS = [n.strip() for n in os.environ.get("IDP_METRICS_ALLOWED_NETWORKS",
                                                                  "127.0.0.1/32,::1/128").split(",") if n.strip()]
for _net in IDP_METRICS_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_net, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"IDP_METRICS_ALLOWED_NETWORKS: {_exc}") from None
IDP_READYZ_BROKER_TIMEOUT = float(os.environ.get("IDP_READYZ_BROKER_TIMEOUT", "2"))

# Notifications (dr/notices.py, dr/notify.py): every notice is listed at /notifications/; it also goes to a
# Slack-compatible webhook when IDP_NOTIFY_WEBHOOK_URL is set, and by e-mail to the cell's team when IDP_NOTIFY_EMAIL
# is on (default: on when EMAIL_HOST is set). Links in them start with IDP_PUBLIC_URL.
IDP_PUBLIC_URL = os.environ.get("IDP_PUBLIC_URL", "http://localhost:8080").rstrip("/")
IDP_NOTIFY_WEBHOOK_URL = os.environ.get("IDP_NOTIFY_WEBHOOK_URL", "")  # a secret: never logged or stored
IDP_NOTIFY_EMAIL = env_bool("IDP_NOTIFY_EMAIL", bool(os.environ.get("EMAIL_HOST")))
IDP_NOTIFY_MAX_ATTEMPTS = int(os.environ.get("IDP_NOTIFY_MAX_ATTEMPTS", "6"))
IDP_NOTIFY_TIMEOUT = float(os.environ.get("IDP_NOTIFY_TIMEOUT", "10"))
IDP_DRILL_OVERDUE_GRACE = float(os.environ.get("IDP_DRILL_OVERDUE_GRACE", "3600"))  # s after a drill falls due
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "idp-multicloud <noreply@localhost>")

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
        # A worker with prefetch 1 asks for the next message after each task and sleeps this long when the
        # queue looked empty: kombu's default (1 s) caps the embedded broker at about one task a second.
        "polling_interval": 0.1,
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
    "resume-evacuations": {"task": "dr.tasks.resume_stale_evacuations", "schedule": IDP_RUN_RESUME_INTERVAL},
    "scheduled-drills": {"task": "dr.tasks.run_scheduled_drills", "schedule": 300.0},
    "resend-notices": {"task": "dr.tasks.resend_notices", "schedule": IDP_DISPATCH_INTERVAL},
    "probe-replication-lag": {"task": "dr.tasks.probe_replication_lag",
                              "schedule": float(os.environ.get("IDP_LAG_PROBE_INTERVAL", "5"))},
    # DR readiness: each tick queues the cell environments whose last evaluation is older than the policy's
    # readiness.evaluateEverySeconds (the period lives in the policy; this is only how often beat looks).
    "evaluate-readiness": {"task": "dr.tasks.evaluate_due_readiness", "schedule": 60.0},
    "prune-readiness": {"task": "dr.tasks.prune_readiness", "schedule": 3600.0},
    "downsample-lag": {"task": "dr.tasks.downsample_lag", "schedule": 600.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")

AUDITLOG_INCLUDE_ALL_MODELS = False

# One line per record on stderr with request_id (and task_id, task_name in workers): JSON in production, plain in
# development (portal/logs.py). Celery workers and beat use the same configuration.
from portal.logs import logging_config  # noqa: E402  (needs no settings: safe here)

LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain" if DEBUG else "json")
if LOG_FORMAT not in ("json", "plain"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, not {LOG_FORMAT!r}")
LOGGING = logging_config(LOG_FORMAT, os.environ.get("LOG_LEVEL", "INFO"))
