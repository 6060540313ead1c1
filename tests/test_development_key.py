"""The development key is public knowledge: it never enters the shared key table,
signs only inside a DEBUG process, and without DEBUG a leftover of it in the table
signs and verifies nothing and refuses the start (duotoken.E012)."""

from __future__ import annotations

from io import StringIO

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.test import override_settings

import config.settings as shipped
from tokens import clock, keys
from tokens.checks import signing_keys_command
from tokens.models import Session, SigningKey

from .test_startup import STRONG, _manage

DEV_PEM = shipped._DEV_PRIVATE_KEYS["EdDSA"]
DEV_PRIVATE = keys.parse_private(DEV_PEM, "EdDSA")
DEV_KID = keys.thumbprint(DEV_PRIVATE.public_key())
OWN_PEM = keys.private_pem(ed25519.Ed25519PrivateKey.generate())
OWN_KID = keys.thumbprint(keys.parse_private(OWN_PEM, "EdDSA").public_key())


def command(*args: str) -> str:
    out = StringIO()
    call_command("signing_keys", *args, stdout=out)
    return out.getvalue()


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def outcome(response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


def key_checks(*ids: str) -> list[tuple[str, str]]:
    return [(m.id, m.msg) for m in run_checks(databases=["default"]) if m.id in ids]


def leftover_development_key(state: str) -> None:
    """The row an older version wrote on a DEBUG run without a configured key."""
    now = clock.now()
    SigningKey.objects.create(
        kid=DEV_KID,
        algorithm="EdDSA",
        state=state,
        public_pem=keys.public_pem(DEV_PRIVATE.public_key()),
        private_encrypted=keys.encrypt_private(DEV_PRIVATE),
        created_at=now,
        promoted_at=now if state == SigningKey.State.ACTIVE else None,
    )


@pytest.fixture
def own_key(settings, db):
    """EdDSA with the deployment's own key, whatever the default algorithm."""
    with override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, "ALGORITHM": "EdDSA", "SIGNING_KEY": OWN_PEM}):
        yield OWN_KID


@pytest.fixture
def debug_without_a_key(settings, db):
    """`DJANGO_DEBUG=true` and no JWT_PRIVATE_KEY: settings fall back to the development key."""
    jwt_settings = {**settings.SIMPLE_JWT, "ALGORITHM": "EdDSA", "SIGNING_KEY": DEV_PEM}
    with override_settings(DEBUG=True, SIMPLE_JWT=jwt_settings):
        yield


@pytest.mark.parametrize("alg", sorted(shipped._DEV_PRIVATE_KEYS))
def test_development_key_every_one_that_settings_ship_is_known_as_public(alg):
    kid = keys.thumbprint(keys.parse_private(shipped._DEV_PRIVATE_KEYS[alg], alg).public_key())
    assert kid in keys.DEVELOPMENT_KIDS
    assert keys.is_development(kid)


def test_development_key_with_debug_signs_in_process_and_never_enters_the_key_table(debug_without_a_key, spa, alice):
    assert spa.login().status_code == 200
    assert spa.refresh().status_code == 200
    assert spa.me().status_code == 200

    assert kid_of(spa.cookie("access")) == kid_of(spa.cookie("refresh")) == DEV_KID
    assert SigningKey.objects.count() == 0
    assert [key["kid"] for key in spa.get("/.well-known/jwks.json").json()["keys"]] == [DEV_KID]


def test_development_key_left_in_the_table_verifies_nothing_without_debug(own_key, spa, alice):
    assert spa.login().status_code == 200
    leftover_development_key(SigningKey.State.PUBLISHED)
    claims = jwt.decode(spa.cookie("access"), options={"verify_signature": False})

    spa.set_cookie("access", jwt.encode(claims, DEV_PRIVATE, "EdDSA", {"kid": DEV_KID}))

    assert outcome(spa.me()) == (401, "access_token_invalid")
    assert outcome(spa.get("/api/auth/verify/")) == (401, "access_token_invalid")
    assert [key["kid"] for key in spa.get("/.well-known/jwks.json").json()["keys"]] == [own_key]


def test_development_key_active_in_the_table_signs_nothing_without_debug(own_key, spa, alice, caplog):
    leftover_development_key(SigningKey.State.ACTIVE)  # the first boot ran with DEBUG on

    response = spa.login()

    assert (response.status_code, response.json()) == (
        503,
        {"detail": "The service cannot sign tokens right now; retry later.", "code": "signing_key_unavailable"},
    )
    assert f"signing key {DEV_KID} cannot be used: key {DEV_KID} is the public development key" in caplog.text
    assert Session.objects.count() == 0  # no session is opened that nothing can sign for


