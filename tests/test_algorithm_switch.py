"""Switching algorithm is a key rotation: `signing_keys add --algorithm ES256`, then
`promote`. Each key keeps the algorithm it was added with, sessions move to the new
key at their next refresh, nobody is logged out, and a token verifies only under
the algorithm of the key its `kid` names."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from io import StringIO

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from tokens import keys
from tokens.errors import AuthError
from tokens.models import RevokeReason, Session, SigningKey

ED25519_PEM = keys.private_pem(ed25519.Ed25519PrivateKey.generate())


def command(*args: str) -> str:
    out = StringIO()
    call_command("signing_keys", *args, stdout=out)
    return out.getvalue()


def header_of(token: str) -> dict:
    return jwt.get_unverified_header(token)


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def outcome(response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


def configured(alg: str, pem: str):
    """The deployment's JWT_ALGORITHM and JWT_PRIVATE_KEY, as after a redeploy."""
    return override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, "ALGORITHM": alg, "SIGNING_KEY": pem})


@pytest.fixture
def under_eddsa(db):
    """A deployment that has run on EdDSA so far: its configured key is active."""
    with configured("EdDSA", ED25519_PEM):
        keys.current()
        yield keys.configured_key()[0]


@pytest.fixture
def eddsa_session(under_eddsa, logged_in):
    assert header_of(logged_in.cookie("access")) == {"alg": "EdDSA", "kid": under_eddsa, "typ": "JWT"}
    return logged_in


def test_an_eddsa_session_keeps_refreshing_after_the_switch_and_gets_es256_tokens(eddsa_session, under_eddsa):
    old_access = eddsa_session.cookie("access")
    added = command("add", "--algorithm", "ES256")
    new_kid = added.split()[3]
    assert added == f"Added ES256 key {new_kid} (published; promote it to sign).\n"

    assert command("promote", new_kid, "--force") == f"Key {new_kid} now signs every new token.\n"
    response = eddsa_session.refresh()

    assert response.status_code == 200
    for kind in ("access", "refresh"):
        assert header_of(eddsa_session.cookie(kind)) == {"alg": "ES256", "kid": new_kid, "typ": "JWT"}
    assert Session.objects.get().signing_kid == new_kid
    assert eddsa_session.me().status_code == 200
    eddsa_session.set_cookie("access", old_access)  # the EdDSA one, still published
    assert eddsa_session.me().status_code == 200
    assert eddsa_session.refresh().status_code == 200


def test_a_new_login_after_the_switch_is_signed_with_the_new_algorithm(under_eddsa, alice, make_spa):
    new_kid = command("add", "--algorithm", "ES256").split()[3]
    command("promote", new_kid, "--force")

    spa = make_spa()
    assert spa.login().status_code == 200

    assert header_of(spa.cookie("access"))["alg"] == "ES256"
    assert spa.me().status_code == 200


def test_the_jwks_lists_both_algorithms_during_the_switch_and_only_the_new_one_after(eddsa_session, under_eddsa):
    new_kid = command("add", "--algorithm", "ES256").split()[3]
    command("promote", new_kid, "--force")

    during = eddsa_session.get("/.well-known/jwks.json").json()["keys"]
    assert [(key["kid"], key["alg"], key["kty"]) for key in during] == [
        (under_eddsa, "EdDSA", "OKP"),
        (new_kid, "ES256", "EC"),
    ]

    assert eddsa_session.refresh().status_code == 200  # the one EdDSA session moves on
    assert command("retire", under_eddsa) == f"Retired key {under_eddsa}; 0 session(s) ended.\n"
    after = eddsa_session.get("/.well-known/jwks.json").json()["keys"]
    assert [(key["kid"], key["alg"]) for key in after] == [(new_kid, "ES256")]


def test_the_retired_old_algorithm_key_refuses_its_tokens(eddsa_session, under_eddsa):
    old = (eddsa_session.cookie("access"), eddsa_session.cookie("refresh"))
    new_kid = command("add", "--algorithm", "ES256").split()[3]
    command("promote", new_kid, "--force")

    assert command("retire", under_eddsa, "--force") == f"Retired key {under_eddsa}; 1 session(s) ended.\n"

    eddsa_session.set_cookie("access", old[0])
    assert outcome(eddsa_session.me()) == (401, "access_token_invalid")
    eddsa_session.set_cookie("refresh", old[1])
    assert outcome(eddsa_session.refresh()) == (401, "refresh_token_invalid")
    assert Session.objects.get().revoke_reason == RevokeReason.KEY_RETIRED


def test_a_grace_replay_across_the_switch_gets_the_byte_identical_eddsa_successor(eddsa_session, under_eddsa, make_spa):
    first_refresh = eddsa_session.cookie("refresh")
    assert eddsa_session.refresh().status_code == 200
    successor = (eddsa_session.cookie("access"), eddsa_session.cookie("refresh"))
    new_kid = command("add", "--algorithm", "ES256").split()[3]
    command("promote", new_kid, "--force")

    other_tab = make_spa()
    other_tab.set_cookie("refresh", first_refresh)
    response = other_tab.refresh()

    assert (response.status_code, response["Duotoken-Refresh"]) == (200, "replayed")
    assert (other_tab.cookie("access"), other_tab.cookie("refresh")) == successor
    assert header_of(successor[0])["alg"] == "EdDSA"
    assert other_tab.refresh().status_code == 200  # the next generation is ES256
    assert header_of(other_tab.cookie("access"))["alg"] == "ES256"


