"""Configuration mistakes reported as Django system checks (run by manage.py and,
via the gunicorn config, before the server starts)."""

import contextlib
from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, router
from jwt.exceptions import InvalidKeyError

from . import keys
from .conf import MAX_GRACE, MAX_SESSIONS_CAP, auth_settings
from .models import SigningKey

COMMAND = "python manage.py signing_keys"


def signing_keys_command(action: str, kid: str, *, force: bool = False) -> str:
    """The command line, quoted for a message, that runs `action` on `kid`. Kids are
    base64url and may begin with "-", which argparse would take for an option."""
    flag = " --force" if force else ""
    if kid.startswith("-"):
        return f"`{COMMAND} {action}{flag} -- {kid}`"
    return f"`{COMMAND} {action} {kid}{flag}`"


@register(Tags.security)
def check_duotoken_settings(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
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
    alg = jwt.get("ALGORITHM", keys.DEFAULT_ALGORITHM)
    if alg not in keys.ALGORITHMS:
        # RSA-PSS (PS*) signatures are randomised; we sign ECDSA deterministically
        # (RFC 6979) on P-256 only.
        errors.append(
            Error(
                "JWT_ALGORITHM must be ES256, EdDSA, RS256/384/512 or HS256/384/512: "
                "the grace window relies on deterministic signatures.",
                id="duotoken.E006",
            )
        )
    elif not keys.is_symmetric(alg):
        try:
            private = keys.parse_private(jwt["SIGNING_KEY"], alg)
        except keys.KeyUnusable as exc:
            errors.append(Error(f"JWT_PRIVATE_KEY: {exc}.", id="duotoken.E009"))
        else:
            if not settings.DEBUG and keys.is_development(keys.thumbprint(private.public_key())):
                errors.append(
                    Error(
                        "JWT_PRIVATE_KEY is the public development key, with which anyone can sign tokens; "
                        "set it to a key of your own (for example `openssl genpkey -algorithm ed25519`).",
                        id="duotoken.E012",
                    )
                )
        try:
            keys._fernet()
        except keys.KeyUnusable as exc:
            errors.append(Error(f"{exc}.", id="duotoken.E014"))
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
def check_grace_window_within_access_lifetime(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
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


def _is_development_row(row: SigningKey) -> bool:
    if keys.is_development(row.kid):
        return True
    # The kid is the thumbprint by construction; a row written by hand may lie.
    with contextlib.suppress(ValueError, TypeError, InvalidKeyError):
        return keys.is_development(keys.thumbprint(keys.load_public(row.public_pem)))
    return False


@register(Tags.security, Tags.database)
def check_signing_keys(
    app_configs: Sequence[AppConfig] | None = None, databases: Sequence[str] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """The key set as stored: no usable development key (E012), every usable key
    decryptable here (E013), and the configured key signing (W002, W003).

    Like Django's own database checks, it reads the database only when asked to
    (`manage.py preflight`, which gunicorn runs before it serves, or `manage.py
    check --database default`). A database that does not answer, or has no key
    table yet, is reported by preflight, not here."""
    alg = settings.SIMPLE_JWT.get("ALGORITHM", "EdDSA")
    if not databases or router.db_for_read(SigningKey) not in databases:
        return []
    if alg not in keys.ALGORITHMS or keys.is_symmetric(alg):
        return []
    try:
        configured_kid = keys.configured_key()[0]
        keys._fernet()
    except keys.KeyUnusable:
        return []  # duotoken.E009 / E014
    try:
        rows = list(SigningKey.objects.exclude(state=SigningKey.State.RETIRED).order_by("kid"))
        configured = SigningKey.objects.filter(pk=configured_kid).first()
    except DatabaseError:
        return []
    found: list[CheckMessage] = []
    active = next((row for row in rows if row.algorithm == alg and row.state == SigningKey.State.ACTIVE), None)
    replacement = configured_kid if not keys.is_development(configured_kid) else "<kid from `signing_keys add`>"
    for row in rows:
        if not _is_development_row(row):
            continue
        steps = [signing_keys_command("retire", row.kid, force=True)]
        if row.state == SigningKey.State.ACTIVE:
            steps.insert(0, signing_keys_command("promote", replacement, force=True))
        message = (
            f"Signing key {row.kid} ({row.state}, {row.algorithm}) is the public development key, with which "
            "anyone can sign tokens. Without DJANGO_DEBUG it signs and verifies nothing (logins and refreshes "
            f"answer 503 while it is the active key). Replace it: {', then '.join(steps)}."
        )
        found.append(Warning(message, id="duotoken.W012") if settings.DEBUG else Error(message, id="duotoken.E012"))
    for row in rows:
        if row.algorithm != alg or row.kid == configured_kid or _is_development_row(row):
            continue
        try:
            keys.decrypt_private(row)
        except keys.KeyUnusable as exc:
            remedy = (
                f"promote another key (`{COMMAND} promote KID --force`) and retire this one"
                if row.state == SigningKey.State.ACTIVE
                else f"retire it ({signing_keys_command('retire', row.kid, force=True)}) if nothing needs it"
            )
            found.append(
                Error(
                    f"Signing key {row.kid} ({row.state}) cannot be used: {exc}. Every login or refresh that "
                    "needs it would answer 503. Give this host the key it was stored under: the previous "
                    "DJANGO_SECRET_KEY in DJANGO_SECRET_KEY_FALLBACKS (or the previous key after the current "
                    f"one in JWT_KEYS_ENCRYPTION_KEY), then run `{COMMAND} reencrypt`; or {remedy}.",
                    id="duotoken.E013",
                )
            )
    if keys.is_development(configured_kid):
        return found
    if configured is not None and configured.state == SigningKey.State.RETIRED:
        found.append(
            Warning(
                f"JWT_PRIVATE_KEY is key {configured_kid}, which is retired and never signs again. Point "
                "JWT_PRIVATE_KEY (or JWT_PRIVATE_KEY_FILE) at the active key, or at a new key, so that it "
                "names a key that may sign.",
                id="duotoken.W003",
            )
        )
    elif active is not None and active.kid != configured_kid and (configured is None or not configured.promoted_at):
        found.append(
            Warning(
                f"JWT_PRIVATE_KEY is key {configured_kid}, which does not sign: key {active.kid} does (a "
                "configured key joins the key set as published when another key is already active). To make it "
                f"sign on every host: {signing_keys_command('promote', configured_kid)} (add --force to skip waiting "
                "AUTH_JWKS_MAX_AGE, e.g. after a leak).",
                id="duotoken.W002",
            )
        )
    return found
