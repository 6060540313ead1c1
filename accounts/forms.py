"""The admin's login form, with our throttle's answer shown instead of a 500."""

from __future__ import annotations

from typing import Any

from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from tokens.errors import AuthError


class ThrottledAdminAuthenticationForm(AdminAuthenticationForm):
    def clean(self) -> dict[str, Any]:
        try:
            return super().clean()
        except AuthError as exc:
            if exc.code == "throttled":
                seconds = max(1, int((exc.retry_after or 1) + 0.999))
                message = f"Too many attempts; try again in {seconds} seconds."
            else:
                message = exc.detail
            raise ValidationError(message, code=exc.code) from None
