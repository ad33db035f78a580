"""The API's OpenAPI 3.0 document, served at GET /vnffm/v1/openapi.json (no token needed);
the suite fuzzes the server against it (schemathesis)."""

from __future__ import annotations

from typing import Any

from hakit.resource_agents.health.constants import NOTIFICATION_TYPES, SEVERITIES
from hakit.resource_agents.health.sol003 import FM_PATH
from hakit.resource_agents.health.vnf_reports import (
    ERROR_CLASSES,
    MAX_BATCH,
    MAX_DETAILS,
    MAX_ID,
    RESOLUTIONS,
    RESOURCE_TYPES,
)

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}


_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _problems(*codes: int, missing: str = "no such subscription") -> dict[str, Any]:
    words = {
        400: "a request that is not valid",
        401: "no valid bearer token",
        404: missing,
        405: "method not allowed",
        408: "the body did not arrive in time",
        413: "the body is too large",
        422: "the callback is refused (policy) or did not answer the test GET with 204",
        429: "too many reports from this client (a token bucket): retry after Retry-After",
        503: "the report store is busy or failing: retry with the same idempotencyKey",
    }
    return {
        str(code): {
            "description": words[code],
            "content": _PROBLEM,
            **({"headers": _RETRY_AFTER} if code in (429, 503) else {}),
        }
        for code in codes
    }


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def document() -> dict[str, Any]:
    """The OpenAPI document (a new dict each time)."""
    strings = {"type": "array", "items": {"type": "string", "minLength": 1}}
    subscription_id = {
        "name": "subscriptionId",
        "in": "path",
        "required": True,
        "schema": {"type": "string"},
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "hakit health: SOL 003-shaped VNF fault management subscriptions",
            "version": "1.0.0",
        },
        "security": [{"bearer": []}],
        "paths": {
            f"{FM_PATH}/subscriptions": {
                "get": {
                    "summary": "every subscription",
                    "responses": {
                        "200": {
                            "description": "the subscriptions",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/FmSubscription"},
                                    }
                                }
                            },
                        },
                        **_problems(400, 401, 413),
                    },
                },
                "post": {
                    "summary": "subscribe (the callback is tested with a signed GET first)",
                    "requestBody": {"required": True, "content": _json("FmSubscriptionRequest")},
                    "responses": {
                        "201": {"description": "subscribed", "content": _json("FmSubscription")},
                        "303": {"description": "the same subscription exists (Location)"},
                        **_problems(400, 401, 413, 422),
                    },
                },
            },
            f"{FM_PATH}/subscriptions/{{subscriptionId}}": {
                "parameters": [subscription_id],
                "get": {
                    "summary": "one subscription",
                    "responses": {
                        "200": {
                            "description": "the subscription",
                            "content": _json("FmSubscription"),
                        },
                        **_problems(400, 401, 404, 413),
                    },
                },
                "delete": {
                    "summary": "unsubscribe",
                    "responses": {
                        "204": {"description": "deleted"},
                        **_problems(400, 401, 404, 413),
                    },
                },
            },
            **_report_paths(),
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Filter": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "notificationTypes": {
                            "type": "array",
                            "items": {"type": "string", "enum": list(NOTIFICATION_TYPES)},
                        },
                        "perceivedSeverities": {
                            "type": "array",
                            "items": {"type": "string", "enum": list(SEVERITIES)},
                        },
                        "hosts": strings,
                    },
                },
                "FmSubscriptionRequest": {
                    "type": "object",
                    "required": ["callbackUri"],
                    "additionalProperties": False,
                    "properties": {
                        "callbackUri": {"type": "string", "format": "uri", "minLength": 1},
                        "filter": {"$ref": "#/components/schemas/Filter"},
                        "authentication": {
                            "type": "object",
                            "required": ["authType"],
                            "properties": {
                                "authType": {
                                    "type": "array",
                                    "items": {"type": "string", "enum": ["HMAC_SHA256"]},
                                },
                                "paramsHmac": {
                                    "type": "object",
                                    "properties": {"secret": {"type": "string", "minLength": 16}},
                                },
                            },
                        },
                    },
                },
                "FmSubscription": {
                    "type": "object",
                    "required": ["id", "callbackUri", "filter", "_links"],
                    "properties": {
                        "id": {"type": "string"},
                        "callbackUri": {"type": "string"},
                        "filter": {"$ref": "#/components/schemas/Filter"},
                        "authentication": {"type": "object"},
                        "_links": {"type": "object"},
                    },
                },
                **_report_schemas(),
                "ProblemDetails": {
                    "type": "object",
                    "required": ["status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                    },
                },
            },
        },
    }


