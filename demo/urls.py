from django.conf import settings
from django.urls import path

from . import views

app_name = "demo"

urlpatterns = [
    path("", views.index, name="index"),
    path("demo/api/state/", views.StateView.as_view(), name="state"),
    path("demo/api/thief/", views.ThiefView.as_view(), name="thief"),
]

# The page's static files, at the URLs {% static %} gives them when STATIC_URL is a
# path on this site (behind a CDN, collectstatic puts them there instead).
_static_url = settings.STATIC_URL
if _static_url.startswith("/") and not _static_url.startswith("//"):
    urlpatterns += [path(f"{_static_url[1:]}{name}", views.asset, {"path": name}) for name in views.ASSETS]
