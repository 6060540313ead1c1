"""The service's URLs plus the no-auth floor at /api/floor/ (as in bench/baseline),
for bench/me_cost.py: the floor then runs behind our own middleware stack."""

from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class FloorView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    body = {"id": 1, "username": "floor", "email": "floor@example.com"}

    def get(self, request):
        return Response(self.body)


urlpatterns = [path("api/floor/", FloorView.as_view()), path("", include("config.urls"))]

handler400 = "config.exceptions.bad_request"
handler404 = "config.exceptions.not_found"
handler500 = "config.exceptions.server_error"
