"""JSON with a size cap. DRF's JSONParser reads the whole stream whatever its size
(Django's DATA_UPLOAD_MAX_MEMORY_SIZE only guards request.body and forms), so a
huge body would be read into memory before anyone said no."""

from __future__ import annotations

import json

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_BODY_BYTES = 16 * 1024


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read(MAX_BODY_BYTES + 1) if stream is not None else b""
        if len(raw) > MAX_BODY_BYTES:
            raise ParseError(f"Request body larger than {MAX_BODY_BYTES} bytes.")
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if not isinstance(data, dict):
            raise ParseError("Expected a JSON object.")
        return data
