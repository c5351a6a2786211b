"""Settings: every knob is an environment variable (see .env.example)."""

import importlib.util
from pathlib import Path

import environ
from celery.schedules import crontab
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if env.bool("COMPLIANCE_READ_DOTENV", default=True) and (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

# DEMO runs the application with an insecure built-in key, debug pages and eager tasks.
DEMO = env.bool("DEMO", default=False)
DEBUG = env.bool("DEBUG", default=DEMO)
# An empty value counts as unset: a blank line copied from .env.example must not start a
# production site with an empty key, nor override the demo's.
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY and not DEMO:
    raise ImproperlyConfigured(
        "Set the SECRET_KEY environment variable to a long random string "
        "(only DEMO=true runs without one)."
    )
SECRET_KEY = SECRET_KEY or "demo-only-insecure-key-set-SECRET_KEY-in-production"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # Before Django's apps: its `migrate` (with lock and statement timeouts) replaces theirs,
    # and its template of the schedules' form replaces django-celery-beat's.
    "operations",
    "project.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "csp",
    "simple_history",
    "django_celery_beat",
    "versions",
    "compliance",
    "retention",
    "shop",
]
# The migration linter (a development tool) lints every migration when it is installed.
if importlib.util.find_spec("django_migration_linter") is not None:
    INSTALLED_APPS.append("django_migration_linter")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Only /privacy/ follows the browser's language (or the person's choice).
    "compliance.privacy_center.middleware.PrivacyLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After authentication, so the 400 page shows in the admin's layout for the user.
    "project.middleware.NulCharacterMiddleware",
    "versions.middleware.ChangeContextMiddleware",
    # After sessions, authentication and the change context: records a Global Privacy
    # Control opt-out before any view (and so any page script) runs.
    "compliance.privacy_center.middleware.GlobalPrivacyControlMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"
ASGI_APPLICATION = "project.asgi.application"

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
                "project.context_processors.demo",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# `migrate` on PostgreSQL sets these on its connection (operations/config.py, docs/migrations.md).
