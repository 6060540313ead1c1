from django.urls import path

from tokens.gateway import VerifyView
from tokens.views import DbscRefreshView, DbscRegisterView, RefreshView

from . import introspection, views
from .selfservice import views as selfservice

app_name = "auth"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("refresh/", RefreshView.as_view(), name="refresh"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("logout-all/", views.LogoutAllView.as_view(), name="logout-all"),
    path("me/", views.MeView.as_view(), name="me"),
    path("csrf/", views.CsrfView.as_view(), name="csrf"),
    # Device Bound Session Credentials (tokens.binding), under the refresh cookie's path.
    path("dbsc/register/", DbscRegisterView.as_view(), name="dbsc-register"),
    path("dbsc/refresh/", DbscRefreshView.as_view(), name="dbsc-refresh"),
]

urlpatterns += [
    path("sessions/", selfservice.SessionListView.as_view(), name="sessions"),
    path("sessions/<str:session_id>/", selfservice.SessionDetailView.as_view(), name="session-detail"),
    path("password/change/", selfservice.PasswordChangeView.as_view(), name="password-change"),
]

urlpatterns += [
    path("verify/", VerifyView.as_view(), name="verify"),
    path("introspect/", introspection.IntrospectView.as_view(), name="introspect"),
]
