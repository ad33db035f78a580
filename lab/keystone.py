"""Real Keystone (keystone 30 from the pinned venv) for the mini cloud and the OpenStack
tests: keystone.conf on a SQL database, fernet and credential keys, bootstrap, the
service users and the catalog, the `[keystone_authtoken]` and service-credential
sections of nova, cinder and placement, and clouds.yaml for hakit.

    conf = write_config(directory, database_url)           # keys live beside it
    setup(venv, conf, identity)                             # db_sync, keys, bootstrap
    argv, env = command(venv, conf, port=5000)              # serve it (wsgi_command)
    ensure_catalog(identity, {"compute": url, ...})         # users, roles, endpoints

Every node of a lab serves it from one configuration directory, so they share keys and
database: a token from one node's Keystone is valid on the others.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hakit.lab import openstack
from hakit.lab.errors import LabError

REGION = "RegionOne"
DOMAIN = "Default"
SERVICE_PROJECT = "service"
#: the users the services authenticate as (admin + service in project service, as devstack)
SERVICE_USERS = ("nova", "cinder", "placement")
#: hakit's own user: admin in project service (force-down, evacuate and workers/cleanup
#: are admin-only in nova's and cinder's default policies)
HAKIT_USER = "hakit"
#: a member of project demo, admin nowhere (tests of refused calls)
DEMO_USER = "demo"
CATALOG_NAMES = {"compute": "nova", "volumev3": "cinderv3", "placement": "placement"}


@dataclass(frozen=True)
class Identity:
    """Keystone as the services reach it, and the passwords of its users."""

    url: str  # e.g. http://127.0.0.1:5000/v3
    passwords: Mapping[str, str]
    region = REGION

    @property
    def admin_password(self) -> str:
        return self.passwords["admin"]

    def cloud(self, user: str = HAKIT_USER, project: str = SERVICE_PROJECT) -> dict[str, Any]:
        """A clouds.yaml entry for `user` (password auth, project-scoped)."""
        return {
            "auth_type": "password",
            "auth": {
                "auth_url": self.url,
                "username": user,
                "password": self.passwords[user],
                "project_name": project,
                "user_domain_name": DOMAIN,
                "project_domain_name": DOMAIN,
            },
            "region_name": REGION,
            "interface": "public",
        }

    def credentials(self, user: str) -> dict[str, object]:
        """keystoneauth options of `user` in project service, for an oslo.config section
        ([placement], [service_user], [nova], [cinder]...)."""
        return {
            "auth_type": "password",
            "auth_url": self.url,
            "username": user,
            "password": self.passwords[user],
            "project_name": SERVICE_PROJECT,
            "user_domain_name": DOMAIN,
            "project_domain_name": DOMAIN,
            "region_name": REGION,
        }

    def authtoken(self, user: str) -> dict[str, object]:
        """[keystone_authtoken] of a service API running as `user`."""
        return {
            **self.credentials(user),
            "www_authenticate_uri": self.url,
            "service_token_roles_required": True,
        }


def passwords(path: Path) -> dict[str, str]:
    """The users' passwords, made once and kept in `path` (0600) so a repaired lab keeps
    its configuration."""
    users = ("admin", *SERVICE_USERS, HAKIT_USER, DEMO_USER)
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if not isinstance(known, dict) or any(not isinstance(known.get(u), str) for u in users):
        known = {user: secrets.token_urlsafe(18) for user in users}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(known))
    return {user: known[user] for user in users}


def write_config(directory: Path, database_url: str, *, expiration: int = 3600) -> Path:
    """`directory`/keystone.conf on `database_url`, fernet tokens valid `expiration`
    seconds, keys in `directory`/fernet-keys and credential-keys."""
    keys = directory / "fernet-keys"
    return openstack.write_config(
        directory / "keystone.conf",
        {
            "DEFAULT": {"debug": False, "use_stderr": True},
            "database": {"connection": database_url},
            "token": {"provider": "fernet", "expiration": expiration},
            "fernet_tokens": {"key_repository": keys},
            "fernet_receipts": {"key_repository": keys},  # fernet_setup makes both
            "credential": {"key_repository": directory / "credential-keys"},
            # bcrypt's minimum: every password check costs 0.3 s at keystone's default 12
            "identity": {"password_hash_rounds": 4},
        },
    )


def setup(venv: Path, conf: Path, identity: Identity, *, prefix: tuple[str, ...] = ()) -> None:
    """db_sync, fernet and credential keys (once), bootstrap (admin, the identity
    endpoint, region): idempotent. The admin password goes through the environment,
    never a command line."""
    directory = conf.parent
    openstack.manage(venv, "keystone-manage", [conf], "db_sync", prefix=prefix)
    for keys, verb in (("fernet-keys", "fernet_setup"), ("credential-keys", "credential_setup")):
        if not any((directory / keys).glob("[0-9]*")):
            owner = ("--keystone-user", "root", "--keystone-group", "root")
            openstack.manage(venv, "keystone-manage", [conf], verb, *owner, prefix=prefix)
    urls = [f"--bootstrap-{kind}-url={identity.url}" for kind in ("admin", "internal", "public")]
    openstack.manage(
        venv,
        "keystone-manage",
        [conf],
        "bootstrap",
        *urls,
        f"--bootstrap-region-id={REGION}",
        prefix=prefix,
        extra_env={"OS_BOOTSTRAP_PASSWORD": identity.admin_password},
    )


def command(
    venv: Path, conf: Path, *, port: int, host: str = "127.0.0.1"
) -> tuple[list[str], dict[str, str]]:
    """argv and environment of Keystone's WSGI application under `wsgi_command`."""
    argv = openstack.wsgi_command(venv, "keystone.wsgi.api:application", port=port, host=host)
    return argv, environment(venv, conf)