MIGRATION_LOCK_TIMEOUT = env.str("MIGRATION_LOCK_TIMEOUT", default="5s")
MIGRATION_STATEMENT_TIMEOUT = env.str("MIGRATION_STATEMENT_TIMEOUT", default="15min")
# The migration linter's exceptions, each with its reason (docs/migrations.md).
MIGRATION_LINTER_OPTIONS = {
    # Third-party migrations, released and applied upstream: not ours to change.
    "exclude_apps": ["django_celery_beat"],
    # Initial migrations only create new tables, which no running code reads yet.
    "ignore_initial_migrations": True,
    "ignore_name": [
        # versions 0003: varchar(500) -> text is binary-compatible on PostgreSQL (no rewrite)
        # and the ledger was unreleased; its new tables are new.
        "0003_ledger_keys_checkpoints_truncate",
        # shop 0005: the contract step of expand-contract; it drops `name` only after the code
        # stopped using it (0004) and refuses while a row lacks its full_name.
        "0005_customer_full_name_contract",
        # shop 0006: SET NOT NULL only after a validated CHECK proved no row is NULL, so
        # PostgreSQL skips the scan under the exclusive lock (operations/migration_operations.py).
        "0006_customer_full_name_required",
        # compliance 0002 creates its tables, then adds their foreign keys: on SQLite that
        # rebuilds tables created a moment before, which the linter reads as drops.
        "0002_requests_exports_consents_erasures",
        # compliance 0007: two indexes (the download key, one waiting export per subject) on
        # the export log, a row per export ever run: small, built in a moment under the lock.
        "0007_export_download_key_one_waiting",
        # compliance 0010: the index of who released an export, on the export log (small, as
        # for 0007), and the request index of the messages table it creates.
        "0010_delivery_release_messages",
    ],
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # shop 0002 lets `name` be null: SQLite rebuilds the table for that, PostgreSQL (where
    # production runs and CI lints it) only drops the constraint.
    MIGRATION_LINTER_OPTIONS["ignore_name"].append("0002_customer_full_name_expand")
    # compliance 0005 adds a column with a database default: SQLite rebuilds the table for
    # any NOT NULL column, PostgreSQL adds it without a rewrite.
    MIGRATION_LINTER_OPTIONS["ignore_name"].append("0005_export_subject_key")
    # versions 0009 adds a nullable unique column: SQLite rebuilds the table for the UNIQUE,
    # PostgreSQL adds the column and its index in place.
    MIGRATION_LINTER_OPTIONS["ignore_name"].append("0009_ledger_sequence")
    # compliance 0006 drops a foreign-key constraint: SQLite rebuilds the table for that,
    # PostgreSQL only drops the constraint (no rewrite, no scan).
    MIGRATION_LINTER_OPTIONS["ignore_name"].append("0006_consent_evidence_outlives_subject")
    # retention 0005 adds a column with a database default, as compliance 0005 does.
    MIGRATION_LINTER_OPTIONS["ignore_name"].append("0005_purge_run_model")
    # compliance 0008 adds the request's channel and contact columns with database defaults.
    MIGRATION_LINTER_OPTIONS["ignore_name"].append("0008_center_challenges_links_emails")
    # compliance 0009 adds the purpose's sale-or-sharing flag with a database default.
    MIGRATION_LINTER_OPTIONS["ignore_name"].append("0009_consentpurpose_sale_or_sharing")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
# The privacy center speaks the person's language (English or German); the admin stays English.
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")

# Security: secure by default outside debug; `manage.py check --deploy` must stay clean.
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
# Content-Security-Policy on every response (django-csp): scripts only from the site's own
# static files and URLs, so no inline script runs, whoever injected it; nothing framed,
# posted elsewhere or loaded from another origin. Styles allow inline ones: the stock admin
# writes style attributes and a <style> block, and a style cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# Versions are read, not reverted, until restore is a service that checks and logs it.
SIMPLE_HISTORY_REVERT_DISABLED = True
# Phone numbers are stored as E.164 (+442079460958) and shown spaced (+44 20 7946 0958).
PHONENUMBER_DEFAULT_FORMAT = "INTERNATIONAL"
SILENCED_SYSTEM_CHECKS = [
    # HSTS preloading is irreversible for the whole domain; the operator opts in with
    # SECURE_HSTS_PRELOAD=true once the domain is submitted to the preload list.
    "security.W021",
]

# Celery: without a broker, tasks run eagerly in-process (the demo).
# Email: EMAIL_URL (smtp://user:pass@host:587/?tls=True, or consolemail:// to print messages
# on the terminal, the demo's default).
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="privacy@localhost")
# The privacy center: code and link lifetimes, rate limits.
PRIVACY_CODE_MINUTES = env.int("PRIVACY_CODE_MINUTES", default=10)
PRIVACY_LINK_DAYS = env.int("PRIVACY_LINK_DAYS", default=30)
PRIVACY_RATE_PER_HOUR = env.int("PRIVACY_RATE_PER_HOUR", default=10)

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE = {
    "ledger-verify-daily": {
        "task": "versions.tasks.ledger_verify_scheduled",
        "schedule": 24 * 3600,
    },
    "retention-purge-daily": {
        "task": "retention.tasks.purge_scheduled",
        "schedule": 24 * 3600,
    },
    "requests-due-daily": {
        "task": "compliance.tasks.requests_due_report",
        "schedule": 24 * 3600,
    },
    "compliance-exports-expire-daily": {
        "task": "compliance.tasks.exports_expire_scheduled",
        "schedule": 24 * 3600,
    },
    # Backups at night: the daily one (a weekly on Sundays and a monthly on the 1st, so
    # each tier keeps its own history), cleanup after them, a drill of the newest weekly.
    "backup-daily": {
        "task": "operations.tasks.backup_create_task",
        "schedule": crontab(hour=2, minute=30),
        "args": ("daily",),
    },
    "backup-weekly": {
        "task": "operations.tasks.backup_create_task",
        "schedule": crontab(hour=3, minute=0, day_of_week=0),
        "args": ("weekly",),
    },
    "backup-monthly": {
        "task": "operations.tasks.backup_create_task",
        "schedule": crontab(hour=3, minute=30, day_of_month=1),
        "args": ("monthly",),
    },
    "backups-cleanup-daily": {
        "task": "operations.tasks.backups_cleanup_task",
        "schedule": crontab(hour=4, minute=0),
    },
    "backup-drill-weekly": {
        "task": "operations.tasks.backup_drill_latest_task",
        "schedule": crontab(hour=4, minute=30, day_of_week=0),
    },
}

