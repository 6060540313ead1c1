"""Sessions and the security log in Django admin: read-only records, plus one action
("Revoke selected sessions") guarded by its own permission, `tokens.revoke_session`.

Every action here and in accounts/admin.py declares the permission it needs, so a
staff user who may only view never changes anything; no changelist filters on a
secret column."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Model, Q, QuerySet
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.translation import ngettext

from . import clock
from .clientinfo import device_label
from .conf import auth_settings
from .models import SecurityEvent, Session, SigningKey
from .services import Revoked, sessions_live_ids, sessions_revoke_by_admin
from .timeline import session_story, story_chart

REVOKE_PERMISSION = "tokens.revoke_session"
# Columns no changelist may filter on, through any relation (`user__password`): a
# lookup such as `?private_encrypted__startswith=gAAAAA` would answer one character
# at a time. Django's own UserAdmin refuses `password` the same way.
SECRET_COLUMNS = frozenset({"password", "private_encrypted", "secret_hash"})

if TYPE_CHECKING:
    # Generic in the stubs only: Django's classes cannot be subscripted at run time.
    _ModelAdmin = admin.ModelAdmin[Any]
    # What the mixin below is always mixed into.
    _AdminMixinBase = admin.ModelAdmin[Any]
else:
    _ModelAdmin = admin.ModelAdmin
    _AdminMixinBase = object


class SecretColumnsNotFiltered(_AdminMixinBase):
    """Refuses (400, for everyone) a changelist lookup that touches a secret column."""

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        if SECRET_COLUMNS.intersection(lookup.split(LOOKUP_SEP)):
            return False
        # Django 5.2 still takes request=None; the stubs already require it.
        return super().lookup_allowed(lookup, value, request)  # type: ignore[arg-type]


def session_status(session: Session) -> str:
    if session.is_revoked:
        return f"revoked ({session.get_revoke_reason_display()})"
    if clock.now() >= session.expires_at:
        return "expired"
    return "active"


class SessionColumns:
    """Columns shown for a session wherever the admin lists sessions."""

    @admin.display(description="session")
    def short_id(self, session: Session) -> str:
        return str(session.pk)[:8]

    @admin.display(description="device")
    def device(self, session: Session) -> str:
        return device_label(session.last_user_agent or session.user_agent)

    @admin.display(description="status")
    def status(self, session: Session) -> str:
        return session_status(session)

    @admin.display(description="bound to device", ordering="bound_at")
    def binding(self, session: Session) -> str:
        # DBSC: copies of this session's cookies cannot refresh it.
        return f"since {session.bound_at:%Y-%m-%d %H:%M:%S}" if session.is_bound else "no"


class StatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: _ModelAdmin) -> list[tuple[str, str]]:
        return [("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Session]) -> QuerySet[Session]:
        now = clock.now()
        expired = Q(idle_expires_at__lte=now) | Q(absolute_expires_at__lte=now)
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True).exclude(expired)
        if self.value() == "expired":
            return queryset.filter(expired, revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


class BindingFilter(admin.SimpleListFilter):
    title = "bound to device"
    parameter_name = "bound"

    def lookups(self, request: HttpRequest, model_admin: _ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Bound (DBSC)"), ("no", "Not bound")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Session]) -> QuerySet[Session]:
        if self.value() == "yes":
            return queryset.exclude(binding_jkt="")
        if self.value() == "no":
            return queryset.filter(binding_jkt="")
        return queryset


class ReadOnlyAdmin(SecretColumnsNotFiltered, _ModelAdmin):
    """Records, not forms: nobody adds, edits or deletes rows by hand."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Session)
