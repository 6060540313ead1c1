from django.urls import path
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView
from stock import views

urlpatterns = [
    path("api/token/", TokenObtainPairView.as_view()),
    path("api/token/refresh/", TokenRefreshView.as_view()),
    path("api/jwt/me/", views.JWTMeView.as_view()),
    path("api/session/me/", views.SessionMeView.as_view()),
    path("api/floor/", views.FloorView.as_view()),
    path("api/authenticate/", views.AuthenticateOnlyView.as_view()),
]
