"""Every setting comes from the environment; `.env.example` lists them all.

Secure defaults: DEBUG off, Secure cookies on unless DEBUG, and no start at all
without strong keys when DEBUG is off (see `tokens.checks`, run by `config.wsgi`).
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from redis.backoff import NoBackoff
from redis.retry import Retry

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
if env.bool("DJANGO_READ_DOT_ENV", default=True):
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)

# Development keys exist only so `DEBUG=true` works out of the box; with DEBUG off
# a missing or weak key refuses to start (checks E001/E002 in tokens/checks.py).
_DEV_KEY = "insecure-development-key-do-not-use-in-production-0123456789"
# Public knowledge, like _DEV_KEY: used only with DEBUG on and no key configured,
# one for the default algorithm (ES256, P-256) and one for EdDSA (Ed25519). They
# sign in that process only and never enter the shared key table; without DEBUG they
# neither sign nor verify (tokens.keys.DEVELOPMENT_KIDS, check duotoken.E012).
_DEV_PRIVATE_KEYS = {
    "ES256": (
        "-----BEGIN PRIVATE KEY-----\n"
        "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg+Rk3jVvqbRi8taYm\n"
        "I3/Bi8t7/QkUrSYjsGKN8C5rs8+hRANCAATaRtnYsW9vDIAZ7sYwnC2DNUZZRAaT\n"
        "raOihBHvUmGnQYy/o2Yv+5Jcf02SDlvZwkekDmVflzEUxPHfmynPL42n\n"
        "-----END PRIVATE KEY-----\n"
    ),
    "EdDSA": (
        "-----BEGIN PRIVATE KEY-----\n"
        "MC4CAQAwBQYDK2VwBCIEIGFF0Am+T8p1l59GJ24r9Pt1PB9hMKCwLZRWJpwN0TOF\n"
        "-----END PRIVATE KEY-----\n"
    ),
}
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=_DEV_KEY if DEBUG else "")
# Rotating DJANGO_SECRET_KEY: put the old one here (comma list) until `signing_keys
# reencrypt` has run; it still decrypts the stored private keys, and Django's signatures.
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])

# ES256 (P-256, RFC 6979 deterministic nonces) by default: every JOSE library and
# gateway verifies it, and it is the cheapest to verify after RS*. EdDSA and RS256/
# 384/512 are the alternatives; all sign deterministically, which the byte-identical
# grace replay needs. HS256 is for a single service only.
JWT_ALGORITHM = env.str("JWT_ALGORITHM", default="ES256")
_SYMMETRIC = JWT_ALGORITHM.startswith("HS")
JWT_SIGNING_KEY = env.str("JWT_SIGNING_KEY", default=_DEV_KEY + "-jwt" if DEBUG else "")
# The first private key (PEM), imported into the key set on first use; later keys
# are added with `manage.py signing_keys add` (see tokens/keys.py).
JWT_PRIVATE_KEY = env.str("JWT_PRIVATE_KEY", default="").replace("\\n", "\n")
_key_file = env.str("JWT_PRIVATE_KEY_FILE", default="")
if _key_file and not JWT_PRIVATE_KEY:
    try:
        JWT_PRIVATE_KEY = Path(_key_file).read_text()
    except OSError as exc:
        raise ImproperlyConfigured(f"JWT_PRIVATE_KEY_FILE {_key_file} cannot be read: {exc.strerror}.") from None
if not JWT_PRIVATE_KEY and DEBUG and JWT_ALGORITHM in _DEV_PRIVATE_KEYS:
    JWT_PRIVATE_KEY = _DEV_PRIVATE_KEYS[JWT_ALGORITHM]
if not DEBUG:
    # Refuse to start, in every entry point (manage.py, gunicorn), rather than sign
    # tokens with a guessable key.
    if len(SECRET_KEY) < 32:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set to at least 32 characters when DJANGO_DEBUG is off.")
    if _SYMMETRIC and (len(JWT_SIGNING_KEY) < 32 or JWT_SIGNING_KEY == SECRET_KEY):
        raise ImproperlyConfigured(
            "JWT_SIGNING_KEY must be set to its own key of at least 32 characters "
            "(not DJANGO_SECRET_KEY) when DJANGO_DEBUG is off."
        )
if not _SYMMETRIC and not JWT_PRIVATE_KEY:
    raise ImproperlyConfigured(
        f"JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE must hold a PEM private key for JWT_ALGORITHM={JWT_ALGORITHM}"
        + (" when DJANGO_DEBUG is off." if not DEBUG else ".")
    )
# The service's public base URL: the default issuer (`iss`) of every token.
AUTH_PUBLIC_URL = env.str("AUTH_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # the docs page's Redoc bundle, served from our static files
    "accounts",
    "tokens",
    "demo",
]

# Session, auth and message middleware serve the admin and the site pages only: on
# /api/ they pass straight through (config/api_middleware.py), DRF authenticates.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.api_middleware.SiteSessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before CSRF: its check reads (and spools) form bodies.
    "config.middleware.ApiBodyGuardMiddleware",
    "config.middleware.PrivateApiResponsesMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "config.api_middleware.SiteAuthenticationMiddleware",
    "config.api_middleware.SiteMessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
_db = DATABASES["default"]
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions and a busy timeout let several gunicorn workers share
    # one SQLite file without "database is locked"; the test database must be a
    # file too, so that a test server in another process sees the same rows.
    _db.setdefault("OPTIONS", {}).update({"transaction_mode": "IMMEDIATE", "timeout": 20})
    _db.setdefault("TEST", {})["NAME"] = str(BASE_DIR / "test-db.sqlite3")
else:
    _db.setdefault("OPTIONS", {}).setdefault("connect_timeout", 3)
    _db["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    _db["CONN_HEALTH_CHECKS"] = True

# One Redis: redis://host:port/db. Redis Cluster: redis+cluster://host:port (any one
# node; the rest are discovered). Sentinel: redis://<service name>/db with
# REDIS_SENTINELS=host:port,host:port. Replicas: REDIS_URL=primary,replica,... (the
# security state below always reads and writes the primary: a replica can lag).
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
REDIS_SENTINELS = env.list("REDIS_SENTINELS", default=[])
_REDIS_OPTIONS = {
    "CLIENT_CLASS": "django_redis.client.DefaultClient",
    # A slow or dead Redis must cost a bounded time, not hang a worker.
    "SOCKET_CONNECT_TIMEOUT": env.float("REDIS_CONNECT_TIMEOUT", default=0.5),
    "SOCKET_TIMEOUT": env.float("REDIS_SOCKET_TIMEOUT", default=0.5),
    "CONNECTION_POOL_KWARGS": {"retry": Retry(NoBackoff(), 1)},
}
if REDIS_URL.split("://", 1)[0].endswith("+cluster"):
    # django-redis has no cluster client; ours hands it a redis-py RedisCluster.
    _REDIS_OPTIONS["CONNECTION_FACTORY"] = "tokens.store.ClusterConnectionFactory"
elif REDIS_SENTINELS:
    _REDIS_OPTIONS.update(
        CLIENT_CLASS="django_redis.client.SentinelClient",
        CONNECTION_FACTORY="django_redis.pool.SentinelConnectionFactory",
        SENTINELS=[(host, int(port)) for host, _, port in (s.rpartition(":") for s in REDIS_SENTINELS)],
    )
# The security alias keeps redis-py's one retry (a blip costs no request) but its
# connections report every reconnect, which redis-py would otherwise keep to itself:
# a restarted Redis must be checked before it is trusted (tokens.revocations).
_AUTH_REDIS_OPTIONS = {**_REDIS_OPTIONS}
if "CONNECTION_FACTORY" not in _AUTH_REDIS_OPTIONS:
    _AUTH_REDIS_OPTIONS["CONNECTION_FACTORY"] = "tokens.store.NoticingConnectionFactory"
elif REDIS_SENTINELS:
    _AUTH_REDIS_OPTIONS["CONNECTION_FACTORY"] = "tokens.store.NoticingSentinelConnectionFactory"
CACHES = {
    "default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL, "OPTIONS": _REDIS_OPTIONS},
    # Security state (session liveness, throttles) lives on this alias. It must never
    # swallow errors: an unknown answer is treated as "ask the database" or 503.
    "auth": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL, "OPTIONS": _AUTH_REDIS_OPTIONS},
}

AUTH_USER_MODEL = "accounts.User"
# ModelBackend behind the login throttle, so that every authenticate() is limited.
AUTHENTICATION_BACKENDS = ["accounts.backends.ThrottledModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env.list(
    "DJANGO_PASSWORD_HASHERS",
    default=[
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        "django.contrib.auth.hashers.Argon2PasswordHasher",
        "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
        "django.contrib.auth.hashers.ScryptPasswordHasher",
    ],
)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The SPA client is the npm package's own source (clients/js), served as
# /static/duotoken/client.js: one client, not a copy for Django and one for npm.
STATICFILES_DIRS = [("duotoken", BASE_DIR / "clients" / "js" / "src")]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_cookie_secure = env.bool("AUTH_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_SECURE = _cookie_secure
CSRF_COOKIE_SECURE = _cookie_secure
CSRF_COOKIE_SAMESITE = "Lax"
# The SPA reads the CSRF cookie to echo it in X-CSRFToken, so it is not HttpOnly.
CSRF_COOKIE_HTTPONLY = False
CSRF_FAILURE_VIEW = "config.exceptions.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
_behind_tls = env.bool("DJANGO_BEHIND_TLS_PROXY", default=False)
if _behind_tls:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Behind TLS, browsers are told to use nothing else, and plain http is redirected.
SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=365 * 24 * 3600 if _behind_tls else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_SSL_REDIRECT = env.bool("DJANGO_SSL_REDIRECT", default=_behind_tls)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tokens.authentication.CookieJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "config.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Duotoken API",
    "DESCRIPTION": "Cookie-based JWT sessions for single-page apps.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.schema.add_body_errors"],
}

# Simple JWT stays the source for the algorithm and the lifetimes.
SIMPLE_JWT = {
    "ALGORITHM": JWT_ALGORITHM,
    # HS*: the shared secret. ES256/EdDSA/RS*: the first private key (PEM); the public keys
    # are derived from the private ones, so there is no VERIFYING_KEY to set.
    "SIGNING_KEY": JWT_SIGNING_KEY if _SYMMETRIC else JWT_PRIVATE_KEY,
    "ISSUER": env.str("JWT_ISSUER", default=AUTH_PUBLIC_URL),
    "AUDIENCE": env.str("JWT_AUDIENCE", default="duotoken"),
    "ACCESS_TOKEN_LIFETIME": timedelta(seconds=env.int("AUTH_ACCESS_TOKEN_LIFETIME", default=300)),
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env.int("AUTH_REFRESH_TOKEN_LIFETIME", default=7 * 24 * 3600)),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "TOKEN_TYPE_CLAIM": "token_type",
    "JTI_CLAIM": "jti",
}

# Our own knobs, read through tokens.conf.auth_settings() at use time.
DUOTOKEN = {
    "SESSION_MAX_LIFETIME": timedelta(seconds=env.int("AUTH_SESSION_MAX_LIFETIME", default=30 * 24 * 3600)),
    "REFRESH_GRACE": timedelta(seconds=env.int("AUTH_REFRESH_GRACE_SECONDS", default=30)),
    "COOKIE_SECURE": _cookie_secure,
    "COOKIE_DOMAIN": env.str("AUTH_COOKIE_DOMAIN", default="") or None,
    "ACCESS_COOKIE_NAME": env.str("AUTH_ACCESS_COOKIE_NAME", default=""),
    "REFRESH_COOKIE_NAME": env.str("AUTH_REFRESH_COOKIE_NAME", default=""),
    "REFRESH_COOKIE_PATH": env.str("AUTH_REFRESH_COOKIE_PATH", default="/api/auth/"),
    "THROTTLE_LOGIN": env.str("AUTH_THROTTLE_LOGIN", default="10/min"),
    "THROTTLE_LOGIN_IP": env.str("AUTH_THROTTLE_LOGIN_IP", default="60/min"),
    "THROTTLE_LOGIN_USER": env.str("AUTH_THROTTLE_LOGIN_USER", default="100/hour"),
    "THROTTLE_PASSWORD_CHANGE": env.str("AUTH_THROTTLE_PASSWORD_CHANGE", default="5/min"),
    "THROTTLE_REFRESH": env.str("AUTH_THROTTLE_REFRESH", default="30/min"),
    "THROTTLE_REFRESH_IP": env.str("AUTH_THROTTLE_REFRESH_IP", default="600/min"),
    "THROTTLE_INTROSPECTION": env.str("AUTH_THROTTLE_INTROSPECTION", default="6000/min"),
    "THROTTLE_INTROSPECTION_FAILED": env.str("AUTH_THROTTLE_INTROSPECTION_FAILED", default="10/min"),
    "THROTTLE_INTROSPECTION_FAILED_IP": env.str("AUTH_THROTTLE_INTROSPECTION_FAILED_IP", default="60/min"),
    "THROTTLE_INTROSPECTION_FAILED_ALL": env.str("AUTH_THROTTLE_INTROSPECTION_FAILED_ALL", default="600/min"),
    "NUM_PROXIES": env.int("AUTH_NUM_PROXIES", default=0),
    "REDIS_ALIAS": "auth",
    "REDIS_KEY_PREFIX": env.str("AUTH_REDIS_PREFIX", default="duotoken"),
    # Every process checks the revocation outbox this often (0: never; then run
    # `manage.py publish_revocations --every N`): the bound on how long an ended
    # session can still be accepted after Redis missed the revocation.
    "REVOCATION_POLL_SECONDS": env.float("AUTH_REVOCATION_POLL_SECONDS", default=5),
    "MAX_SESSIONS_PER_USER": env.int("AUTH_MAX_SESSIONS_PER_USER", default=50),
    "DEMO_PAGE": env.bool("AUTH_DEMO_PAGE", default=DEBUG),
    # Fernet keys (comma list, newest first: it encrypts, all decrypt) for the private
    # parts of keys stored in the database; by default derived from DJANGO_SECRET_KEY
    # and each of DJANGO_SECRET_KEY_FALLBACKS (set it to rotate that one freely).
    "KEYS_ENCRYPTION_KEY": env.str("JWT_KEYS_ENCRYPTION_KEY", default=""),
    # How stale a process's view of the key set may get (retirements reach every
    # process within this time; new keys and promotions need no wait).
    "KEYS_RELOAD_SECONDS": env.float("AUTH_KEYS_RELOAD_SECONDS", default=5),
    "JWKS_MAX_AGE": env.int("AUTH_JWKS_MAX_AGE", default=300),
    # Device Bound Session Credentials: unset means "on when the cookies are Secure".
    "DBSC": env.bool("AUTH_DBSC", default=None),
    "DBSC_CHALLENGE_SECONDS": env.int("AUTH_DBSC_CHALLENGE_SECONDS", default=60),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "duotoken": {"handlers": ["console"], "level": env.str("AUTH_LOG_LEVEL", default="INFO")},
        # Every unhandled exception (a 500), with its traceback. Django's own handler
        # for this logger writes only with DEBUG on, and mails ADMINS, which is unset.
        # Not propagated, so that DEBUG does not print it twice; 4xx stay unlogged here.
        "django.request": {"handlers": ["console"], "level": "ERROR", "propagate": False},
    },
}
