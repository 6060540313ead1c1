"""Configuration mistakes reported as Django system checks (run by manage.py and,
via the gunicorn config, before the server starts)."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

from . import keys
from .conf import MAX_GRACE, MAX_SESSIONS_CAP, auth_settings


@register(Tags.security)
def check_duotoken_settings(app_configs=None, **kwargs):
    errors = []
    jwt, ours = settings.SIMPLE_JWT, settings.DUOTOKEN
    grace = ours["REFRESH_GRACE"]
    if grace.total_seconds() < 0 or grace > MAX_GRACE:
        errors.append(Error("AUTH_REFRESH_GRACE_SECONDS must be between 0 and 60.", id="duotoken.E003"))
    if jwt["ACCESS_TOKEN_LIFETIME"].total_seconds() < 1:
        errors.append(Error("AUTH_ACCESS_TOKEN_LIFETIME must be at least 1 second.", id="duotoken.E004"))
    if jwt["REFRESH_TOKEN_LIFETIME"] <= jwt["ACCESS_TOKEN_LIFETIME"]:
        errors.append(
            Error("AUTH_REFRESH_TOKEN_LIFETIME must be longer than AUTH_ACCESS_TOKEN_LIFETIME.", id="duotoken.E005")
        )
    if ours["SESSION_MAX_LIFETIME"] < jwt["REFRESH_TOKEN_LIFETIME"]:
        errors.append(
            Warning(
                "AUTH_SESSION_MAX_LIFETIME is shorter than the idle timeout; sessions end at the cap first.",
                id="duotoken.W001",
            )
        )
    alg = jwt.get("ALGORITHM", "EdDSA")
    if alg not in keys.ALGORITHMS:
        # ECDSA (ES*) and RSA-PSS (PS*) signatures are randomised.
        errors.append(
            Error(
                "JWT_ALGORITHM must be EdDSA, RS256/384/512 or HS256/384/512: "
                "the grace window relies on deterministic signatures.",
                id="duotoken.E006",
            )
        )
    elif not keys.is_symmetric(alg):
        try:
            keys.parse_private(jwt["SIGNING_KEY"], alg)
        except keys.KeyUnusable as exc:
            errors.append(Error(f"JWT_PRIVATE_KEY: {exc}.", id="duotoken.E009"))
    if not jwt.get("ISSUER") or not jwt.get("AUDIENCE"):
        errors.append(Error("JWT_ISSUER and JWT_AUDIENCE must not be empty.", id="duotoken.E010"))
    if ours.get("COOKIE_DOMAIN") and (ours.get("ACCESS_COOKIE_NAME") or "").startswith("__Host-"):
        errors.append(Error("A __Host- cookie cannot carry a Domain; unset AUTH_COOKIE_DOMAIN.", id="duotoken.E007"))
    cap = ours.get("MAX_SESSIONS_PER_USER", 50)
    if not isinstance(cap, int) or not 1 <= cap <= MAX_SESSIONS_CAP:
        # Unbounded sessions make every per-user listing unbounded too.
        errors.append(
            Error(f"AUTH_MAX_SESSIONS_PER_USER must be between 1 and {MAX_SESSIONS_CAP}.", id="duotoken.E020")
        )
    challenge = ours.get("DBSC_CHALLENGE_SECONDS", 60)
    if not isinstance(challenge, int) or not 1 <= challenge <= 600:
        errors.append(Error("AUTH_DBSC_CHALLENGE_SECONDS must be between 1 and 600.", id="duotoken.E030"))
    if ours.get("DBSC") and not ours["COOKIE_SECURE"]:
        errors.append(
            Warning(
                "AUTH_DBSC is on but the cookies are not Secure: browsers register device-bound sessions "
                "over HTTPS only, so no session will be bound.",
                hint="Serve over TLS with AUTH_COOKIE_SECURE=true, or leave AUTH_DBSC unset.",
                id="duotoken.W030",
            )
        )
    try:
        auth_settings()
    except ImproperlyConfigured as exc:  # a bad rate string
        errors.append(Error(str(exc), id="duotoken.E008"))
    return errors


@register(Tags.security)
def check_grace_window_within_access_lifetime(app_configs=None, **kwargs):
    # A grace replay hands back the successor as it was issued at the rotation, so its
    # access token has already lost up to the whole window. With a window of at most
    # half the access lifetime, a replayed token always keeps half its life; a longer
    # one could hand a client a token that is expired on arrival.
    grace = settings.DUOTOKEN["REFRESH_GRACE"]
    access = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]
    if grace * 2 > access:
        return [
            Error(
                "AUTH_REFRESH_GRACE_SECONDS must be at most half of AUTH_ACCESS_TOKEN_LIFETIME "
                f"(now {int(grace.total_seconds())} s and {int(access.total_seconds())} s): a refresh replayed "
                "in the grace window gets the successor as issued, whose access token would be nearly "
                "or already expired.",
                id="duotoken.E011",
            )
        ]
    return []
