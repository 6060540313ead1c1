"""Rotating DJANGO_SECRET_KEY is not an outage: the private parts of stored keys
decrypt under the secret and each of its fallbacks (or every key listed in
JWT_KEYS_ENCRYPTION_KEY); a host that cannot decrypt a usable key refuses to start
(duotoken.E013), and a request that needs such a key gets a 503, never a 500."""

from __future__ import annotations

from io import StringIO

import jwt
import pytest
from cryptography.fernet import Fernet
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.test import override_settings

from tokens.models import SigningKey

OLD_SECRET = "test-django-secret-key-0123456789abcdefghijklmnop"
NEW_SECRET = "rotated-django-secret-key-9876543210zyxwvutsrqponm"
UNAVAILABLE = {"detail": "The service cannot sign tokens right now; retry later.", "code": "signing_key_unavailable"}


def command(*args: str) -> str:
    out = StringIO()
    call_command("signing_keys", *args, stdout=out)
    return out.getvalue()


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def key_errors() -> list[tuple[str, str]]:
    return [(m.id, m.msg) for m in run_checks(databases=["default"]) if m.id in {"duotoken.E013", "duotoken.E014"}]


def preflight() -> tuple[int, str]:
    err = StringIO()
    try:
        call_command("preflight", stdout=StringIO(), stderr=err)
    except SystemExit as exc:
        return exc.code, err.getvalue()
    return 0, err.getvalue()


@pytest.fixture
def promoted(logged_in, settings):
    """A routine rotation made under the old secret: a generated key added and promoted,
    and the session moved onto it."""
    assert settings.SECRET_KEY == OLD_SECRET
    kid = command("add").split()[3]
    command("promote", "--force", "--", kid)
    assert logged_in.refresh().status_code == 200
    assert kid_of(logged_in.cookie("refresh")) == kid
    return kid


def test_secret_key_rotated_with_the_old_one_as_fallback_login_and_refresh_work(promoted, logged_in, make_spa):
    with override_settings(SECRET_KEY=NEW_SECRET, SECRET_KEY_FALLBACKS=[OLD_SECRET]):
        assert key_errors() == []
        assert logged_in.refresh().status_code == 200
        other = make_spa()
        assert other.login().status_code == 200

        assert kid_of(logged_in.cookie("access")) == kid_of(other.cookie("access")) == promoted
        assert other.me().status_code == 200


def test_secret_key_rotated_without_the_fallback_refuses_the_start_naming_the_key(promoted):
    with override_settings(SECRET_KEY=NEW_SECRET):
        assert key_errors() == [
            (
                "duotoken.E013",
                f"Signing key {promoted} (active) cannot be used: the private part of key {promoted} cannot be "
                "decrypted with DJANGO_SECRET_KEY (or any of DJANGO_SECRET_KEY_FALLBACKS): it was stored under "
                "another key. Every login or refresh that needs it would answer 503. Give this host the key it "
                "was stored under: the previous DJANGO_SECRET_KEY in DJANGO_SECRET_KEY_FALLBACKS (or the "
                "previous key after the current one in JWT_KEYS_ENCRYPTION_KEY), then run `python manage.py "
                "signing_keys reencrypt`; or promote another key (`python manage.py signing_keys promote KID "
                "--force`) and retire this one.",
            )
        ]


@pytest.mark.django_db(transaction=True)
def test_preflight_refuses_a_key_it_cannot_decrypt_and_passes_with_the_fallback(alice, spa):
    assert spa.login().status_code == 200
    kid = command("add").split()[3]
    command("promote", "--force", "--", kid)

    with override_settings(SECRET_KEY=NEW_SECRET):
        code, err = preflight()
    assert code == 1
    assert f"Configuration: Signing key {kid} (active) cannot be used: the private part of key {kid}" in err
    assert "(duotoken.E013)" in err

    with override_settings(SECRET_KEY=NEW_SECRET, SECRET_KEY_FALLBACKS=[OLD_SECRET]):
        assert preflight() == (0, "")


def test_secret_key_rotated_without_the_fallback_answers_503_and_logs_the_kid(promoted, logged_in, make_spa, caplog):
    with override_settings(SECRET_KEY=NEW_SECRET):
        login = make_spa().login()
        refresh = logged_in.refresh()

    assert (login.status_code, login.json()) == (503, UNAVAILABLE)
    assert (refresh.status_code, refresh.json()) == (503, UNAVAILABLE)
    errors = [r for r in caplog.records if r.levelname == "ERROR" and r.name == "duotoken.keys"]
    assert errors and all(f"signing key {promoted} cannot be used" in r.getMessage() for r in errors)


def test_reencrypt_lets_the_old_secret_go(promoted, logged_in, make_spa):
    with override_settings(SECRET_KEY=NEW_SECRET, SECRET_KEY_FALLBACKS=[OLD_SECRET]):
        # The configured key's stored copy too.
        assert command("reencrypt") == "Re-encrypted 2 key(s) under the newest encryption key.\n"

    with override_settings(SECRET_KEY=NEW_SECRET):
        assert key_errors() == []
        assert logged_in.refresh().status_code == 200
        assert make_spa().login().status_code == 200
        assert kid_of(logged_in.cookie("access")) == promoted


def test_reencrypt_refuses_and_changes_nothing_when_a_key_cannot_be_decrypted(promoted):
    before = dict(SigningKey.objects.values_list("kid", "private_encrypted"))

    with override_settings(SECRET_KEY=NEW_SECRET), pytest.raises(CommandError, match="cannot be re-encrypted: it"):
        command("reencrypt")

    assert dict(SigningKey.objects.values_list("kid", "private_encrypted")) == before


def test_encryption_key_list_encrypts_with_the_first_and_decrypts_with_any(logged_in, settings, make_spa):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with override_settings(DUOTOKEN={**settings.DUOTOKEN, "KEYS_ENCRYPTION_KEY": old}):
        kid = command("add").split()[3]
        command("promote", "--force", "--", kid)

    with override_settings(DUOTOKEN={**settings.DUOTOKEN, "KEYS_ENCRYPTION_KEY": f"{new}, {old}"}):
        assert key_errors() == []
        spa = make_spa()
        assert spa.login().status_code == 200
        assert kid_of(spa.cookie("access")) == kid
        added = command("add").split()[3]

    assert Fernet(new.encode()).decrypt(SigningKey.objects.get(pk=added).private_encrypted.encode())


def test_promotion_of_a_key_this_host_cannot_decrypt_is_refused(logged_in):
    kid = command("add").split()[3]

    with override_settings(SECRET_KEY=NEW_SECRET), pytest.raises(CommandError, match=f"Key {kid} cannot sign here"):
        command("promote", "--force", "--", kid)

    assert SigningKey.objects.get(pk=kid).state == "published"


def test_a_malformed_encryption_key_is_a_check_error_and_a_503(logged_in, settings, make_spa):
    command("promote", "--force", "--", command("add").split()[3])

    with override_settings(DUOTOKEN={**settings.DUOTOKEN, "KEYS_ENCRYPTION_KEY": "not-a-fernet-key"}):
        errors = key_errors()
        response = make_spa().login()

    assert errors == [
        (
            "duotoken.E014",
            "JWT_KEYS_ENCRYPTION_KEY must be Fernet keys (32 url-safe base64-encoded bytes), separated by commas.",
        )
    ]
    assert (response.status_code, response.json()) == (503, UNAVAILABLE)