def _report_paths() -> dict[str, Any]:
    """The error-report and correlation routes (reports_api.py)."""
    problems = _problems(400, 401, 404, 413, 429, 503, missing="no such report, or none here")
    located = {"Location": {"required": True, "schema": {"type": "string"}}}
    report_id = {"name": "reportId", "in": "path", "required": True, "schema": {"type": "string"}}
    correlation_id = {**report_id, "name": "correlationId"}
    key = {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}
    paging = [
        {"name": "after", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
        },
    ]
    return {
        f"{FM_PATH}/error-reports": {
            "get": {
                "summary": "reports after sequence number `after`, oldest first",
                "parameters": paging,
                "responses": {"200": _ok("the reports", _array("ErrorReport")), **problems},
            },
            "post": {
                "summary": "report an error (or a batch: all stored, or none); durable once"
                " answered",
                "parameters": [key],
                "requestBody": {
                    "required": True,
                    "content": _any("ErrorReportRequest", "ErrorReportRequests"),
                },
                "responses": {
                    "201": {
                        "description": "stored",
                        "headers": located,
                        "content": _json("ErrorReport"),
                    },
                    "200": _ok(
                        "the report stored first under this idempotency key, or the batch",
                        _any("ErrorReport", "ErrorReportBatch"),
                    ),
                    **problems,
                },
            },
        },
        f"{FM_PATH}/error-reports/{{reportId}}": {
            "parameters": [report_id],
            "get": {
                "summary": "one report",
                "responses": {"200": _ok("the report", _json("ErrorReport")), **problems},
            },
        },
        f"{FM_PATH}/correlations": {
            "get": {
                "summary": "what the reports were traced to",
                "responses": {"200": _ok("the correlations", _array("Correlation")), **problems},
            },
        },
        f"{FM_PATH}/correlations/{{correlationId}}": {
            "parameters": [correlation_id],
            "get": {
                "summary": "one correlation",
                "responses": {"200": _ok("the correlation", _json("Correlation")), **problems},
            },
        },
    }


def _ok(description: str, content: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": content}


def _array(schema: str) -> dict[str, Any]:
    items = {"$ref": f"#/components/schemas/{schema}"}
    return {"application/json": {"schema": {"type": "array", "items": items}}}


def _any(*schemas: str) -> dict[str, Any]:
    refs = [{"$ref": f"#/components/schemas/{schema}"} for schema in schemas]
    return {"application/json": {"schema": {"anyOf": refs}}}


def _report_schemas() -> dict[str, Any]:
    identifier = {"type": "string", "minLength": 1, "maxLength": MAX_ID}
    resource = {
        "type": "object",
        "required": ["type", "id"],
        "additionalProperties": False,
        "properties": {"type": {"type": "string", "enum": list(RESOURCE_TYPES)}, "id": identifier},
    }
    fields = {
        "vnfInstanceId": identifier,
        "resource": resource,
        "errorClass": {"type": "string", "enum": list(ERROR_CLASSES)},
        "perceivedSeverity": {"type": "string", "enum": list(SEVERITIES)},
        "observedTime": {"type": "string", "format": "date-time"},
        "details": {"type": "string", "maxLength": MAX_DETAILS},
        "idempotencyKey": identifier,
    }
    text = {"type": "string"}
    resolution = {
        "type": "object",
        "required": ["state"],
        "properties": {
            "state": {"type": "string", "enum": list(RESOLUTIONS)},
            "host": text,
            "physnet": text,
            "backend": text,
            "reason": text,
            "resolvedTime": {"type": "string", "format": "date-time"},
        },
    }
    stored = {**fields, "id": text, "seq": {"type": "integer"}, "receivedTime": text}
    return {
        "ErrorReportRequest": {
            "type": "object",
            "description": "idempotencyKey here or in the Idempotency-Key header; printable"
            " identifiers; observedTime at most 5 minutes ahead",
            "required": [name for name in fields if name not in ("details", "idempotencyKey")],
            "additionalProperties": False,
            "properties": fields,
        },
        "ErrorReportRequests": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_BATCH,
            "items": {"$ref": "#/components/schemas/ErrorReportRequest"},
        },
        "ErrorReport": {
            "type": "object",
            "required": [*stored, "resolution"],
            "properties": {**stored, "resolution": resolution},
        },
        "ErrorReportBatch": {
            "type": "object",
            "required": ["reports", "created"],
            "properties": {
                "reports": {"type": "array", "items": {"$ref": "#/components/schemas/ErrorReport"}},
                "created": {"type": "integer", "minimum": 0},
            },
        },
        "Correlation": {"type": "object"},
    }
