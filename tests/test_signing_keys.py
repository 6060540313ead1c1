"""Key rotation without logging anyone out: add (published), promote (signs at
once), retire (refused with live sessions unless forced, which ends them), and the
`signing_keys` command over it."""

from __future__ import annotations

from io import StringIO

import jwt
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.management import CommandError, call_command
from django.test import override_settings

from tests.factories import user_create
from tokens import keys
from tokens.errors import AuthError
from tokens.key_services import KeyRefused, signing_key_add, signing_key_promote, signing_key_retire
from tokens.models import RevokeReason, SecurityEvent, Session, SigningKey


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def first_kid() -> str:
    return keys.configured_key()[0]


def command(*args: str) -> str:
    out = StringIO()
    call_command("signing_keys", *args, stdout=out)
    return out.getvalue()


def outcome(response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


@pytest.fixture
def second_key(db):
    return signing_key_add()


def test_the_configured_key_is_imported_as_the_active_key_on_first_use(logged_in):
    row = SigningKey.objects.get()

    assert (row.kid, row.state, row.algorithm) == (first_kid(), "active", "ES256")
    assert kid_of(logged_in.cookie("access")) == row.kid
    assert Session.objects.get().signing_kid == row.kid


def test_private_parts_are_encrypted_at_rest(second_key):
    assert "PRIVATE KEY" not in second_key.private_encrypted
    assert "PRIVATE KEY" in keys._fernet().decrypt(second_key.private_encrypted.encode()).decode()


def test_a_different_encryption_key_cannot_use_the_stored_private_parts(second_key, settings):
    signing_key_promote(kid=second_key.kid, force=True)
    other = Fernet.generate_key().decode()

    with override_settings(DUOTOKEN={**settings.DUOTOKEN, "KEYS_ENCRYPTION_KEY": other}):
        row = SigningKey.objects.get(pk=second_key.kid)
        with pytest.raises(keys.KeyUnusable, match=f"the private part of key {second_key.kid} cannot be decrypted"):
            keys.decrypt_private(row)


def test_an_added_key_is_published_but_does_not_sign(logged_in, second_key):
    assert second_key.state == "published"
    assert logged_in.refresh().status_code == 200

    assert kid_of(logged_in.cookie("access")) == first_kid()


def test_promotion_switches_signing_at_once_and_old_tokens_still_verify(logged_in, second_key, make_spa):
    old_access = logged_in.cookie("access")

    signing_key_promote(kid=second_key.kid, force=True)

    other = make_spa()
    assert other.login().status_code == 200
    assert kid_of(other.cookie("access")) == second_key.kid
    assert logged_in.me().status_code == 200  # still the first key's access token
    assert logged_in.refresh().status_code == 200
    assert kid_of(logged_in.cookie("access")) == kid_of(logged_in.cookie("refresh")) == second_key.kid
    assert Session.objects.get(pk=jwt.decode(old_access, options={"verify_signature": False})["sid"]).signing_kid == (
        second_key.kid
    )
    logged_in.set_cookie("access", old_access)
    assert logged_in.me().status_code == 200


def test_grace_replay_after_a_promotion_gets_the_byte_identical_successor_signed_by_the_old_key(
    logged_in, second_key, make_spa
):
    first_refresh = logged_in.cookie("refresh")
    assert logged_in.refresh().status_code == 200
    successor = (logged_in.cookie("access"), logged_in.cookie("refresh"))

    signing_key_promote(kid=second_key.kid, force=True)
    replay = make_spa()
    replay.set_cookie("refresh", first_refresh)
    response = replay.refresh()

    assert response.status_code == 200
    assert (replay.cookie("access"), replay.cookie("refresh")) == successor
    assert kid_of(successor[1]) == first_kid()
    assert replay.refresh().status_code == 200  # the next generation is the new key's
    assert kid_of(replay.cookie("refresh")) == second_key.kid


def test_promotion_waits_for_jwks_caches_unless_forced(second_key):
    with pytest.raises(KeyRefused, match="services may cache the JWKS for AUTH_JWKS_MAX_AGE=300 s"):
        signing_key_promote(kid=second_key.kid)

    assert SigningKey.objects.get(pk=second_key.kid).state == "published"


def test_promotion_after_the_jwks_max_age_needs_no_force(second_key, time_machine):
    time_machine.move_to(second_key.created_at.timestamp() + 301)

    assert signing_key_promote(kid=second_key.kid).state == "active"
    assert SigningKey.objects.get(pk=first_kid()).state == "published"


def test_the_active_key_cannot_be_retired(logged_in):
    with pytest.raises(KeyRefused, match="is the active signing key; promote another key first"):
        signing_key_retire(kid=first_kid(), force=True)


def test_retiring_a_key_with_live_sessions_needs_force_and_ends_them(logged_in, second_key, make_spa):
    moved = make_spa()
    user_create(username="bob")
    assert moved.login(username="bob").status_code == 200
    signing_key_promote(kid=second_key.kid, force=True)
    assert moved.refresh().status_code == 200  # bob's session is the new key's now; alice's is not

    with pytest.raises(KeyRefused, match="signed the current tokens of 1 live session"):
        signing_key_retire(kid=first_kid())
    assert SigningKey.objects.get(pk=first_kid()).state == "published"

    retired = signing_key_retire(kid=first_kid(), force=True)

    assert retired.sessions_ended == 1
    alice_session = Session.objects.get(user__username="alice")
    assert alice_session.revoke_reason == RevokeReason.KEY_RETIRED and alice_session.revoked_at is not None
    assert outcome(logged_in.me()) == (401, "access_token_invalid")
    assert outcome(logged_in.refresh()) == (401, "refresh_token_invalid")
    assert moved.me().status_code == 200
    assert moved.refresh().status_code == 200


def test_a_token_signed_by_a_retired_key_is_refused_even_after_it_verified_once(logged_in, second_key):
    old_access = logged_in.cookie("access")
    assert logged_in.me().status_code == 200  # verified, and remembered by this process
    signing_key_promote(kid=second_key.kid, force=True)
    assert logged_in.refresh().status_code == 200

    signing_key_retire(kid=first_kid())
    logged_in.set_cookie("access", old_access)

    assert outcome(logged_in.me()) == (401, "access_token_invalid")


def test_a_retirement_made_elsewhere_reaches_this_process_at_the_next_reload(logged_in, second_key, settings):
    old_access = logged_in.cookie("access")
    signing_key_promote(kid=second_key.kid, force=True)
    assert logged_in.refresh().status_code == 200

    with override_settings(DUOTOKEN={**settings.DUOTOKEN, "KEYS_RELOAD_SECONDS": 0}):
        logged_in.set_cookie("access", old_access)
        assert logged_in.me().status_code == 200
        # Another host's command: a plain row update that this process is not told of.
        SigningKey.objects.filter(pk=first_kid()).update(state=SigningKey.State.RETIRED)

        assert outcome(logged_in.me()) == (401, "access_token_invalid")


def test_a_key_added_and_promoted_elsewhere_verifies_here_at_once(logged_in, settings):
    keys.current()  # this process has looked at the key set
    private = keys.generate_private("ES256")
    kid = keys.thumbprint(private.public_key())
    SigningKey.objects.create(
        kid=kid,
        algorithm="ES256",
        public_pem=keys.public_pem(private.public_key()),
        private_encrypted=keys.encrypt_private(private),
        created_at=SigningKey.objects.get().created_at,
    )
    claims = jwt.decode(logged_in.cookie("access"), options={"verify_signature": False})

    logged_in.set_cookie("access", jwt.encode(claims, private, algorithm="ES256", headers={"kid": kid}))

    assert logged_in.me().status_code == 200


def test_command_lists_keys_with_their_live_sessions(logged_in, second_key):
    lines = command("list").splitlines()

    assert lines[0].split() == ["KID", "ALG", "STATE", "CREATED", "PROMOTED", "LIVE", "SESSIONS"]
    assert [(line.split()[0], line.split()[2], line.split()[-1]) for line in lines[1:]] == [
        (first_kid(), "active", "1"),
        (second_key.kid, "published", "0"),
    ]


def test_command_adds_promotes_and_retires(logged_in, tmp_path):
    private = keys.generate_private("ES256")
    kid = keys.thumbprint(private.public_key())
    pem_file = tmp_path / "next.pem"
    pem_file.write_text(keys.private_pem(private))

    assert command("add", "--private-key-file", str(pem_file)) == (
        f"Added ES256 key {kid} (published; promote it to sign).\n"
    )
    with pytest.raises(CommandError, match="services may cache the JWKS"):
        command("promote", "--", kid)
    assert command("promote", "--force", "--", kid) == f"Key {kid} now signs every new token.\n"
    with pytest.raises(CommandError, match="signed the current tokens of 1 live session"):
        command("retire", "--", first_kid())
    assert command("retire", "--force", "--", first_kid()) == f"Retired key {first_kid()}; 1 session(s) ended.\n"
    assert outcome(logged_in.refresh()) == (401, "refresh_token_invalid")


def test_command_refuses_an_unknown_kid_and_a_second_add_of_the_same_key(db, tmp_path):
    pem_file = tmp_path / "same.pem"
    pem_file.write_text(keys.private_pem(keys.configured_key()[1]))

    with pytest.raises(CommandError, match="No key 'nope' in the key set"):
        command("promote", "nope")
    with pytest.raises(CommandError, match=f"Key {first_kid()} is already in the key set."):
        command("add", "--private-key-file", str(pem_file))


def test_command_refuses_a_key_of_the_wrong_type(db, tmp_path):
    pem_file = tmp_path / "rsa.pem"
    pem_file.write_text(keys.private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))

    with pytest.raises(CommandError, match="JWT_ALGORITHM=ES256 needs an EC private key on the P-256 curve"):
        command("add", "--private-key-file", str(pem_file))


