"""hakit's OpenStack sessions renew their Keystone token before it expires and once on a
401, against a real Keystone (the pinned venv's, on SQLite: the embedded default; its own
loopback port, so it runs beside the session's cloud). Keystone itself is the service
called: an authenticated GET of the user's own record.

Tokens live 125 s here: keystoneauth1 renews a token that has less than 120 s left, so
the renewal is due 5 s after the first one was issued.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hakit.lab import keystone, openstack
from hakit.resource_agents.clouds import CloudError, CloudSession
from tests.openstack.infra import Keystone

LIFETIME = 125  # seconds; keystoneauth1 renews below 120 s left


@pytest.fixture(scope="module")
def short_tokens(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keystone]:
    root = tmp_path_factory.mktemp("keystone-tokens")
    server = Keystone(root, openstack.ensure_venv(), f"sqlite:///{root / 'keystone.db'}")
    keystone.write_config(
        server.directory, f"sqlite:///{root / 'keystone.db'}", expiration=LIFETIME
    )
    try:
        server.start({})
        yield server
    finally:
        server.stop()


def me(cloud: CloudSession) -> str:
    """The user's own record through the catalog's identity endpoint (authenticated)."""
    user_id = cloud.session().get_user_id()
    answer = cloud.request("identity", "GET", f"/users/{user_id}")
    return str(answer["user"]["name"])


def test_a_token_is_renewed_before_it_expires(short_tokens: Keystone) -> None:
    cloud = CloudSession(str(short_tokens.clouds_yaml), "hakit")
    first = cloud.token()
    assert cloud.token() == first  # kept while it has long enough to live
    time.sleep(LIFETIME - 120 + 1)
    renewed = cloud.token()
    assert renewed != first
    assert me(cloud) == keystone.HAKIT_USER


def test_a_revoked_token_is_replaced_on_the_401(short_tokens: Keystone) -> None:
    cloud = CloudSession(str(short_tokens.clouds_yaml), "hakit")
    revoked = cloud.token()
    admin = short_tokens.admin()
    answer = admin.session.delete(
        f"{short_tokens.identity.url}/auth/tokens",
        headers={"X-Subject-Token": revoked},
        raise_exc=False,
    )
    assert answer.status_code == 204
    assert me(cloud) == keystone.HAKIT_USER  # 401, new token, the same request again
    assert cloud.token() != revoked


def test_refused_credentials_say_who_and_why_but_no_secret(
    short_tokens: Keystone, tmp_path: Path
) -> None:
    entry = short_tokens.identity.cloud()
    entry["auth"] = {**entry["auth"], "password": "not-the-password-4711"}
    path = keystone.clouds_yaml(tmp_path / "clouds.yaml", {"hakit": entry})
    with pytest.raises(CloudError) as refused:
        CloudSession(str(path), "hakit").token()
    assert refused.value.kind == "auth" and refused.value.status == 401
    assert "user hakit, project service" in refused.value.reason
    assert "not-the-password-4711" not in refused.value.reason
