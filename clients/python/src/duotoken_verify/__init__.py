"""Verify Duotoken access tokens in another service.

    from duotoken_verify import Verifier
    verifier = Verifier(url="https://auth.example.com", audience="duotoken")
    claims = verifier.verify_access_token(token)

`duotoken_verify.drf.DuotokenAuthentication` does the same for Django REST framework.
"""

from .errors import DuotokenError, ExpiredToken, InvalidToken, RevokedToken, Unavailable
from .jwks import ALGORITHMS, KeySet
from .revocation import GatewayCheck, IntrospectionCheck, RevocationCheck
from .verifier import Claims, Verifier, configure, verify_access_token

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS",
    "Claims",
    "DuotokenError",
    "ExpiredToken",
    "GatewayCheck",
    "IntrospectionCheck",
    "InvalidToken",
    "KeySet",
    "RevocationCheck",
    "RevokedToken",
    "Unavailable",
    "Verifier",
    "configure",
    "verify_access_token",
]
