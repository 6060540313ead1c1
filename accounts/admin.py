"""Users in Django admin, with their sessions inline and an action that ends them all.

Deactivating a user here (or anywhere) ends their sessions through the post_save
receiver in tokens.signals; the admin adds who did it to the security log.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from django.contrib import admin, messages
from django.contrib.admin.options import InlineModelAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.forms import ModelForm
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from tokens import clock
from tokens.admin import REVOKE_PERMISSION, SecretColumnsNotFiltered, SessionColumns, message_sessions_ended
from tokens.models import RevokeReason, Session
from tokens.services import sessions_live_ids

from .models import ServiceClient, User
from .service_clients import service_client_create, service_client_deactivate
from .services import user_deactivation_record, users_sessions_revoke_by_admin

# The user page lists at most this many sessions (the most recently used live
# ones); the rest are one click away in the session list, filtered on the user.
INLINE_SESSIONS = 20

if TYPE_CHECKING:
    # Generic in the stubs only: Django's classes cannot be subscripted at run time.
    _SessionFormSet = BaseInlineFormSet[Session, User, ModelForm[Session]]
    _SessionInline = admin.TabularInline[Session, User]
    _UserAdmin = DjangoUserAdmin[User]
    _ServiceClientAdmin = admin.ModelAdmin[ServiceClient]
else:
    _SessionFormSet = BaseInlineFormSet
    _SessionInline = admin.TabularInline
    _UserAdmin = DjangoUserAdmin
    _ServiceClientAdmin = admin.ModelAdmin


def _acting_admin(request: HttpRequest) -> User:
    """Who is using the admin. The admin site lets only logged-in staff this far,
    which the stubs cannot know (to them request.user may be anonymous)."""
    return cast(User, request.user)


class RecentSessionsFormSet(_SessionFormSet):
    def get_queryset(self) -> QuerySet[Session]:
        if not hasattr(self, "_recent"):
            self._recent = super().get_queryset()[:INLINE_SESSIONS]
            len(self._recent)  # one query; the forms then index the fetched rows
        return self._recent


class SessionInline(SessionColumns, _SessionInline):
    model = Session
    formset = RecentSessionsFormSet
    fk_name = "user"
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("-rotated_at", "-created_at")
    fields = ("short_id", "device", "ip", "created_at", "rotated_at", "expires", "generation", "status", "binding")
    readonly_fields = fields
    verbose_name_plural = f"live sessions (the {INLINE_SESSIONS} most recently used)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Session]:
        now = clock.now()
        return (
            super()
            .get_queryset(request)
            .filter(revoked_at__isnull=True, idle_expires_at__gt=now, absolute_expires_at__gt=now)
        )

    def has_add_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        return False

    @admin.display(description="expires")
    def expires(self, session: Session) -> datetime:
        expires_at: datetime = session.expires_at
        return expires_at


@admin.register(User)
class UserAdmin(SecretColumnsNotFiltered, _UserAdmin):
    inlines = (SessionInline,)
    actions = ("revoke_all_sessions",)
    readonly_fields = ("all_sessions", "security_log")
    # The stubs give UserAdmin the optional fieldsets of ModelAdmin; Django's sets them.
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Security", {"fields": ("all_sessions", "security_log")}))  # type: ignore[misc]

    def get_inlines(
        self, request: HttpRequest, obj: User | None
    ) -> list[type[InlineModelAdmin[Any, Any]]] | tuple[type[InlineModelAdmin[Any, Any]], ...]:
        return self.inlines if obj is not None else ()

    @admin.display(description="sessions")
    def all_sessions(self, user: User) -> str:
        if user.pk is None:
            return "-"
        url = reverse("admin:tokens_session_changelist") + "?" + urlencode({"user__id__exact": user.pk})
        now = clock.now()
        live = Session.objects.filter(
            user=user, revoked_at__isnull=True, idle_expires_at__gt=now, absolute_expires_at__gt=now
        ).count()
        return format_html('<a href="{}">All sessions of {}</a> ({} live)', url, user.get_username(), live)

    @admin.display(description="security log")
    def security_log(self, user: User) -> str:
        if user.pk is None:
            return "-"
        url = reverse("admin:tokens_securityevent_changelist") + "?" + urlencode({"user": user.pk})
        return format_html('<a href="{}">Security events of {}</a>', url, user.get_username())

    def has_revoke_sessions_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(REVOKE_PERMISSION)

    @admin.action(description="Revoke all sessions of selected users", permissions=["revoke_sessions"])
    def revoke_all_sessions(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        ended = users_sessions_revoke_by_admin(
            admin=_acting_admin(request), request=request, user_ids=queryset.values_list("pk", flat=True)
        )
        message_sessions_ended(self, request, ended)

    def get_deleted_objects(
        self, objs: Sequence[User] | QuerySet[User], request: HttpRequest
    ) -> tuple[list[str], dict[str, int], set[str], list[str]]:
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # Sessions cannot be deleted by hand, but they go with their user (and the
        # post_delete receiver ends them in Redis at once).
        perms_needed.discard(Session._meta.verbose_name)
        return deleted, counts, perms_needed, protected

    def save_model(self, request: HttpRequest, obj: User, form: ModelForm[User], change: bool) -> None:
        deactivating = change and "is_active" in form.changed_data and not obj.is_active
        live = sessions_live_ids(user_ids=[obj.pk]) if deactivating else []
        super().save_model(request, obj, form, change)  # post_save ends the sessions
        if deactivating:
            ended = Session.objects.filter(pk__in=live, revoke_reason=RevokeReason.USER_DEACTIVATED).values_list(
                "pk", flat=True
            )
            user_deactivation_record(
                user=obj, admin=_acting_admin(request), request=request, session_ids=[str(pk) for pk in ended]
            )


@admin.register(ServiceClient)
class ServiceClientAdmin(SecretColumnsNotFiltered, _ServiceClientAdmin):
    """Services allowed to introspect tokens. The secret is generated on "Save" and
    shown once in the confirmation message; only its digest is stored. Deactivating
    needs the change permission: viewing alone does not cut a service off."""

    list_display = ("name", "client_id", "is_active", "created_at", "last_used_at")
    list_filter = ("is_active",)
    search_fields = ("name", "client_id")
    readonly_fields = ("client_id", "is_active", "created_at", "last_used_at")
    actions = ("deactivate_selected",)

    def get_fields(self, request: HttpRequest, obj: ServiceClient | None = None) -> tuple[str, ...]:
        return ("name",) if obj is None else ("name", "client_id", "is_active", "created_at", "last_used_at")

    def has_delete_permission(self, request: HttpRequest, obj: ServiceClient | None = None) -> bool:
        return False  # deactivate instead: the security log keeps naming the client

    def save_model(
        self, request: HttpRequest, obj: ServiceClient, form: ModelForm[ServiceClient], change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        client, secret = service_client_create(name=obj.name, request=request, admin=_acting_admin(request))
        obj.pk, obj.client_id, obj.created_at = client.pk, client.client_id, client.created_at
        self.message_user(
            request,
            f"Client id: {client.client_id} Secret: {secret} (shown only now: copy it into the service's "
            "configuration)",
            messages.WARNING,
        )

    @admin.action(description="Deactivate selected service clients", permissions=["change"])
    def deactivate_selected(self, request: HttpRequest, queryset: QuerySet[ServiceClient]) -> None:
        ended = sum(
            service_client_deactivate(client_id=client_id, request=request, admin=_acting_admin(request))
            for client_id in queryset.values_list("client_id", flat=True)
        )
        self.message_user(request, f"{ended} service client(s) deactivated.", messages.SUCCESS)
