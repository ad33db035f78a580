"""The API's OpenAPI 3.0 document, served at GET /vnffm/v1/openapi.json (no token needed);
the suite fuzzes the server against it (schemathesis)."""

from __future__ import annotations

from typing import Any

from hakit.resource_agents.health.constants import NOTIFICATION_TYPES, SEVERITIES
from hakit.resource_agents.health.sol003 import FM_PATH

_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}


def _problems(*codes: int) -> dict[str, Any]:
    words = {
        400: "a request that is not valid",
        401: "no valid bearer token",
        404: "no such subscription",
        405: "method not allowed",
        408: "the body did not arrive in time",
        413: "the body is too large",
        422: "the callback is refused (policy) or did not answer the test GET with 204",
    }
    return {str(code): {"description": words[code], "content": _PROBLEM} for code in codes}


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