def test_a_switch_by_redeploying_with_the_new_key_and_promoting_it(eddsa_session, under_eddsa):
    p256_pem = keys.private_pem(keys.generate_private("ES256"))

    # The redeploy names the new key: it is imported published, so nothing changes yet.
    with configured("ES256", p256_pem):
        new_kid = keys.configured_key()[0]
        assert eddsa_session.refresh().status_code == 200
        assert header_of(eddsa_session.cookie("access")) == {"alg": "EdDSA", "kid": under_eddsa, "typ": "JWT"}
        assert SigningKey.objects.get(pk=new_kid).state == "published"

        command("promote", new_kid, "--force")
        assert eddsa_session.refresh().status_code == 200

        assert header_of(eddsa_session.cookie("access")) == {"alg": "ES256", "kid": new_kid, "typ": "JWT"}
        assert eddsa_session.me().status_code == 200


def test_a_retired_configured_key_never_signs_after_a_switch(eddsa_session, under_eddsa, alice, make_spa):
    # A redeploy names an RS256 key, which goes in published (the EdDSA key is
    # active), and the operator retires that unused key.
    rsa_pem = keys.private_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with configured("RS256", rsa_pem):
        rsa_kid = keys.configured_key()[0]
        keys.current()
        command("retire", rsa_kid)

        spa = make_spa()
        assert spa.login().status_code == 200
        assert eddsa_session.refresh().status_code == 200

        # Signed by the active key, never by the retired one the settings name.
        assert header_of(spa.cookie("access")) == {"alg": "EdDSA", "kid": under_eddsa, "typ": "JWT"}
        assert header_of(eddsa_session.cookie("access"))["kid"] == under_eddsa
        assert spa.me().status_code == 200
        with pytest.raises(AuthError) as refused:
            keys.sign(claims_of(spa.cookie("access")), rsa_kid)
        assert refused.value.code == "signing_key_unavailable"


def test_an_rsa_key_verifies_only_the_algorithm_it_was_added_with(logged_in, tmp_path):
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem_file = tmp_path / "rs256.pem"
    pem_file.write_text(keys.private_pem(private))
    rs256_kid = command("add", "--algorithm", "RS256", "--private-key-file", str(pem_file)).split()[3]
    payload = claims_of(logged_in.cookie("access"))

    rs384 = jwt.encode(payload, private, algorithm="RS384", headers={"kid": rs256_kid})
    rs256 = jwt.encode(payload, private, algorithm="RS256", headers={"kid": rs256_kid})

    logged_in.set_cookie("access", rs384)
    assert outcome(logged_in.me()) == (401, "access_token_invalid")
    logged_in.set_cookie("access", rs256)
    assert logged_in.me().status_code == 200  # the control


def _hs256(payload: dict, secret: bytes, kid: str) -> str:
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = b64(json.dumps(payload).encode())
    return f"{head}.{body}.{b64(hmac.new(secret, f'{head}.{body}'.encode(), hashlib.sha256).digest())}"


def test_hostile_tokens_are_refused_while_two_algorithms_are_published(eddsa_session, under_eddsa):
    new_kid = command("add", "--algorithm", "ES256").split()[3]
    command("promote", new_kid, "--force")
    assert eddsa_session.refresh().status_code == 200
    payload = claims_of(eddsa_session.cookie("access"))
    eddsa_key = keys.configured_key()[1]
    _, body, es256_signature = eddsa_session.cookie("access").split(".")

    forged = {
        "hs256_keyed_with_the_eddsa_public_key": _hs256(
            payload, SigningKey.objects.get(pk=under_eddsa).public_pem.encode(), under_eddsa
        ),
        "hs256_keyed_with_the_es256_public_key": _hs256(
            payload, SigningKey.objects.get(pk=new_kid).public_pem.encode(), new_kid
        ),
        "alg_none_under_the_es256_kid": ".".join([b64(json.dumps({"alg": "none", "kid": new_kid}).encode()), body, ""]),
        "eddsa_signature_under_the_es256_kid": jwt.encode(
            payload, eddsa_key, algorithm="EdDSA", headers={"kid": new_kid}
        ),
        "es256_signature_relabelled_eddsa": ".".join(
            [b64(json.dumps({"alg": "EdDSA", "kid": new_kid, "typ": "JWT"}).encode()), body, es256_signature]
        ),
        "es256_signature_under_the_eddsa_kid": ".".join(
            [b64(json.dumps({"alg": "ES256", "kid": under_eddsa, "typ": "JWT"}).encode()), body, es256_signature]
        ),
    }

    for name, token in forged.items():
        eddsa_session.set_cookie("access", token)
        assert outcome(eddsa_session.me()) == (401, "access_token_invalid"), name


def test_after_a_switch_to_hs256_the_shared_secret_signs_even_with_an_active_key_in_the_set(logged_in, make_spa):
    assert SigningKey.objects.filter(state="active").exists()  # the ES256 key, active
    hs = {**settings.SIMPLE_JWT, "ALGORITHM": "HS256", "SIGNING_KEY": "h" * 50}

    with override_settings(SIMPLE_JWT=hs):
        spa = make_spa()
        assert spa.login().status_code == 200
        assert spa.refresh().status_code == 200
        assert spa.me().status_code == 200
        header = header_of(spa.cookie("access"))
        # The key set's tokens are not the shared secret's: that switch logs out (README).
        assert outcome(logged_in.me()) == (401, "access_token_invalid")

    assert header["alg"] == "HS256" and header["kid"].startswith("hs-")
