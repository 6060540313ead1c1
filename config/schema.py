"""OpenAPI post-processing: the statuses config.middleware can answer on any API
operation that takes a body, declared once instead of on every view."""

from __future__ import annotations

from typing import Any

from drf_spectacular.generators import SchemaGenerator
from rest_framework.request import Request

BODY_METHODS = {"post", "put", "patch", "delete"}
BODY_ERRORS = {
    "413": "Request body over the size limit (`request_too_large`)",
    "415": "Request body that is not JSON (`unsupported_media_type`)",
}


def add_body_errors(
    result: dict[str, Any], generator: SchemaGenerator, request: Request | None, public: bool
) -> dict[str, Any]:
    error = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in BODY_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status, description in BODY_ERRORS.items():
                responses.setdefault(
                    status, {"description": description, "content": {"application/json": {"schema": error}}}
                )
    return result
