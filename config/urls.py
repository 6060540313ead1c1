from django.contrib import admin
from django.urls import include, path

from accounts.forms import ThrottledAdminAuthenticationForm
from tokens.views import JwksView

from .docs import DocsView, SchemaView

# The admin logs in through the same throttled backend; this form shows its answer.
admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/auth/", include("accounts.urls")),
    path(".well-known/jwks.json", JwksView.as_view(), name="jwks"),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", DocsView.as_view(url_name="schema"), name="docs"),
    path("", include("demo.urls")),
]

handler400 = "config.exceptions.bad_request"
handler404 = "config.exceptions.not_found"
handler500 = "config.exceptions.server_error"
