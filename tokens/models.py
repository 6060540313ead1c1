import hashlib
import uuid
from datetime import UTC, datetime

from django.conf import settings
from django.db import models


class RevokeReason(models.TextChoices):
    LOGOUT = "logout", "Logout"
    LOGOUT_ALL = "logout_all", "Logout everywhere"
    ADMIN = "admin", "Revoked by an admin"
    PASSWORD_CHANGE = "password_change", "Password change"
    REUSE = "reuse", "Refresh token reuse detected"
    USER_DEACTIVATED = "user_deactivated", "User deactivated"
    SESSION_LIMIT = "session_limit", "Too many sessions: the oldest was ended"
    KEY_RETIRED = "key_retired", "Signing key retired"


def credential_fingerprint(password_hash: str) -> str:
    """What a session remembers of the credential it was opened with: a digest of
    the user's stored password hash, so that any change of that hash, by any path,
    is visible. Not keyed on SECRET_KEY, so rotating that key logs nobody out; the
    hash it digests is itself salted and stretched."""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


# The grace window's record of a session: when each of its last ROTATIONS_KEPT
# generations was rotated away, newest first, as fixed-width epoch seconds ("ten
# digits and a comma"), so that the compare-and-set pushes one in SQL that SQLite and
# PostgreSQL both run (`substr(new || old, 1, width)`), in the same UPDATE.
ROTATIONS_KEPT = 16
ROTATION_WIDTH = 11


def rotation_entry(moment: datetime) -> str:
    return f"{int(moment.timestamp()):010d},"