def environment(venv: Path, conf: Path) -> dict[str, str]:
    return openstack.service_env(
        venv, OS_KEYSTONE_CONFIG_DIR=str(conf.parent), OS_KEYSTONE_CONFIG_FILES=str(conf)
    )


class Admin:
    """Keystone's API as the bootstrap admin, through keystoneauth1 (`url` reachable from
    here: it may differ from the services' `Identity.url`)."""

    def __init__(self, url: str, password: str, timeout: float = 30) -> None:
        from keystoneauth1 import session
        from keystoneauth1.identity import v3

        auth = v3.Password(
            auth_url=url,
            username="admin",
            password=password,
            project_name="admin",
            user_domain_name=DOMAIN,
            project_domain_name=DOMAIN,
        )
        self.url = url.rstrip("/")
        self.session = session.Session(auth=auth, timeout=timeout)

    def call(self, method: str, path: str, body: object = None) -> Any:
        from keystoneauth1 import exceptions

        try:
            answer = self.session.request(
                self.url + path, method, json=body, raise_exc=False, authenticated=True
            )
        except exceptions.ClientException as error:
            raise LabError(f"Keystone {method} {path}: {error}") from error
        if not 200 <= answer.status_code < 300:
            raise LabError(f"Keystone {method} {path}: HTTP {answer.status_code} {answer.text}")
        return answer.json() if answer.text.strip() else None

    def find(self, collection: str, **query: str) -> dict[str, Any] | None:
        items = self.call("GET", f"/{collection}?" + "&".join(f"{k}={v}" for k, v in query.items()))
        found = items.get(collection.split("/")[-1]) or []
        return found[0] if found else None

    def ensure(self, collection: str, body: dict[str, Any], **query: str) -> dict[str, Any]:
        """The object `query` finds (updated with `body`), or a new one."""
        key = collection.rstrip("s")
        found = self.find(collection, **query)
        if found is None:
            created: dict[str, Any] = self.call("POST", f"/{collection}", {key: body})[key]
            return created
        changed = {k: v for k, v in body.items() if k != "password" and found.get(k) != v}
        if "password" in body and not self.password_works(found["id"], body["password"]):
            changed["password"] = body["password"]  # a change revokes the user's tokens
        if changed:
            self.call("PATCH", f"/{collection}/{found['id']}", {key: changed})
        return found

    def password_works(self, user_id: str, password: str) -> bool:
        """Whether Keystone issues a token for the user with `password` (setting it again
        would revoke the tokens the running services hold)."""
        from keystoneauth1 import exceptions

        method = {"user": {"id": user_id, "password": password}}
        body = {"auth": {"identity": {"methods": ["password"], "password": method}}}
        try:
            answer = self.session.request(
                self.url + "/auth/tokens", "POST", json=body, raise_exc=False, authenticated=False
            )
        except exceptions.ClientException as error:
            raise LabError(f"Keystone POST /auth/tokens: {error}") from error
        return bool(answer.status_code == 201)

    def grant(self, user: str, project: str, *roles: str) -> None:
        for name in roles:
            role = self.find("roles", name=name) or self.ensure("roles", {"name": name}, name=name)
            self.call("PUT", f"/projects/{project}/users/{user}/roles/{role['id']}")


def ensure_catalog(
    identity: Identity,
    endpoints: Mapping[str, str],
    *,
    admin_url: str | None = None,
    timeout: float = 60,
) -> None:
    """Projects service and demo, the service users, hakit's user and the demo user with
    their roles, and a public and internal endpoint per service type in `endpoints`
    (updated when the URL changed). Waits up to `timeout` for Keystone to answer.
    Idempotent."""
    from keystoneauth1.exceptions import ConnectionError as Unreachable

    admin = Admin(admin_url or identity.url, identity.admin_password)
    deadline = time.monotonic() + timeout
    while True:
        try:
            domain = admin.find("domains", name=DOMAIN)
            break
        except LabError as error:
            if not isinstance(error.__cause__, Unreachable) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    if domain is None:
        raise LabError("Keystone has no Default domain: was it bootstrapped?")
    projects = {
        name: admin.ensure("projects", {"name": name, "domain_id": domain["id"]}, name=name)["id"]
        for name in (SERVICE_PROJECT, "demo")
    }
    for user in (*SERVICE_USERS, HAKIT_USER, DEMO_USER):
        body = {"name": user, "domain_id": domain["id"], "password": identity.passwords[user]}
        found = admin.ensure("users", body, name=user)
        if user == DEMO_USER:
            admin.grant(found["id"], projects["demo"], "member", "reader")
        elif user == HAKIT_USER:
            admin.grant(found["id"], projects[SERVICE_PROJECT], "admin")
        else:
            admin.grant(found["id"], projects[SERVICE_PROJECT], "admin", "service")
    for service_type, url in endpoints.items():
        name = CATALOG_NAMES.get(service_type, service_type)
        service = admin.ensure("services", {"type": service_type, "name": name}, type=service_type)
        for interface in ("public", "internal"):
            body = {
                "service_id": service["id"],
                "interface": interface,
                "url": url,
                "region_id": REGION,
            }
            admin.ensure("endpoints", body, service_id=service["id"], interface=interface)


def clouds_yaml(path: Path, clouds: Mapping[str, Mapping[str, Any]]) -> Path:
    """clouds.yaml with `clouds`, mode 0600 (it holds passwords)."""
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".new"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump({"clouds": {k: dict(v) for k, v in clouds.items()}}, handle)
    os.replace(path.with_suffix(".new"), path)
    return path