KEY_EVENTS = (
    SecurityEvent.Kind.SIGNING_KEY_ADDED,
    SecurityEvent.Kind.SIGNING_KEY_PROMOTED,
    SecurityEvent.Kind.SIGNING_KEY_RETIRED,
)


def key_events() -> list[tuple[str, str, dict]]:
    events = SecurityEvent.objects.filter(kind__in=KEY_EVENTS).order_by("id")
    return [(event.kind, event.username, event.data) for event in events]


@pytest.fixture
def os_user(monkeypatch):
    """The command runs as OS user `ops-carol`, not under sudo."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME", "SUDO_USER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOGNAME", "ops-carol")
    return "ops-carol"


def test_command_records_every_key_change_in_the_security_log_with_the_os_user(logged_in, os_user, tmp_path):
    private = keys.generate_private("ES256")
    kid = keys.thumbprint(private.public_key())
    pem_file = tmp_path / "next.pem"
    pem_file.write_text(keys.private_pem(private))
    session_id = str(Session.objects.get().pk)

    command("add", "--private-key-file", str(pem_file))
    command("promote", "--force", "--", kid)
    command("retire", "--force", "--", first_kid())

    assert key_events() == [
        ("signing_key_added", "", {"kid": kid, "algorithm": "ES256", "operator": "ops-carol", "imported": True}),
        (
            "signing_key_promoted",
            "",
            {"kid": kid, "algorithm": "ES256", "operator": "ops-carol", "previous": first_kid(), "forced": True},
        ),
        (
            "signing_key_retired",
            "",
            {"kid": first_kid(), "algorithm": "ES256", "operator": "ops-carol", "sessions": [session_id]},
        ),
    ]


def test_command_under_sudo_records_who_called_sudo(db, os_user, monkeypatch):
    monkeypatch.setenv("LOGNAME", "root")
    monkeypatch.setenv("SUDO_USER", "carol")

    command("add")

    ((kind, _, data),) = key_events()
    assert (kind, data["operator"], data["imported"]) == ("signing_key_added", "carol (sudo as root)", False)


def test_a_promotion_after_the_wait_is_recorded_as_not_forced(second_key, time_machine):
    time_machine.move_to(second_key.created_at.timestamp() + 301)

    signing_key_promote(kid=second_key.kid)

    assert key_events()[1:] == [
        (
            "signing_key_promoted",
            "",
            {
                "kid": second_key.kid,
                "algorithm": "ES256",
                "operator": "unknown",
                "previous": first_kid(),
                "forced": False,
            },
        )
    ]


def test_refused_and_repeated_key_changes_are_not_recorded(logged_in, second_key):
    before = key_events()

    with pytest.raises(KeyRefused):
        signing_key_promote(kid=second_key.kid)  # not published long enough
    with pytest.raises(KeyRefused):
        signing_key_retire(kid=first_kid(), force=True)  # the active key
    signing_key_promote(kid=first_kid())  # already active: nothing changes

    assert [kind for kind, _, _ in key_events()] == [kind for kind, _, _ in before] == ["signing_key_added"]

    signing_key_retire(kid=second_key.kid)
    signing_key_retire(kid=second_key.kid)  # already retired: nothing changes

    assert [kind for kind, _, _ in key_events()] == ["signing_key_added", "signing_key_retired"]


def test_a_retired_configured_key_signs_nothing_after_an_algorithm_switch(logged_in, settings, make_spa):
    pem = keys.private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, "ALGORITHM": "RS256", "SIGNING_KEY": pem}):
        kid = keys.configured_key()[0]
        keys.current()  # imported as published: the EdDSA key holds the one active place
        command("retire", "--force", "--", kid)

        spa = make_spa()
        response = spa.login()
        with pytest.raises(AuthError) as refused:
            keys.sign({"sub": "x"}, kid)

    # The active key (of the algorithm it was added with) signs; the retired one the
    # settings name signs nothing.
    assert response.status_code == 200
    assert jwt.get_unverified_header(spa.cookie("access"))["kid"] == our_kid_before_switch(logged_in)
    assert refused.value.code == "signing_key_unavailable"


def our_kid_before_switch(spa) -> str:
    """The kid that signed a session opened before the switch: the active key."""
    return jwt.get_unverified_header(spa.cookie("access"))["kid"]
