"""Configuration classes; every setting can be overridden by an environment variable.

``create_app`` picks the class named by ``CONSULT_CONFIG`` (development, testing, production)
unless a class is passed explicitly.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = Path(os.environ.get("CONSULT_INSTANCE_DIR", BASE_DIR / "instance"))

# The placeholder is public by construction: nothing may be signed with it outside the tests
# (create_app replaces it, or refuses to start in production).
DEFAULT_SECRET_KEY = "dev-not-secret-change-me"  # noqa: S105 - a known placeholder
SECRET_KEY_FILE = "secret_key"  # noqa: S105 - the file name, in the instance folder


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


class Config:
    """Defaults shared by every environment."""

    # From the environment, else instance/secret_key (see consult.core.secrets): the server
    # and every command must sign and hash with the same key.
    SECRET_KEY = os.environ.get("SECRET_KEY") or DEFAULT_SECRET_KEY
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'consult.sqlite'}"
    )
    SQLALCHEMY_ENGINE_OPTIONS: ClassVar[dict] = {"pool_pre_ping": True}
    # SQLite durability: FULL fsyncs the WAL on every commit, so an acknowledged ballot survives
    # even a power cut; NORMAL only survives a process crash. Votes are the product: FULL.
    SQLITE_SYNCHRONOUS = os.environ.get("SQLITE_SYNCHRONOUS", "FULL")
    SQLITE_BUSY_TIMEOUT_MS = _env_int("SQLITE_BUSY_TIMEOUT_MS", 30000)

    # The results page's live count is kept between views and counted anew when ballots
    # changed, at most once every this many seconds (consult/ballots/live.py).
    LIVE_TALLY_MAX_AGE_S = float(os.environ.get("LIVE_TALLY_MAX_AGE_S") or 5)

    BABEL_DEFAULT_LOCALE = "zh_Hans"
    BABEL_DEFAULT_TIMEZONE = "Asia/Shanghai"
    BABEL_TRANSLATION_DIRECTORIES = str(BASE_DIR / "translations")
    LANGUAGES: ClassVar[dict[str, str]] = {
        "zh_Hans": "简体中文", "zh_Hant": "繁體中文", "en": "English"}

    BOOTSTRAP_SERVE_LOCAL = True  # intranets have no CDN

    # Redis, shared by every app instance and RQ worker (docs/deploy.md); empty: none, and the
    # embedded set-up keeps rate limits in memory and runs print jobs on a thread pool.
    REDIS_URL = os.environ.get("REDIS_URL", "")
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI") or REDIS_URL or "memory://"
    # Several deployments may share one Redis: their counters must not mix.
    RATELIMIT_KEY_PREFIX = os.environ.get("RATELIMIT_KEY_PREFIX", "")
    RATELIMIT_HEADERS_ENABLED = True
    # Flood guards per client address (Flask-Limiter, in RATELIMIT_STORAGE_URI). Without Redis
    # each worker process counts alone; the limits that matter are counted in the database.
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "10 per minute; 50 per hour")
    ACCESS_CODE_RATE_LIMIT = os.environ.get("ACCESS_CODE_RATE_LIMIT",
                                            "20 per minute; 200 per hour")
    # Lockout on top of the rate limits. An account is locked after this many wrong passwords
    # in a row, for this long (a committee member or administrator can unlock it sooner).
    LOGIN_LOCKOUT_THRESHOLD = _env_int("LOGIN_LOCKOUT_THRESHOLD", 5)
    LOGIN_LOCKOUT_MINUTES = _env_int("LOGIN_LOCKOUT_MINUTES", 15)
    # Wrong access codes that match no open code are counted per client address: this many
    # within the window pause code sign-in from that address for this long. Thousands of
    # phones may share one address (a carrier's NAT), so the threshold is high; the pause
    # never stops a right code of the current kind (see ACCESS_CODE_PER_CODE_*).
    ACCESS_CODE_LOCKOUT_THRESHOLD = _env_int("ACCESS_CODE_LOCKOUT_THRESHOLD", 30)
    ACCESS_CODE_LOCKOUT_WINDOW_MINUTES = _env_int("ACCESS_CODE_LOCKOUT_WINDOW_MINUTES", 60)
    ACCESS_CODE_LOCKOUT_MINUTES = _env_int("ACCESS_CODE_LOCKOUT_MINUTES", 30)
    # A wrong code whose first digits (the selector) name an open code counts against that
    # code, from whichever address: this many pause it for ACCESS_CODE_PER_CODE_PAUSE_MINUTES,
    # each further pause twice as long as the one before, up to the maximum.
    ACCESS_CODE_PER_CODE_THRESHOLD = _env_int("ACCESS_CODE_PER_CODE_THRESHOLD", 5)
    ACCESS_CODE_PER_CODE_PAUSE_MINUTES = _env_int("ACCESS_CODE_PER_CODE_PAUSE_MINUTES", 60)
    ACCESS_CODE_PER_CODE_PAUSE_MAX_HOURS = _env_int("ACCESS_CODE_PER_CODE_PAUSE_MAX_HOURS", 168)
    # Wrong codes from all addresses together: this many within the window raise an alarm
    # (an audit event and an error in the log), once per window.
    ACCESS_CODE_ALARM_THRESHOLD = _env_int("ACCESS_CODE_ALARM_THRESHOLD", 200)
    ACCESS_CODE_ALARM_WINDOW_MINUTES = _env_int("ACCESS_CODE_ALARM_WINDOW_MINUTES", 60)
    # Receipt codes checked on a vote's proof page: a flood guard per address, and wrong codes
    # counted in the database per address: this many within the window pause receipt checks
    # from that address (right codes too) for this long.
    RECEIPT_RATE_LIMIT = os.environ.get("RECEIPT_RATE_LIMIT", "10 per minute; 60 per hour")
    RECEIPT_LOCKOUT_THRESHOLD = _env_int("RECEIPT_LOCKOUT_THRESHOLD", 20)
    RECEIPT_LOCKOUT_WINDOW_MINUTES = _env_int("RECEIPT_LOCKOUT_WINDOW_MINUTES", 60)
    RECEIPT_LOCKOUT_MINUTES = _env_int("RECEIPT_LOCKOUT_MINUTES", 60)
    # A used code signs in again for this long, from the same address and browser only, in
    # case the answer to the first sign-in never reached the phone.
    ACCESS_CODE_GRACE_MINUTES = _env_int("ACCESS_CODE_GRACE_MINUTES", 10)
    # After an access-code sign-in, the household may choose a username and password without
    # a current one (/welcome) for this long, once.
    WELCOME_MINUTES = _env_int("WELCOME_MINUTES", 30)
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto are trusted (0: none),
    # and the addresses they connect from: a request from any other address is taken as it
    # comes, whatever its headers say. Rate limits and lockouts key on the client address.
    TRUSTED_PROXIES = _env_int("TRUSTED_PROXIES", 0)
    TRUSTED_PROXY_ADDRESSES = os.environ.get("TRUSTED_PROXY_ADDRESSES", "127.0.0.1,::1")
    # Request logs: "plain" text lines or "json" (one object per line), on standard error.
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain")
    LOG_LEVEL = os.environ.get("LOG_LEVEL", "INFO")

    WTF_CSRF_TIME_LIMIT = None  # a form left open on a phone for an afternoon must still submit
    MAX_CONTENT_LENGTH = _env_int("MAX_CONTENT_LENGTH", 20 * 1024 * 1024)
    IMPORT_MAX_BYTES = _env_int("IMPORT_MAX_BYTES", 10 * 1024 * 1024)
    UPLOAD_MAX_BYTES = _env_int("UPLOAD_MAX_BYTES", 8 * 1024 * 1024)
    # Uploaded files live here (not in the database); a shared path when running several hosts.
    UPLOAD_PATH = os.environ.get("UPLOAD_PATH", str(INSTANCE_DIR / "uploads"))
    PUBLICITY_DAYS = _env_int("PUBLICITY_DAYS", 7)
    # The address residents open, printed in QR codes and letters and shown on pages. Unset:
    # the address of the request being answered (a print job keeps the one it was asked
    # from), and http://127.0.0.1:5000 for commands.
    PUBLIC_URL = os.environ.get("PUBLIC_URL", "")
    # Print jobs run after the request: "rq" on RQ workers (``flask jobs worker``) through
    # REDIS_URL, "thread" on a thread pool in the app process (the embedded demo). JOBS_INLINE
    # runs them within the request instead (tests).
    JOBS_BACKEND = os.environ.get("JOBS_BACKEND") or ("rq" if REDIS_URL else "thread")
    JOBS_QUEUE = os.environ.get("JOBS_QUEUE", "consult")
    # An RQ job still running after this long is stopped by its worker (its page then shows it
    # stopped and offers to print again).
    JOBS_TIMEOUT_SECONDS = _env_int("JOBS_TIMEOUT_SECONDS", 3600)
    JOBS_INLINE = os.environ.get("JOBS_INLINE", "") == "1"
    # Notices and minutes printed within a request are laid out in at most this many slots at
    # once per host (every gunicorn worker of the installation), by default half the cores;
    # this many more requests may wait up to PDF_RENDER_WAIT_SECONDS for a slot, the rest are
    # told to retry (503). Keep slots + waiting below the gunicorn workers of a host.
    PDF_RENDER_SLOTS = _env_int("PDF_RENDER_SLOTS", max(1, len(os.sched_getaffinity(0)) // 2))
    PDF_RENDER_WAITING = _env_int("PDF_RENDER_WAITING", PDF_RENDER_SLOTS)
    PDF_RENDER_WAIT_SECONDS = _env_int("PDF_RENDER_WAIT_SECONDS", 5)
    # A host-local folder for the slots' lock files; empty: one in the system's temporary
    # folder, named after UPLOAD_PATH.
    PDF_RENDER_LOCK_DIR = os.environ.get("PDF_RENDER_LOCK_DIR", "")

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # Flask-Login's remember-me cookie is not used (consult/accounts/sessions.py); a name no
    # version of the app sets makes it ignore any such cookie an early version left behind.
    REMEMBER_COOKIE_NAME = "consult_remember_unused"
    # A resident who keeps their phone signed in stays signed in while they use it at least
    # once per REMEMBER_DAYS; every other session (all staff) ends after SESSION_IDLE_MINUTES
    # without a request.
    PERMANENT_SESSION_LIFETIME = timedelta(days=_env_int("REMEMBER_DAYS", 180))
    SESSION_IDLE_MINUTES = _env_int("SESSION_IDLE_MINUTES", 30)
    # A staff session ends this long after signing in, however busy it is.
    STAFF_SESSION_MAX_HOURS = _env_int("STAFF_SESSION_MAX_HOURS", 12)

    # The JSON API (/api/v1): bearer access tokens live this long; a refresh token gives the
    # next pair once, within API_REFRESH_TOKEN_DAYS for a household (staff: within
    # SESSION_IDLE_MINUTES, and never past STAFF_SESSION_MAX_HOURS, as in the browser).
    API_ACCESS_TOKEN_MINUTES = _env_int("API_ACCESS_TOKEN_MINUTES", 15)
    API_REFRESH_TOKEN_DAYS = _env_int("API_REFRESH_TOKEN_DAYS", 30)
    API_PAGE_LIMIT = 100  # the most rows one page of a list may ask for
    API_TITLE = "议事厅 consult API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.1.0"

    PAGE_SIZE = _env_int("PAGE_SIZE", 50)

    # Notifications (docs/notifications.md). Email goes out only when SMTP_HOST is set, SMS
    # only when SMS_PROVIDER names a provider ("tencent": Tencent Cloud SMS API 3.0).
    SMTP_HOST = os.environ.get("SMTP_HOST", "")
    SMTP_PORT = _env_int("SMTP_PORT", 25)
    SMTP_FROM = os.environ.get("SMTP_FROM", "noreply@localhost")
    SMTP_USER = os.environ.get("SMTP_USER", "")
    SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD", "")
    SMTP_STARTTLS = os.environ.get("SMTP_STARTTLS", "") == "1"
    SMTP_TIMEOUT_SECONDS = _env_int("SMTP_TIMEOUT_SECONDS", 20)
    SMS_PROVIDER = os.environ.get("SMS_PROVIDER", "")
    SMS_ENDPOINT = os.environ.get("SMS_ENDPOINT", "https://sms.tencentcloudapi.com")
    SMS_REGION = os.environ.get("SMS_REGION", "ap-guangzhou")
    SMS_SECRET_ID = os.environ.get("SMS_SECRET_ID", "")
    SMS_SECRET_KEY = os.environ.get("SMS_SECRET_KEY", "")
    SMS_APP_ID = os.environ.get("SMS_APP_ID", "")
    SMS_SIGN_NAME = os.environ.get("SMS_SIGN_NAME", "")
    SMS_TEMPLATE_ID = os.environ.get("SMS_TEMPLATE_ID", "")
    INSTANCE_DIR = str(INSTANCE_DIR)


class DevelopmentConfig(Config):
    """Local runs and the demo."""


class TestingConfig(Config):
    """The test suite: a scratch database unless TEST_DATABASE_URL / DATABASE_URL says otherwise."""

    TESTING = True
    SECRET_KEY = "testing-secret-key"  # noqa: S105 - tests only
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "TEST_DATABASE_URL",
        os.environ.get("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'test.sqlite'}"),
    )
    # Tests do not need fsync per commit; the durability tests set FULL explicitly.
    SQLITE_SYNCHRONOUS = "NORMAL"
    JOBS_INLINE = True
    RATELIMIT_STORAGE_URI = os.environ.get("TEST_RATELIMIT_STORAGE_URI", "memory://")
    # The live count is counted anew whenever ballots changed (tests of the delay set it).
    LIVE_TALLY_MAX_AGE_S = 0.0


class ProductionConfig(Config):
    """Production: secure cookies and a real secret key, or no start at all."""

    SESSION_COOKIE_SECURE = True
    PREFERRED_URL_SCHEME = "https"
    # docs/deployment.md: one reverse proxy terminates HTTPS in front of gunicorn.
    TRUSTED_PROXIES = _env_int("TRUSTED_PROXIES", 1)
    LOG_FORMAT = os.environ.get("LOG_FORMAT", "json")
    # Browsers that have seen the site over HTTPS refuse plain HTTP to it for a year.
    HSTS_MAX_AGE = _env_int("HSTS_MAX_AGE", 365 * 24 * 60 * 60)


CONFIGS: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}
