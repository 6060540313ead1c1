"""Everything from the environment the test sets; nothing shared with Duotoken's settings."""

import os

SECRET_KEY = "downstream-test-secret-key-0123456789abcdefghijklmnop"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "downstream.urls"
INSTALLED_APPS = ["rest_framework"]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
DATABASES = {}
USE_TZ = True
CSRF_TRUSTED_ORIGINS = [os.environ.get("DOWNSTREAM_ORIGIN", "http://127.0.0.1")]

DUOTOKEN_VERIFY = {
    "URL": os.environ["DUOTOKEN_URL"],
    "ISSUER": os.environ["DUOTOKEN_ISSUER"],
    "AUDIENCE": os.environ["DUOTOKEN_AUDIENCE"],
    "COOKIE_NAME": os.environ["DUOTOKEN_COOKIE_NAME"],
    "CLIENT_ID": os.environ.get("DUOTOKEN_CLIENT_ID", ""),
    "CLIENT_SECRET": os.environ.get("DUOTOKEN_CLIENT_SECRET", ""),
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["duotoken_verify.drf.DuotokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "duotoken_verify.drf.exception_handler",
    # No django.contrib.auth here: an anonymous request has no user object at all.
    "UNAUTHENTICATED_USER": None,
}
