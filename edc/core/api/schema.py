"""OpenAPI post-processing: every operation documents the project's error responses."""

ERROR_SCHEMA = {
    "type": "object",
    "required": ["errors"],
    "properties": {
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "code", "message"],
                "properties": {
                    "field": {"type": "string", "nullable": True},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
        }
    },
}
ERRORS = {
    "400": "Invalid input (each error names its field)",
    "401": "Not authenticated",
    "403": "Not allowed for your role",
    "404": "Not found (or outside your sites)",
    "405": "Method not allowed (clinical records are never deleted)",
    "409": "Conflicts with the record's state (or its Idempotency-Key is still in progress)",
    "412": "If-Match names an older version of the record (read it again)",
    "413": "Request body too large",
    "422": "Idempotency key reused for another request",
    "429": "Account locked after repeated failed password attempts, or too many requests",
}


def add_error_responses(result, generator, request, public):
    """drf-spectacular hook: add ``Error`` and the 4xx responses to every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path in result.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            for code, text in ERRORS.items():
                responses.setdefault(code, {"description": text,
                                            "content": {"application/json": {"schema": ref}}})
    return result