class SessionAdmin(SessionColumns, ReadOnlyAdmin):
    list_display = (
        "short_id",
        "user",
        "device",
        "ip",
        "created_at",
        "rotated_at",
        "idle_expires_at",
        "absolute_expires_at",
        "generation",
        "status",
        "binding",
    )
    list_select_related = ("user",)
    search_fields = ("user__username", "user__email", "ip", "last_ip")
    list_filter = (StatusFilter, BindingFilter, "revoke_reason", "created_at", "rotated_at")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    actions = ("revoke_selected",)
    fields = (
        "id",
        "user",
        "status",
        "device",
        "ip",
        "user_agent",
        "last_ip",
        "last_user_agent",
        "created_at",
        "rotated_at",
        "idle_expires_at",
        "absolute_expires_at",
        "generation",
        "revoked_at",
        "revoke_reason",
        "binding",
        "bound_at",
        "binding_jkt",
    )
    readonly_fields = fields
    # The session's story as a picture (tokens/timeline.py), under its fields.
    change_form_template = "admin/tokens/session/change_form.html"

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        session = self.get_object(request, object_id)
        if session is not None:
            story = session_story(session)
            extra_context = {**(extra_context or {}), "story": story, "chart": story_chart(story)}
        return super().change_view(request, object_id, form_url, extra_context)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REVOKE_PERMISSION)

    @admin.action(description="Revoke selected sessions", permissions=["revoke"])
    def revoke_selected(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        live = sessions_live_ids(session_ids=queryset.values_list("pk", flat=True))
        # The admin site lets only logged-in staff this far (to the stubs request.user may be anonymous).
        acting = cast(AbstractBaseUser, request.user)
        ended = sessions_revoke_by_admin(admin=acting, request=request, session_ids=live)
        message_sessions_ended(self, request, ended)


def message_sessions_ended(model_admin: _ModelAdmin, request: HttpRequest, ended: Revoked) -> None:
    count = len(ended)
    text = ngettext("%(count)d session ended.", "%(count)d sessions ended.", count) % {"count": count}
    model_admin.message_user(request, text, messages.SUCCESS if count else messages.WARNING)
    if not ended.published:
        model_admin.message_user(
            request,
            "Redis could not be updated: the revocation is queued and replayed; until then "
            "their access tokens may keep working on hosts that still reach Redis, for up to "
            f"{auth_settings().revocation_poll_seconds:g} s. Run the action again to retry now.",
            messages.ERROR,
        )


class EventUserFilter(admin.SimpleListFilter):
    """Filter by one user without listing every user in the sidebar: the user column
    (and the user's admin page) link here with `?user=<id>`."""

    title = "user"
    parameter_name = "user"

    def _user_id(self) -> int | None:
        value = self.value() or ""
        # Anything that is not a storable id matches nobody (and never reaches the database).
        return int(value) if value.isascii() and value.isdigit() and int(value) < 2**63 else None

    def lookups(self, request: HttpRequest, model_admin: _ModelAdmin) -> list[tuple[str, str]]:
        value = self.value()
        if not value:
            return []  # nothing to show, and the filter stays out of the sidebar
        users = get_user_model()._default_manager  # the model of SecurityEvent.user
        user_id = self._user_id()
        user = users.filter(pk=user_id).first() if user_id is not None else None
        return [(value, user.get_username() if user else f"unknown user {value}")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[SecurityEvent]) -> QuerySet[SecurityEvent]:
        if self.value() is None:
            return queryset
        user_id = self._user_id()
        return queryset.filter(user_id=user_id) if user_id is not None else queryset.none()


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "user_link", "username", "ip", "session_id", "summary")
    list_select_related = ("user",)
    list_filter = ("kind", "created_at", EventUserFilter)
    search_fields = ("user__username", "user__email", "username", "ip")
    date_hierarchy = "created_at"
    fields = ("created_at", "kind", "user", "username", "session_id", "ip", "user_agent", "details")
    readonly_fields = fields

    @admin.display(description="user", ordering="user__username")
    def user_link(self, event: SecurityEvent) -> str:
        if event.user_id is None or event.user is None:
            return "-"
        url = reverse("admin:tokens_securityevent_changelist") + "?" + urlencode({"user": event.user_id})
        return format_html('<a href="{}">{}</a>', url, event.user.get_username())

    @admin.display(description="details")
    def summary(self, event: SecurityEvent) -> str:
        data = event.data or {}
        if event.kind == SecurityEvent.Kind.ADMIN_REVOKED:
            admin_name = (data.get("admin") or {}).get("username", "?")
            return f"by {admin_name}: {len(data.get('sessions', []))} session(s)"
        if event.kind == SecurityEvent.Kind.REFRESH_REUSE:
            # Neutral on purpose: whoever rotated first may have been the thief.
            first, replay = data.get("first_rotation") or {}, data.get("replay") or {}
            return f"rotated first from {first.get('ip')}, replayed from {replay.get('ip')}"
        return ", ".join(f"{key}={value}" for key, value in data.items() if not isinstance(value, dict | list))

    @admin.display(description="data")
    def details(self, event: SecurityEvent) -> str:
        return format_html("<pre>{}</pre>", json.dumps(event.data, indent=2, sort_keys=True))


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnlyAdmin):
    """The key set, to look at: changes go through `manage.py signing_keys`, which
    waits for JWKS caches and counts the sessions a retirement ends. The private
    part is never read from the database here, let alone shown."""

    list_display = ("kid", "algorithm", "state", "created_at", "promoted_at", "retired_at")
    list_filter = ("state", "algorithm")
    search_fields = ("kid",)
    fields = ("kid", "algorithm", "state", "created_at", "promoted_at", "retired_at", "public_pem")
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[SigningKey]:
        return super().get_queryset(request).defer("private_encrypted")
