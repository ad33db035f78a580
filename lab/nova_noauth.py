"""A paste filter that stands in for keystonemiddleware's `authtoken` in nova-api, for
labs and tests that run without Keystone. NEVER use it in production: it authenticates
nothing, anyone who can reach the API chooses who they are.

Nova 34 has no noauth2 any more; this restores its convention. The token
`X-Auth-Token: user:project` becomes X_USER_ID and X_PROJECT_ID; user `admin` gets the
roles admin,member,reader, any other user member,reader. Any other token is refused
(401). Identity headers sent by the client are dropped first.

Standard library only: `openstack.write_nova_api_paste` copies this file next to the
api-paste.ini it writes, for nova-api (in the OpenStack venv) to import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ADMIN_ROLES = "admin,member,reader"
USER_ROLES = "member,reader"
#: what keystonemiddleware sets (and so must not come from the client)
IDENTITY_PREFIXES = (
    "HTTP_X_IDENTITY_STATUS",
    "HTTP_X_SERVICE_",
    "HTTP_X_DOMAIN_",
    "HTTP_X_PROJECT_",
    "HTTP_X_TENANT",
    "HTTP_X_USER",
    "HTTP_X_ROLE",
    "HTTP_X_IS_ADMIN_PROJECT",
    "HTTP_X_SYSTEM_SCOPE",
    "HTTP_OPENSTACK_SYSTEM_SCOPE",
    "HTTP_X_APP_CRED",
    "HTTP_X_TRUST",
)


def identity(token: str) -> tuple[str, str] | None:
    """(user, project) from "user:project", or None when the token is not one."""
    user, sep, project = token.partition(":")
    if not sep or not user or not project or ":" in project:
        return None
    return user, project


def noauth(app: WSGIApp) -> WSGIApp:
    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        for key in [k for k in environ if k.startswith(IDENTITY_PREFIXES)]:
            del environ[key]
        found = identity(str(environ.get("HTTP_X_AUTH_TOKEN", "")))
        if found is None:
            body = b'{"error": {"code": 401, "message": "token must be user:project"}}'
            start_response(
                "401 Unauthorized",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        user, project = found
        roles = ADMIN_ROLES if user == "admin" else USER_ROLES
        environ.update(
            {
                "HTTP_X_IDENTITY_STATUS": "Confirmed",
                "HTTP_X_USER_ID": user,
                "HTTP_X_USER_NAME": user,
                "HTTP_X_PROJECT_ID": project,
                "HTTP_X_PROJECT_NAME": project,
                "HTTP_X_ROLES": roles,
            }
        )
        return app(environ, start_response)

    return middleware


def filter_factory(global_conf: dict[str, str], **local_conf: str) -> Callable[[WSGIApp], WSGIApp]:
    """paste.filter_factory entry point."""
    return noauth
