"""JSON with a size cap and a nesting cap. DRF's JSONParser reads the whole stream
whatever its size (Django's DATA_UPLOAD_MAX_MEMORY_SIZE only guards request.body
and forms), so a huge body would be read into memory before anyone said no; and
json.loads recurses once per level, so about a kilobyte of `[[[[` raises a
RecursionError (a 500) before it returns."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import IO, Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_BODY_BYTES = 16 * 1024
# Our bodies are flat objects; 32 levels leave room for any client's envelope.
MAX_DEPTH = 32

# The only characters that open or close a level, or a string in which brackets are text.
_STRUCTURE = re.compile(r'[\[\]{}"\\]')


def nesting_exceeds(text: str, limit: int = MAX_DEPTH) -> bool:
    """True if `text` opens more than `limit` arrays or objects inside one another.
    A linear scan that never recurses; text that is not JSON is left to json.loads."""
    depth, in_string, escaped_at = 0, False, -1
    for match in _STRUCTURE.finditer(text):
        char, at = match.group(), match.start()
        if in_string:
            if at == escaped_at:
                continue
            if char == "\\":
                escaped_at = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


class BoundedJSONParser(JSONParser):
    def parse(
        self, stream: IO[Any] | None, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        raw = stream.read(MAX_BODY_BYTES + 1) if stream is not None else b""
        if len(raw) > MAX_BODY_BYTES:
            raise ParseError(f"Request body larger than {MAX_BODY_BYTES} bytes.")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if nesting_exceeds(text):
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        if not isinstance(data, dict):
            raise ParseError("Expected a JSON object.")
        return data