class Session(models.Model):
    """One login: a token family. Its refresh tokens carry `generation`.

    The generation counter is the blacklist: a refresh token is usable only while
    its generation is the current one, or, within the grace window of its rotation,
    as a replay that gets the current generation back. No raw token is ever stored.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="auth_sessions")
    generation = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField()
    rotated_at = models.DateTimeField(help_text="When the current generation was issued.")
    idle_expires_at = models.DateTimeField()
    absolute_expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=32, choices=RevokeReason.choices, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True, help_text="Where the login came from.")
    user_agent = models.CharField(max_length=512, blank=True)
    last_ip = models.GenericIPAddressField(null=True, blank=True, help_text="Where the last refresh came from.")
    last_user_agent = models.CharField(max_length=512, blank=True)
    credential = models.CharField(
        max_length=32, blank=True, help_text="Fingerprint of the password hash at login (see credential_fingerprint)."
    )
    # The key that signed the current generation, set in the same compare-and-set
    # that moves `generation`: a grace replay re-mints with it, whatever key signs now.
    signing_kid = models.CharField(max_length=64, blank=True, default="")
    # Written only by that compare-and-set too: entry i is when generation
    # `generation - 1 - i` was rotated away (see rotated_away_at).
    recent_rotations = models.CharField(
        max_length=ROTATIONS_KEPT * ROTATION_WIDTH,
        blank=True,
        default="",
        editable=False,
        help_text="When each of the last generations was rotated away, newest first (epoch seconds).",
    )
    # Device Bound Session Credentials (tokens.binding): the browser's public key,
    # whose private half never leaves the device, and its RFC 7638 thumbprint (the
    # `cnf.jkt` of the session's access tokens). Empty for an unbound session.
    binding_jwk = models.JSONField(null=True, blank=True, help_text="The device's public key (JWK).")
    binding_jkt = models.CharField(max_length=64, blank=True, default="", help_text="RFC 7638 thumbprint of it.")
    bound_at = models.DateTimeField(null=True, blank=True, help_text="When the session was bound to a device.")

    class Meta:
        indexes = [
            models.Index(fields=["user", "revoked_at"], name="session_user_revoked"),
            models.Index(fields=["absolute_expires_at"], name="session_abs_expiry"),
            models.Index(fields=["idle_expires_at"], name="session_idle_expiry"),
        ]
        # Ending someone's sessions is its own right: viewing them in admin does not grant it.
        permissions = [("revoke_session", "Can revoke sessions")]

    def __str__(self) -> str:
        return f"session {self.pk} of user {self.user_id}"

    @property
    def expires_at(self) -> datetime:
        return min(self.idle_expires_at, self.absolute_expires_at)

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def rotated_away_at(self, generation: int) -> datetime | None:
        """When an older `generation` was rotated away (its successor issued), or None
        when it is not among the last ROTATIONS_KEPT: too old to matter."""
        back = self.generation - 1 - generation
        if back == 0:
            return self.rotated_at  # also for rows older than the record
        if not 0 < back < ROTATIONS_KEPT:
            return None
        entry = self.recent_rotations[back * ROTATION_WIDTH : (back + 1) * ROTATION_WIDTH]
        if len(entry) != ROTATION_WIDTH or not entry[:-1].isdigit():
            return None
        return datetime.fromtimestamp(int(entry[:-1]), tz=UTC)

    @property
    def is_bound(self) -> bool:
        return bool(self.binding_jkt)


class SecurityEvent(models.Model):
    class Kind(models.TextChoices):
        LOGIN_SUCCEEDED = "login_succeeded", "Login succeeded"
        LOGIN_FAILED = "login_failed", "Login failed"
        LOGOUT = "logout", "Logout"
        LOGOUT_ALL = "logout_all", "Logout everywhere"
        REFRESH_REUSE = "refresh_reuse_detected", "Refresh token reuse detected"
        ADMIN_REVOKED = "admin_revoked", "Sessions revoked by an admin"
        SESSION_REVOKED = "session_revoked", "Session ended by its user"
        PASSWORD_CHANGED = "password_changed", "Password changed"
        USER_DEACTIVATED = "user_deactivated", "User deactivated"
        SESSION_LIMIT = "session_limit", "Oldest sessions ended at the session limit"
        THROTTLED = "throttled", "Throttling triggered"
        AUTH_COOKIE_CONFLICT = "auth_cookie_conflict", "Auth cookie sent twice (cookie tossing)"
        INTROSPECTION = "introspection", "Token introspected by a service"
        INTROSPECTION_CLIENT_FAILED = "introspection_client_failed", "Service client authentication failed"
        SERVICE_CLIENT_CREATED = "service_client_created", "Service client created"
        SERVICE_CLIENT_DEACTIVATED = "service_client_deactivated", "Service client deactivated"
        SIGNING_KEY_ADDED = "signing_key_added", "Signing key added (published)"
        SIGNING_KEY_PROMOTED = "signing_key_promoted", "Signing key promoted (signs)"
        SIGNING_KEY_RETIRED = "signing_key_retired", "Signing key retired"
        BINDING_REGISTERED = "binding_registered", "Session bound to a device (DBSC)"
        BINDING_PROOF_MISSING = "binding_proof_missing", "Bound session refreshed without a device proof"
        BINDING_PROOF_INVALID = "binding_proof_invalid", "Invalid device proof for a bound session"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    created_at = models.DateTimeField(db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="security_events"
    )
    # Plain copies of the user's id and name: the log outlives the users and the
    # sessions it mentions (deleting a user empties `user`, not these).
    account_id = models.BigIntegerField(
        null=True, blank=True, db_index=True, help_text="The user's id, kept after the user is deleted."
    )
    session_id = models.UUIDField(null=True, blank=True)
    username = models.CharField(
        max_length=150, blank=True, help_text="The user's name, or the name tried for failed logins."
    )
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["kind", "created_at"], name="event_kind_created")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.created_at:%Y-%m-%d %H:%M:%S}"


class SigningKey(models.Model):
    """One key pair of the JWT key set. Every host reads the set from here, so a
    promotion is seen by all of them at once; the private part is encrypted at rest
    (Fernet, under JWT_KEYS_ENCRYPTION_KEY) and never leaves `tokens.keys`.

    Life cycle: published (in the JWKS, verifies) -> active (also signs; at most
    one) -> published again once another key is promoted -> retired (neither).
    """

    class State(models.TextChoices):
        PUBLISHED = "published", "Published"
        ACTIVE = "active", "Active (signing)"
        RETIRED = "retired", "Retired"

    # RFC 7638 thumbprint of the public key: every host derives the same id.
    kid = models.CharField(max_length=64, primary_key=True)
    algorithm = models.CharField(max_length=16)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PUBLISHED)
    public_pem = models.TextField()
    private_encrypted = models.TextField()
    created_at = models.DateTimeField()
    promoted_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "kid"]
        constraints = [
            models.UniqueConstraint(fields=["state"], condition=models.Q(state="active"), name="one_active_signing_key")
        ]

    def __str__(self) -> str:
        return f"{self.algorithm} key {self.kid} ({self.state})"


class Revocation(models.Model):
    """The revocation outbox: a session ended in the database. Written in the same
    transaction as the revocation and replayed into Redis until Redis has taken it
    (`published_at`); kept one access token lifetime longer, so that it can be
    written again to a Redis that went back in time (restarted from a snapshot, a
    promoted replica) while a token of the session can still be used (see
    tokens.revocations). No foreign key: the row must outlive a deleted session."""

    session_id = models.UUIDField()
    user_id = models.CharField(max_length=64)
    reason = models.CharField(max_length=32)
    created_at = models.DateTimeField()
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        # Every check reads the rows not yet published; republishing reads the
        # recent ones; cleanup drops the old ones.
        indexes = [models.Index(fields=["published_at"], name="revocation_published")]

    def __str__(self) -> str:
        return f"revocation of session {self.session_id} (not yet in Redis)"


class Rotation(models.Model):
    """One step of a session's story after its login: a refresh that moved the
    generation, or a replay inside the grace window that was handed the current one.
    Written in the refresh's own transaction; deleted with its session. This is what
    the admin's timeline draws, to answer "was this really theft?"."""

    class Kind(models.TextChoices):
        ROTATED = "rotated", "Rotated"
        REPLAYED = "replayed", "Grace replay"

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="rotations")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # The generation the refresh token presented, and the one the client left with.
    presented = models.PositiveIntegerField()
    generation = models.PositiveIntegerField()
    at = models.DateTimeField()
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["session", "at"], name="rotation_session_at")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.presented} -> {self.generation} at {self.at:%Y-%m-%d %H:%M:%S}"
