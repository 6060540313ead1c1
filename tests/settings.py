"""Settings for the test run: config.settings with test keys and a fast hasher.

Environment variables still win (CI sets DATABASE_URL to PostgreSQL); the test
servers that the suite starts in other processes use this module too.
"""

import os

os.environ.setdefault("DJANGO_READ_DOT_ENV", "false")
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-django-secret-key-0123456789abcdefghijklmnop")
os.environ.setdefault("JWT_SIGNING_KEY", "test-jwt-signing-key-0123456789abcdefghijklmnopqrs")
# The whole suite runs on the default algorithm, with a fixed P-256 test key (so
# the servers a test starts in other processes sign with the same one).
os.environ.setdefault("JWT_ALGORITHM", "ES256")
# Query budgets on the hot path must not meet the periodic key-set reload on a slow
# machine; the tests of that reload set their own interval.
os.environ.setdefault("AUTH_KEYS_RELOAD_SECONDS", "60")
# Likewise the periodic check of the revocation outbox (the fault tests set their own).
os.environ.setdefault("AUTH_REVOCATION_POLL_SECONDS", "60")
os.environ.setdefault(
    "JWT_PRIVATE_KEY",
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgaOviZvLX83kbqFry\n"
    "/bLRxiqfrPd6ukuq2j9hYy5TfOyhRANCAAQWztk2RkKjIaOFjdJ03YnjRAs+UxUi\n"
    "L0ePrNpRQTsa/44uJUlBy31A3/XmWIrk6A2bHkB1Zsgmf4JiaS6csl/+\n"
    "-----END PRIVATE KEY-----\n",
)
os.environ.setdefault("AUTH_COOKIE_SECURE", "false")
os.environ.setdefault("AUTH_REDIS_PREFIX", f"duotoken-test-{os.getpid()}")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")

from config.settings import *

# Tests are about sessions, not key stretching.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# One test database per pytest process, so that several runs on one machine (or a
# developer's run beside CI's) never drop each other's database.
_test_db = DATABASES["default"]["TEST"] = dict(DATABASES["default"].get("TEST", {}))
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    _test_db["NAME"] = str(BASE_DIR / f".test-db-{os.getpid()}.sqlite3")
else:
    _test_db["NAME"] = f"test_{DATABASES['default']['NAME']}_{os.getpid()}"
