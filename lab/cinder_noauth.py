"""A paste filter in front of cinder's own `noauth`, for labs and tests that run without
Keystone: it validates the *service* token the way keystonemiddleware's `authtoken`
would. NEVER use it in production: it authenticates nothing.

Why: cinder refuses to delete an attachment that is connected to a server unless the
request carries a service token whose user has a role in `[keystone_authtoken]
service_token_roles` (`service`; cinder Bug #2004555). Nova sends one when
`[service_user] send_service_user_token` is set, and needs it on every evacuation and
server delete with volumes (it deletes the old attachment). Cinder's `noauth` reads the
service roles from the `X-Service-Roles` header, as keystonemiddleware sets it, and no
one else sets it without Keystone.

So: identity headers of the service token sent by the client are dropped first (as
`authtoken` does); then `X-Service-Token: user:project` (nova's `[service_user]` with
`auth_type = admin_token`) becomes X-Service-User-Id, X-Service-Project-Id and
X-Service-Roles: service. Any other service token is refused (401). The user token
(X-Auth-Token) is left to cinder's `noauth`.

Standard library only: `openstack.write_cinder_api_paste` copies this file next to the
api-paste.ini it writes, for cinder-api (in the OpenStack venv) to import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
SERVICE_ROLES = "service"
#: what keystonemiddleware sets for a service token (and so must not come from the client)
SERVICE_IDENTITY_PREFIXES = (
    "HTTP_X_SERVICE_IDENTITY_STATUS",
    "HTTP_X_SERVICE_ROLES",
    "HTTP_X_SERVICE_USER_",
    "HTTP_X_SERVICE_PROJECT_",
    "HTTP_X_SERVICE_DOMAIN_",
    "HTTP_X_SERVICE_SYSTEM_SCOPE",
    "HTTP_X_SERVICE_CATALOG",
)


def identity(token: str) -> tuple[str, str] | None:
    """(user, project) from "user:project", or None when the token is not one."""
    user, sep, project = token.partition(":")
    if not sep or not user or not project or ":" in project:
        return None
    return user, project


def service_token(app: WSGIApp) -> WSGIApp:
    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        for key in [k for k in environ if k.startswith(SERVICE_IDENTITY_PREFIXES)]:
            del environ[key]
        token = environ.get("HTTP_X_SERVICE_TOKEN")
        if token is None:
            return app(environ, start_response)
        found = identity(str(token))
        if found is None:
            body = b'{"error": {"code": 401, "message": "service token must be user:project"}}'
            start_response(
                "401 Unauthorized",
                [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
            )
            return [body]
        user, project = found
        environ.update(
            {
                "HTTP_X_SERVICE_IDENTITY_STATUS": "Confirmed",
                "HTTP_X_SERVICE_USER_ID": user,
                "HTTP_X_SERVICE_USER_NAME": user,
                "HTTP_X_SERVICE_PROJECT_ID": project,
                "HTTP_X_SERVICE_PROJECT_NAME": project,
                "HTTP_X_SERVICE_ROLES": SERVICE_ROLES,
            }
        )
        return app(environ, start_response)

    return middleware


def filter_factory(global_conf: dict[str, str], **local_conf: str) -> Callable[[WSGIApp], WSGIApp]:
    """paste.filter_factory entry point."""
    return service_token