# The application's own knobs, read through each app's config.py.
COMPLIANCE_SUBJECT_MODEL = env.str("COMPLIANCE_SUBJECT_MODEL", default="shop.Customer")
COMPLIANCE_TRUSTED_PROXY_COUNT = env.int("COMPLIANCE_TRUSTED_PROXY_COUNT", default=0)
COMPLIANCE_PROXY_SETS_REQUEST_ID = env.bool("COMPLIANCE_PROXY_SETS_REQUEST_ID", default=False)
PSEUDONYM_SECRET = env.str("PSEUDONYM_SECRET", default="")
# The data directory: where exports, archives, backups and the demo's ledger anchor go unless
# their own settings say otherwise.
DATA_DIR = Path(env.str("COMPLIANCE_DATA_DIR", default="") or BASE_DIR / "var")
COMPLIANCE_EXPORT_DIR = env.path("COMPLIANCE_EXPORT_DIR", default=DATA_DIR / "exports")
COMPLIANCE_EXPORT_EXPIRY_DAYS = env.int("COMPLIANCE_EXPORT_EXPIRY_DAYS", default=7)
# Who answers for the data, as an export's summary names them (GDPR Art. 13-15).
COMPLIANCE_CONTROLLER_NAME = env.str("COMPLIANCE_CONTROLLER_NAME", default="")
COMPLIANCE_CONTROLLER_CONTACT = env.str("COMPLIANCE_CONTROLLER_CONTACT", default="")
COMPLIANCE_DPO_CONTACT = env.str("COMPLIANCE_DPO_CONTACT", default="")
COMPLIANCE_SUPERVISORY_AUTHORITY = env.str("COMPLIANCE_SUPERVISORY_AUTHORITY", default="")
# Days the link to a copy released to the person stays valid (the copy is kept as long).
COMPLIANCE_DOWNLOAD_LINK_DAYS = env.int("COMPLIANCE_DOWNLOAD_LINK_DAYS", default=7)
RETENTION_ARCHIVE_DIR = env.path("RETENTION_ARCHIVE_DIR", default=DATA_DIR / "archives")
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=10_000)
# The ledger's key, never SECRET_KEY (see .env.example); retired keys still verify old entries.
LEDGER_SECRET = env.str("LEDGER_SECRET", default="")
LEDGER_PREVIOUS_SECRETS = env.list("LEDGER_PREVIOUS_SECRETS", default=[])
# Where the ledger's heads are anchored outside the database (docs/ledger.md): the demo keeps
# them in its data directory; `check --deploy` refuses a production without one.
LEDGER_HEAD_FILE = env.str(
    "LEDGER_HEAD_FILE", default=str(DATA_DIR / "ledger.head") if DEMO else ""
)
BACKUP_DIR = env.path("BACKUP_DIR", default=DATA_DIR / "backups")
# Thresholds of `manage.py doctor` (docs/doctor.md); its options override them per run.
DOCTOR_DEAD_TUPLE_RATIO = env.float("DOCTOR_DEAD_TUPLE_RATIO", default=0.2)
DOCTOR_DEAD_TUPLES = env.int("DOCTOR_DEAD_TUPLES", default=10_000)
DOCTOR_TRANSACTION_MINUTES = env.float("DOCTOR_TRANSACTION_MINUTES", default=5.0)
DOCTOR_LOCK_WAIT_SECONDS = env.float("DOCTOR_LOCK_WAIT_SECONDS", default=10.0)
DOCTOR_PURGE_STALE_DAYS = env.float("DOCTOR_PURGE_STALE_DAYS", default=2.0)
DOCTOR_PURGE_RUNNING_HOURS = env.float("DOCTOR_PURGE_RUNNING_HOURS", default=12.0)
DOCTOR_POLICY_PENDING_DAYS = env.float("DOCTOR_POLICY_PENDING_DAYS", default=7.0)
DOCTOR_LEDGER_DAYS = env.float("DOCTOR_LEDGER_DAYS", default=2.0)
DOCTOR_BACKUP_DAYS = env.float("DOCTOR_BACKUP_DAYS", default=2.0)
DOCTOR_BACKUP_VERIFY_DAYS = env.float("DOCTOR_BACKUP_VERIFY_DAYS", default=2.0)
DOCTOR_BACKUP_DRILL_DAYS = env.float("DOCTOR_BACKUP_DRILL_DAYS", default=8.0)
DOCTOR_HISTORY_RATIO = env.float("DOCTOR_HISTORY_RATIO", default=50.0)
DOCTOR_HISTORY_ROWS = env.int("DOCTOR_HISTORY_ROWS", default=100_000)
# Backups cleanup keeps per tier (held backups are kept besides).
BACKUP_KEEP_DAILY = env.int("BACKUP_KEEP_DAILY", default=7)
BACKUP_KEEP_WEEKLY = env.int("BACKUP_KEEP_WEEKLY", default=4)
BACKUP_KEEP_MONTHLY = env.int("BACKUP_KEEP_MONTHLY", default=12)

# Access and request logs keep the path without its query string, which can hold a search
# term (DESIGN.md contract 8): runserver's access log (django.server) is routed through the
# same filtered handler. A proxy in front logs its own lines: see docs/deployment.md.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"path_only": {"()": "project.log_filters.PathOnlyFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["path_only"],
        }
    },
    "loggers": {
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
