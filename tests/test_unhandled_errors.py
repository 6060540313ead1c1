"""An exception nothing handles is logged with its traceback (with DEBUG off, as in
production) and answered with the JSON 500 shape under /api/."""

from __future__ import annotations

import io
import logging

import pytest
from django.http import HttpResponse
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView


class Boom(Exception):
    pass


def plain_view(request):
    raise Boom("plain view exploded")


class ApiView(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    def get(self, request):
        raise Boom("api view exploded")


def fine_view(request):
    return HttpResponse(status=404)


urlpatterns = [
    path("api/boom/plain/", plain_view),
    path("api/boom/drf/", ApiView.as_view()),
    path("api/missing/", fine_view),
]
handler500 = "config.exceptions.server_error"


class _Recorder(logging.Filter):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if not any(seen is record for seen in self.records):  # a handler may filter twice
            self.records.append(record)
        return True


@pytest.fixture
def emitted():
    """What the configured handlers actually write for `django.request`: each stream
    handler reachable from it is pointed at a buffer, and a last filter records what
    passed every filter before it (Django's own handler drops all without DEBUG)."""
    handlers, logger = [], logging.getLogger("django.request")
    while logger is not None:
        # Named handlers are those of the LOGGING setting (pytest's own have no name).
        handlers += [h for h in logger.handlers if isinstance(h, logging.StreamHandler) and h.name]
        logger = logger.parent if logger.propagate else None
    buffer, recorder = io.StringIO(), _Recorder()
    streams = [handler.setStream(buffer) for handler in handlers]
    for handler in handlers:
        handler.addFilter(recorder)
    yield buffer, recorder.records
    for handler, stream in zip(handlers, streams, strict=True):
        handler.removeFilter(recorder)
        handler.setStream(stream)


@pytest.mark.urls(__name__)
@pytest.mark.parametrize(("url", "message"), [("/api/boom/plain/", "plain view"), ("/api/boom/drf/", "api view")])
def test_unhandled_exception_is_logged_with_traceback_and_answered_json_500(client, settings, emitted, url, message):
    assert settings.DEBUG is False
    buffer, records = emitted
    client.raise_request_exception = False

    response = client.get(url)

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal server error.", "code": "server_error"}
    errors = [r for r in records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None and errors[0].exc_info[0] is Boom
    assert "Traceback (most recent call last)" in buffer.getvalue()
    assert f"Boom: {message} exploded" in buffer.getvalue()


@pytest.mark.urls(__name__)
def test_client_error_is_not_logged_as_an_error(client, emitted):
    buffer, records = emitted

    assert client.get("/api/missing/").status_code == 404

    assert [r for r in records if r.levelno >= logging.ERROR] == []
    assert buffer.getvalue() == ""
