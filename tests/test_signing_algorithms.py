"""Every algorithm we offer signs deterministically (the grace replay re-mints the
same bytes), and its tokens are ordinary JWS that PyJWT verifies. ES256, the
default, signs with RFC 6979 nonces where PyJWT's own ES256 signer would not."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest

from tokens import keys
from tokens.key_services import signing_key_add, signing_key_promote

PAYLOAD = {"iss": "duotoken", "sub": "42", "iat": 1_700_000_000, "exp": 1_700_000_300}


def test_es256_is_the_default_and_signs_the_same_bytes_every_time(db):
    kid = keys.active_kid()

    first, second = keys.sign(PAYLOAD, kid), keys.sign(PAYLOAD, kid)

    assert keys.algorithm() == "ES256"
    assert first == second
    assert jwt.get_unverified_header(first) == {"alg": "ES256", "kid": kid, "typ": "JWT"}
    public = keys.configured_key()[1].public_key()
    assert jwt.decode(first, public, algorithms=["ES256"], options={"verify_exp": False}) == PAYLOAD


def test_es256_signatures_are_raw_r_and_s_of_32_bytes_each(db):
    token = keys.sign(PAYLOAD, keys.active_kid())

    signature = jwt.utils.base64url_decode(token.rpartition(".")[2])

    assert len(signature) == 64


def test_pyjwt_own_es256_signer_would_break_the_byte_identical_replay(db):
    # Why we sign through our own algorithm: PyJWT's picks a random nonce.
    private = keys.configured_key()[1]

    assert jwt.encode(PAYLOAD, private, algorithm="ES256") != jwt.encode(PAYLOAD, private, algorithm="ES256")


@pytest.mark.parametrize("algorithm", keys.ASYMMETRIC)
def test_every_offered_algorithm_logs_in_refreshes_and_replays_byte_identically(
    algorithm, at_noon, make_spa, time_machine
):
    signing_key_promote(kid=signing_key_add(algorithm=algorithm).kid, force=True)
    assert at_noon.refresh().status_code == 200
    previous = at_noon.cookie("refresh")
    assert at_noon.refresh().status_code == 200
    successor = (at_noon.cookie("access"), at_noon.cookie("refresh"))
    time_machine.shift(timedelta(seconds=3))

    other_tab = make_spa()
    other_tab.set_cookie("refresh", previous)
    assert other_tab.refresh().status_code == 200

    assert (other_tab.cookie("access"), other_tab.cookie("refresh")) == successor
    assert jwt.get_unverified_header(successor[0])["alg"] == algorithm
    assert other_tab.me().status_code == 200
