"""Refusing to start beats starting insecurely; and a dead dependency at start is a
plain sentence, not a traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.checks import run_checks
from django.test import override_settings

from tokens import keys

from .servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "JWT_", "AUTH_"))}
    base.update(DJANGO_READ_DOT_ENV="false", DJANGO_SETTINGS_MODULE="config.settings", **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60
    )


P256_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgaOviZvLX83kbqFry\n"
    "/bLRxiqfrPd6ukuq2j9hYy5TfOyhRANCAAQWztk2RkKjIaOFjdJ03YnjRAs+UxUi\n"
    "L0ePrNpRQTsa/44uJUlBy31A3/XmWIrk6A2bHkB1Zsgmf4JiaS6csl/+\n"
    "-----END PRIVATE KEY-----\n"
)
ED25519_PEM = (
    "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIBcNBMWsX7K7NXWHko62bSHTVKZNgitvDlaETF2ridFO\n"
    "-----END PRIVATE KEY-----\n"
)
STRONG = {"DJANGO_SECRET_KEY": "s" * 50, "JWT_PRIVATE_KEY": P256_PEM}


def test_without_debug_and_without_a_private_key_it_refuses_to_start_in_one_sentence():
    result = _manage("check", DJANGO_SECRET_KEY="s" * 50)

    assert result.returncode != 0
    assert (
        "JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE must hold a PEM private key for JWT_ALGORITHM=ES256 "
        "when DJANGO_DEBUG is off." in result.stderr
    )


def test_a_private_key_file_is_read(tmp_path):
    key_file = tmp_path / "jwt.pem"
    key_file.write_text(P256_PEM)

    result = _manage("check", DJANGO_SECRET_KEY="s" * 50, JWT_PRIVATE_KEY_FILE=str(key_file))

    assert result.returncode == 0, result.stderr


def test_a_missing_private_key_file_is_named_plainly(tmp_path):
    result = _manage("check", DJANGO_SECRET_KEY="s" * 50, JWT_PRIVATE_KEY_FILE=str(tmp_path / "nope.pem"))

    assert result.returncode != 0
    assert f"JWT_PRIVATE_KEY_FILE {tmp_path / 'nope.pem'} cannot be read: No such file or directory." in result.stderr


def test_hs256_without_debug_and_without_a_jwt_key_it_refuses_to_start():
    result = _manage("check", DJANGO_SECRET_KEY="s" * 50, JWT_ALGORITHM="HS256")

    assert result.returncode != 0
    assert "JWT_SIGNING_KEY must be set to its own key of at least 32 characters" in result.stderr


def test_hs256_with_its_own_key_starts():
    result = _manage("check", DJANGO_SECRET_KEY="s" * 50, JWT_ALGORITHM="HS256", JWT_SIGNING_KEY="j" * 50)

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("algorithm", ["PS256", "ES384", "ES512", "none"])
def test_randomised_or_unoffered_signature_algorithms_are_refused(algorithm):
    result = _manage("check", **STRONG, JWT_ALGORITHM=algorithm)

    assert result.returncode != 0
    assert "JWT_ALGORITHM must be ES256, EdDSA, RS256/384/512 or HS256/384/512" in result.stderr
    assert "duotoken.E006" in result.stderr


def test_the_default_algorithm_is_es256():
    result = _manage("shell", "-c", "from tokens import keys; print(keys.algorithm())", **STRONG)

    assert (result.returncode, result.stdout.splitlines()[-1]) == (0, "ES256"), result.stderr


def test_the_default_algorithm_refuses_an_ed25519_key():
    result = _manage("check", DJANGO_SECRET_KEY="s" * 50, JWT_PRIVATE_KEY=ED25519_PEM)

    assert result.returncode != 0
    assert "JWT_PRIVATE_KEY: JWT_ALGORITHM=ES256 needs an EC private key on the P-256 curve." in result.stderr


def test_es256_refuses_a_key_on_another_curve():
    pem = keys.private_pem(ec.generate_private_key(ec.SECP384R1()))

    result = _manage("check", DJANGO_SECRET_KEY="s" * 50, JWT_PRIVATE_KEY=pem)

    assert result.returncode != 0
    assert "JWT_PRIVATE_KEY: JWT_ALGORITHM=ES256 needs an EC private key on the P-256 curve." in result.stderr


def test_eddsa_with_an_ed25519_key_stays_selectable():
    result = _manage("check", DJANGO_SECRET_KEY="s" * 50, JWT_ALGORITHM="EdDSA", JWT_PRIVATE_KEY=ED25519_PEM)

    assert result.returncode == 0, result.stderr


def test_a_private_key_of_the_wrong_type_is_refused():
    result = _manage("check", **STRONG, JWT_ALGORITHM="RS256")

    assert result.returncode != 0
    assert "JWT_PRIVATE_KEY: JWT_ALGORITHM=RS256 needs an RSA private key." in result.stderr


def test_a_jwt_key_equal_to_the_django_secret_is_refused():
    result = _manage("check", DJANGO_SECRET_KEY="s" * 50, JWT_ALGORITHM="HS256", JWT_SIGNING_KEY="s" * 50)

    assert result.returncode != 0
    assert "JWT_SIGNING_KEY" in result.stderr


def test_with_strong_keys_it_starts():
    result = _manage("check", **STRONG)

    assert result.returncode == 0, result.stderr


def test_debug_mode_starts_with_development_keys():
    result = _manage("check", DJANGO_DEBUG="true")

    assert result.returncode == 0, result.stderr


def test_preflight_names_an_unreachable_redis_plainly(tmp_path):
    result = _manage(
        "preflight",
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
        **STRONG,
    )

    assert result.returncode == 1
    assert "Redis: cannot reach redis://127.0.0.1:" in result.stderr
    assert "Traceback" not in result.stderr


def test_preflight_names_an_unreachable_database_plainly():
    result = _manage("preflight", DATABASE_URL=f"postgres://postgres@127.0.0.1:{free_port()}/nope", **STRONG)

    assert result.returncode == 1
    assert "Database: cannot connect to postgresql database nope" in result.stderr
    assert "Traceback" not in result.stderr


def test_gunicorn_refuses_to_start_with_a_plain_message_when_redis_is_down(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "JWT_", "AUTH_"))}
    env.update(
        DJANGO_READ_DOT_ENV="false",
        DJANGO_SETTINGS_MODULE="config.settings",
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
        **STRONG,
    )
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{free_port()}", "-w", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert result.returncode != 0
    assert "Duotoken cannot start" in result.stderr
    assert "Redis: cannot reach" in result.stderr


def test_system_checks_reject_a_grace_window_over_60_seconds(settings):
    from datetime import timedelta

    with override_settings(DUOTOKEN={**settings.DUOTOKEN, "REFRESH_GRACE": timedelta(seconds=61)}):
        ids = [message.id for message in run_checks()]

    assert "duotoken.E003" in ids


def test_system_checks_reject_a_bad_rate_string(settings):
    with override_settings(DUOTOKEN={**settings.DUOTOKEN, "THROTTLE_LOGIN": "ten per minute"}):
        messages = [message for message in run_checks() if message.id == "duotoken.E008"]

    assert messages and "Invalid rate 'ten per minute'" in messages[0].msg


def test_system_checks_reject_a_grace_window_over_half_the_access_lifetime(settings):
    from datetime import timedelta

    jwt = {**settings.SIMPLE_JWT, "ACCESS_TOKEN_LIFETIME": timedelta(seconds=40)}
    with override_settings(SIMPLE_JWT=jwt, DUOTOKEN={**settings.DUOTOKEN, "REFRESH_GRACE": timedelta(seconds=21)}):
        messages = [message for message in run_checks() if message.id == "duotoken.E011"]

    assert [message.msg for message in messages] == [
        "AUTH_REFRESH_GRACE_SECONDS must be at most half of AUTH_ACCESS_TOKEN_LIFETIME (now 21 s and 40 s): "
        "a refresh replayed in the grace window gets the successor as issued, whose access token would be "
        "nearly or already expired."
    ]
    assert messages[0].is_serious()


def test_system_checks_accept_a_grace_window_of_half_the_access_lifetime(settings):
    from datetime import timedelta

    jwt = {**settings.SIMPLE_JWT, "ACCESS_TOKEN_LIFETIME": timedelta(seconds=40)}
    with override_settings(SIMPLE_JWT=jwt, DUOTOKEN={**settings.DUOTOKEN, "REFRESH_GRACE": timedelta(seconds=20)}):
        ids = [message.id for message in run_checks()]

    assert "duotoken.E011" not in ids


def test_gunicorn_refuses_to_start_with_a_grace_window_longer_than_the_access_lifetime(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "JWT_", "AUTH_"))}
    env.update(
        DJANGO_READ_DOT_ENV="false",
        DJANGO_SETTINGS_MODULE="config.settings",
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
        AUTH_ACCESS_TOKEN_LIFETIME="10",
        AUTH_REFRESH_GRACE_SECONDS="30",
        **STRONG,
    )
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "config.wsgi:application", "--bind", f"127.0.0.1:{free_port()}", "-w", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert result.returncode != 0
    assert "Duotoken cannot start" in result.stderr
    assert "AUTH_REFRESH_GRACE_SECONDS must be at most half of AUTH_ACCESS_TOKEN_LIFETIME" in result.stderr
    assert "(duotoken.E011)" in result.stderr
