"""OpenStack credentials from clouds.yaml, as openstacksdk and the ClusterLabs openstack-*
agents read them, and calls to OpenStack APIs through keystoneauth1.

    entry = read_entry("/etc/openstack/clouds.yaml", "hakit")   # offline: validate-all
    cloud = CloudSession("/etc/openstack/clouds.yaml", "hakit")
    cloud.request("compute", "GET", "/os-services", headers={...})

An entry authenticates with a password (`password`, `v3password`) or an application
credential (`v3applicationcredential`); `secure.yaml` beside the file is merged over it,
as openstacksdk does. keystoneauth1 renews the token before it expires and once on a
401; the session is rebuilt when either file changes, so a fixed credential is used
without a restart. Errors are `CloudError`s whose text names the cloud, the user or
credential id and what failed, never a secret. keystoneauth1 and PyYAML are imported on
first use only: a monitor that needs no OpenStack call never pays for them.
"""

from __future__ import annotations

import os

from hakit.ocf._typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from hakit.ocf import Context, PathParam, StringParam

DEFAULT_CLOUDS_YAML = "/etc/openstack/clouds.yaml"
PASSWORD = ("password", "v3password")
APPLICATION_CREDENTIAL = ("v3applicationcredential", "applicationcredential")
#: auth keys that hold secrets (never shown, masked wherever an error could carry them)
SECRET_KEYS = ("password", "application_credential_secret", "token")
INTERFACES = ("public", "internal", "admin")