def test_development_key_usable_in_the_table_refuses_the_start_without_debug(own_key):
    leftover_development_key(SigningKey.State.ACTIVE)
    keys.current()  # the configured key joins as published

    assert key_checks("duotoken.E012", "duotoken.W002") == [
        (
            "duotoken.E012",
            f"Signing key {DEV_KID} (active, EdDSA) is the public development key, with which anyone can sign "
            "tokens. Without DJANGO_DEBUG it signs and verifies nothing (logins and refreshes answer 503 while it "
            f"is the active key). Replace it: {signing_keys_command('promote', own_key, force=True)}, then "
            f"`python manage.py signing_keys retire {DEV_KID} --force`.",
        ),
        (
            "duotoken.W002",
            f"JWT_PRIVATE_KEY is key {own_key}, which does not sign: key {DEV_KID} does (a configured key joins "
            "the key set as published when another key is already active). To make it sign on every host: "
            f"{signing_keys_command('promote', own_key)} (add --force to skip waiting AUTH_JWKS_MAX_AGE, "
            "e.g. after a leak).",
        ),
    ]
    assert [m.is_serious() for m in run_checks(databases=["default"]) if m.id == "duotoken.E012"] == [True]


def test_development_key_published_in_the_table_refuses_the_start_too(own_key):
    leftover_development_key(SigningKey.State.PUBLISHED)

    ((_, message),) = key_checks("duotoken.E012")

    assert message.startswith(f"Signing key {DEV_KID} (published, EdDSA) is the public development key")
    assert message.endswith(f"Replace it: `python manage.py signing_keys retire {DEV_KID} --force`.")


def test_development_key_in_the_table_is_only_a_warning_with_debug(debug_without_a_key):
    leftover_development_key(SigningKey.State.PUBLISHED)

    assert [(m.id, m.is_serious()) for m in run_checks(databases=["default"]) if "E012" in m.id or "W012" in m.id] == [
        ("duotoken.W012", False)
    ]


def test_development_key_the_commands_replace_it_and_the_start_is_clean(own_key, spa, alice):
    leftover_development_key(SigningKey.State.ACTIVE)

    command("promote", "--force", "--", own_key)
    command("retire", "--force", "--", DEV_KID)

    assert key_checks("duotoken.E012", "duotoken.W002", "duotoken.W003") == []
    assert spa.login().status_code == 200
    assert kid_of(spa.cookie("access")) == own_key


def test_development_key_cannot_be_added_or_promoted(own_key, tmp_path):
    pem_file = tmp_path / "dev.pem"
    pem_file.write_text(DEV_PEM)

    with pytest.raises(CommandError, match=f"Key {DEV_KID} is the public development key"):
        command("add", "--private-key-file", str(pem_file))
    with pytest.raises(CommandError, match=f"Key {DEV_KID} is the public development key"):
        command("promote", "--force", "--", DEV_KID)
    assert not SigningKey.objects.filter(pk=DEV_KID).exists()


@pytest.mark.parametrize("alg", sorted(shipped._DEV_PRIVATE_KEYS))
def test_development_key_as_jwt_private_key_without_debug_refuses_to_start(alg):
    pem = shipped._DEV_PRIVATE_KEYS[alg]
    result = _manage("check", **{**STRONG, "JWT_ALGORITHM": alg, "JWT_PRIVATE_KEY": pem})

    assert result.returncode != 0
    assert "JWT_PRIVATE_KEY is the public development key, with which anyone can sign tokens" in result.stderr
    assert "(duotoken.E012)" in result.stderr


def test_development_key_commands_in_messages_run_as_written_for_a_kid_that_begins_with_a_dash(db):
    # Kids are base64url: one in 64 begins with "-", which argparse takes for an option.
    assert (
        signing_keys_command("promote", "-abc", force=True) == "`python manage.py signing_keys promote --force -- -abc`"
    )
    assert signing_keys_command("retire", "abc", force=True) == "`python manage.py signing_keys retire abc --force`"
    with pytest.raises(CommandError, match="No key '-abc' in the key set"):
        command("promote", "--force", "--", "-abc")


@pytest.mark.django_db(transaction=True)
def test_development_key_in_the_table_makes_preflight_refuse_the_start(settings):
    jwt_settings = {**settings.SIMPLE_JWT, "ALGORITHM": "EdDSA", "SIGNING_KEY": OWN_PEM}
    with override_settings(SIMPLE_JWT=jwt_settings):
        leftover_development_key(SigningKey.State.ACTIVE)
        err = StringIO()
        with pytest.raises(SystemExit) as exited:
            call_command("preflight", stdout=StringIO(), stderr=err)

    assert exited.value.code == 1
    assert f"Configuration: Signing key {DEV_KID} (active, EdDSA) is the public development key" in err.getvalue()
    assert "(duotoken.E012)" in err.getvalue()