class CloudError(Exception):
    """An OpenStack call failed. `kind`: config (the entry or catalog), auth (Keystone
    refused the credentials, or a service refused a renewed token), unreachable, api."""

    def __init__(self, reason: str, *, kind: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.status = status


class CloudEntry:
    """One cloud of clouds.yaml, complete enough to authenticate. A plain class: agents
    import this module at every monitor depth, and dataclasses would import re, enum and
    inspect there; its repr leaves out `auth` and `secrets` (they hold the secrets)."""

    __slots__ = (
        "auth",
        "auth_type",
        "interface",
        "name",
        "path",
        "region_name",
        "secrets",
        "verify",
    )

    def __init__(
        self,
        name: str,
        path: str,
        auth_type: str,
        auth: Mapping[str, str],
        region_name: str | None = None,
        interface: str = "public",
        verify: bool | str = True,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.path = path
        self.auth_type = auth_type
        self.auth = auth
        self.region_name = region_name
        self.interface = interface
        self.verify = verify
        self.secrets = secrets

    def __repr__(self) -> str:
        return (
            f"CloudEntry(name={self.name!r}, path={self.path!r}, auth_type={self.auth_type!r}, "
            f"region_name={self.region_name!r}, interface={self.interface!r}, "
            f"verify={self.verify!r})"
        )

    @property
    def auth_url(self) -> str:
        """auth_url with the identity v3 path (keystoneauth's v3 plugins need it)."""
        url = self.auth["auth_url"].rstrip("/")
        return url if url.endswith("/v3") else f"{url}/v3"

    def who(self) -> str:
        """The identity, for messages: user and project, or the credential's id/name."""
        auth = self.auth
        user = auth.get("username") or auth.get("user_id") or "?"
        if self.auth_type in APPLICATION_CREDENTIAL:
            ref = auth.get("application_credential_id") or (
                f"{auth.get('application_credential_name')} of user {user}"
            )
            return f"application credential {ref}"
        project = auth.get("project_name") or auth.get("project_id") or "?"
        return f"user {user}, project {project}"

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "******")
        return text


def read_entry(path: str, name: str) -> CloudEntry:
    """The cloud `name` of `path` (and of its secure.yaml), checked without contacting
    Keystone; CloudError (kind config) listing every missing or bad key otherwise."""
    if not name:
        raise CloudError("no cloud name given", kind="config")
    clouds = _clouds(path)
    secure = os.path.join(os.path.dirname(path) or ".", "secure.yaml")
    entry = clouds.get(name)
    if os.path.exists(secure):
        entry = _merged(entry or {}, _clouds(secure).get(name) or {})
    if not isinstance(entry, dict) or not entry:
        known = ", ".join(sorted(map(str, clouds))) or "none"
        raise CloudError(f"{path} has no cloud {name!r} (clouds: {known})", kind="config")
    auth = entry.get("auth")
    if not isinstance(auth, dict):
        raise CloudError(f"{path}: cloud {name!r} has no auth mapping", kind="config")
    auth = {str(k): str(v) for k, v in auth.items() if v is not None and v != ""}
    auth_type = str(entry.get("auth_type") or "password")
    problems = entry_problems(auth_type, auth)
    interface = str(entry.get("interface") or "public").removesuffix("URL")
    if interface not in INTERFACES:
        problems.append(f"interface {interface!r} is not one of {', '.join(INTERFACES)}")
    if problems:
        raise CloudError(f"{path}: cloud {name!r}: {'; '.join(problems)}", kind="config")
    verify: bool | str = entry.get("cacert") or entry.get("verify", True)
    if not isinstance(verify, bool | str):
        verify = bool(verify)
    region = entry.get("region_name")
    return CloudEntry(
        name,
        path,
        auth_type,
        auth,
        str(region) if region else None,
        interface,
        verify,
        tuple(auth[k] for k in SECRET_KEYS if auth.get(k)),
    )


def entry_problems(auth_type: str, auth: Mapping[str, str]) -> list[str]:
    """Every key an auth type needs and lacks (empty: complete)."""
    problems = []
    url = auth.get("auth_url", "")
    if not url.startswith(("http://", "https://")):
        problems.append("auth.auth_url must be the Keystone URL (http or https)")
    user = auth.get("username") or auth.get("user_id")
    by_name = bool(auth.get("username")) and not auth.get("user_id")
    if by_name and not (auth.get("user_domain_name") or auth.get("user_domain_id")):
        problems.append(
            "auth.user_domain_name (or user_domain_id) is missing (a user given by name needs it)"
        )
    if auth_type in PASSWORD:
        if not user:
            problems.append("auth.username (or user_id) is missing")
        if not auth.get("password"):
            problems.append("auth.password is missing")
        if not (auth.get("project_name") or auth.get("project_id")):
            problems.append("auth.project_name (or project_id) is missing (no catalog without one)")
        elif auth.get("project_name") and not (
            auth.get("project_domain_name") or auth.get("project_domain_id")
        ):
            problems.append("auth.project_domain_name (or project_domain_id) is missing")
    elif auth_type in APPLICATION_CREDENTIAL:
        if not auth.get("application_credential_secret"):
            problems.append("auth.application_credential_secret is missing")
        if not auth.get("application_credential_id") and not (
            auth.get("application_credential_name") and user
        ):
            problems.append(
                "auth.application_credential_id (or application_credential_name and "
                "username) is missing"
            )
    else:
        known = ", ".join((*PASSWORD, *APPLICATION_CREDENTIAL))
        problems.append(f"auth_type {auth_type!r} is not supported (use one of {known})")
    return problems


def _clouds(path: str) -> dict[Any, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise CloudError(f"{path}: {error.strerror or error}", kind="config") from None
    import yaml

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "not YAML"
        raise CloudError(f"{path}{where}: {problem}", kind="config") from None
    clouds = document.get("clouds") if isinstance(document, dict) else None
    if not isinstance(clouds, dict):
        raise CloudError(f"{path} has no `clouds:` mapping", kind="config")
    return clouds


def _merged(base: dict[Any, Any], extra: dict[Any, Any]) -> dict[Any, Any]:
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        out[key] = (
            _merged(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
        )
    return out


def _plugin(entry: CloudEntry) -> Any:
    from keystoneauth1.identity import v3

    user = ["username", "user_id", "user_domain_name", "user_domain_id"]
    project = ["project_name", "project_id", "project_domain_name", "project_domain_id"]
    if entry.auth_type in APPLICATION_CREDENTIAL:
        names = ["application_credential_id", "application_credential_name", *user]
        plugin: Any = v3.ApplicationCredential
        names.append("application_credential_secret")
    else:
        names, plugin = [*user, *project, "password"], v3.Password
    options: dict[str, Any] = {k: entry.auth[k] for k in names if entry.auth.get(k)}
    return plugin(auth_url=entry.auth_url, **options)


class CloudSession:
    """Calls to one cloud's APIs with a keystoneauth1 session, rebuilt when clouds.yaml
    (or secure.yaml beside it) changes."""

    def __init__(self, path: str, name: str, *, timeout: float = 10.0) -> None:
        self.path = path
        self.name = name
        self.timeout = timeout
        self._stamp: tuple[object, ...] | None = None
        self._entry: CloudEntry | None = None
        self._session: Any = None

    def entry(self) -> CloudEntry:
        """The current entry (re-read when a file changed; CloudError when it is bad)."""
        stamp = self._files_stamp()
        if self._entry is None or stamp != self._stamp:
            self._entry, self._session, self._stamp = read_entry(self.path, self.name), None, stamp
        return self._entry

    def _files_stamp(self) -> tuple[object, ...]:
        stamps: list[object] = []
        for path in (self.path, os.path.join(os.path.dirname(self.path) or ".", "secure.yaml")):
            try:
                info = os.stat(path)
            except OSError:
                stamps.append(None)
            else:
                stamps.append((info.st_ino, info.st_mtime_ns, info.st_size))
        return tuple(stamps)

    def session(self) -> Any:
        entry = self.entry()
        if self._session is None:
            from keystoneauth1 import session

            self._session = session.Session(
                auth=_plugin(entry), verify=entry.verify, timeout=self.timeout
            )
        return self._session

    def check_auth(self) -> None:
        """Get a token (contacts Keystone); CloudError with the reason otherwise."""
        self.token()

    def token(self) -> str:
        """The current token (a new one when it is about to expire); CloudError otherwise."""
        entry = self.entry()
        return str(self._guarded(entry, lambda: self.session().get_token()))

    def request(
        self,
        service_type: str,
        method: str,
        path: str,
        *,
        body: object = None,
        headers: Mapping[str, str] | None = None,
        endpoint: str | None = None,
    ) -> Any:
        """One JSON call to `service_type`'s endpoint (the catalog's, or `endpoint`); the
        decoded answer, or CloudError."""
        entry = self.entry()
        options: dict[str, Any] = {
            "headers": {"Accept": "application/json", **(headers or {})},
            "raise_exc": False,
        }
        if body is not None:
            options["json"] = body
        if endpoint:
            options["endpoint_override"] = endpoint
        else:
            options["endpoint_filter"] = {
                "service_type": service_type,
                "interface": entry.interface,
                **({"region_name": entry.region_name} if entry.region_name else {}),
            }
        response = self._guarded(entry, lambda: self.session().request(path, method, **options))
        text = response.text or ""
        if not 200 <= response.status_code < 300:
            kind = "auth" if response.status_code == 401 else "api"
            summary = " ".join(text.split())[:200]
            raise CloudError(
                entry.mask(f"{method} {path}: HTTP {response.status_code} {summary}"),
                kind=kind,
                status=response.status_code,
            )
        try:
            return response.json() if text.strip() else None
        except ValueError:
            raise CloudError(f"{method} {path}: not JSON", kind="api") from None

    def _guarded(self, entry: CloudEntry, call: Any) -> Any:
        from keystoneauth1 import exceptions

        try:
            return call()
        except exceptions.HttpError as error:  # raised by the auth plugin only (raise_exc)
            self._session = None if error.http_status == 401 else self._session
            raise CloudError(
                entry.mask(
                    f"Keystone at {entry.auth_url} refused cloud {entry.name!r} "
                    f"({entry.who()}): HTTP {error.http_status} {error.message}"
                ),
                kind="auth",
                status=error.http_status,
            ) from None
        except (exceptions.EndpointNotFound, exceptions.EmptyCatalog) as error:
            raise CloudError(entry.mask(f"cloud {entry.name!r}: {error}"), kind="config") from None
        except exceptions.ConnectionError as error:
            raise CloudError(
                entry.mask(f"cloud {entry.name!r}: unreachable: {error}"), kind="unreachable"
            ) from None
        except exceptions.ClientException as error:
            raise CloudError(entry.mask(f"cloud {entry.name!r}: {error}"), kind="config") from None


# --- for agents: the two parameters, checked offline in validate-all ----------------------


def agent_parameters(purpose: str) -> tuple[StringParam, PathParam]:
    """`cloud` and `clouds_yaml` of an agent whose OpenStack calls do `purpose`."""
    from hakit.ocf import PathParam, StringParam

    cloud = StringParam(
        "cloud",
        "clouds.yaml cloud for OpenStack calls",
        f"The entry of clouds_yaml (password or application credential) used to {purpose}. "
        "validate-all checks it is complete without contacting Keystone. Empty: no calls.",
        default="",
    )
    clouds_yaml = PathParam(
        "clouds_yaml",
        "clouds.yaml with the cloud's credentials",
        "Read by the agent (keep it 0600 or 0640 root:haclient); its content never "
        "appears in logs, metadata, exit reasons or on a command line. A secure.yaml "
        "beside it is merged over it.",
        default=DEFAULT_CLOUDS_YAML,
    )
    return cloud, clouds_yaml


def validate_entry(ctx: Context, cloud: StringParam, clouds_yaml: PathParam) -> CloudEntry | None:
    """The agent's cloud entry (its secrets masked in every later message), None without
    a cloud; OCFError 5 when the file is missing here, 6 when the entry is not usable."""
    from hakit.ocf import OCFError, OCFExit

    name = ctx.params.get(cloud)
    if not name:
        return None
    path = ctx.params[clouds_yaml]
    if not os.path.exists(path):
        raise OCFError(OCFExit.ERR_INSTALLED, f"{clouds_yaml.name}: {path} does not exist here")
    try:
        entry = read_entry(path, name)
    except CloudError as error:
        raise OCFError(OCFExit.ERR_CONFIGURED, f"{cloud.name}: {error.reason}") from None
    ctx.log.add_secrets(list(entry.secrets))
    return entry


def auth_problem(ctx: Context, cloud: StringParam, clouds_yaml: PathParam) -> str | None:
    """For the monitor depth that contacts Keystone: why the agent's cloud gets no token
    (a bad entry, refused credentials, Keystone unreachable), None when it gets one or
    the agent has no cloud."""
    name = ctx.params.get(cloud)
    if not name:
        return None
    session = CloudSession(ctx.params[clouds_yaml], name, timeout=min(10.0, ctx.remaining(2)))
    try:
        session.check_auth()
    except CloudError as error:
        return f"OpenStack calls would fail: {error.reason}"
    return None
