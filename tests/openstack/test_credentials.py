"""ocf:hakit:publisher, installed, with OpenStack credentials (`cloud`, `clouds_yaml`)
against the session's Keystone. validate-all checks the entry offline (5: no file here,
6: no such cloud); monitor depth 20 gets a token: degraded (190) with Keystone's refusal
(a wrong password or secret, a deleted application credential) or the unreachable
Keystone as the exit reason when it cannot — a restart would not fix
credentials — and success again once clouds.yaml is fixed, without a restart. No secret
appears in any output or log.

The publisher daemon runs on a CIB file (`CIB_file`, environment_file) with forced
leadership; its compute API is a port nothing listens on (it logs that, harmlessly): the
credentials are what is tested here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from hakit.lab import keystone
from hakit.ocf import OCFExit
from hakit.resource_agents.health.constants import LEADER_VARIABLE
from tests.health.conftest import Cib
from tests.openstack.conftest import Cloud, Resource
from tests.openstack.infra import free_port

pytestmark = pytest.mark.usefixtures("installed_agents")

WRONG = "not-the-password"


@pytest.fixture
def clouds_yaml(tmp_path: Path) -> Path:
    return tmp_path / "etc" / "clouds.yaml"


@pytest.fixture
def publisher(cloud: Cloud, tmp_path: Path, clouds_yaml: Path) -> Iterator[Resource]:
    """An instance of ocf:hakit:publisher with cloud `hakit` of `clouds_yaml`; stopped
    afterwards whatever happened."""
    (tmp_path / "cib").mkdir()
    cib = Cib(tmp_path / "cib")
    environment = tmp_path / "publisher.env"
    environment.write_text(f"CIB_file={cib.placed}\n{LEADER_VARIABLE}=1\n")
    resource = Resource(
        "publisher",
        tmp_path,
        "health-publisher",
        outbox=str(tmp_path / "state" / "outbox.db"),
        subscriptions=str(tmp_path / "state" / "subscriptions.db"),
        environment_file=str(environment),
        cloud="hakit",
        clouds_yaml=str(clouds_yaml),
        nova_api=f"http://127.0.0.1:{free_port()}/v2.1",
    )
    yield resource
    resource("stop")


def test_depth_20_reports_refused_credentials_and_recovers_when_fixed(
    cloud: Cloud, publisher: Resource, clouds_yaml: Path
) -> None:
    identity = cloud.keystone
    outputs: list[str] = []

    def monitor() -> tuple[int, str]:
        result = publisher.monitor(20)
        outputs.append(result.stdout + result.stderr)
        return result.code, result.exit_reason or ""

    def write(entry: dict[str, object]) -> None:
        keystone.clouds_yaml(clouds_yaml, {"hakit": entry})

    # offline: the file must exist here, the entry must be there
    missing = publisher("validate-all")
    assert missing.code == OCFExit.ERR_INSTALLED
    assert missing.exit_reason == f"clouds_yaml: {clouds_yaml} does not exist here"
    write(cloud.identity.cloud())
    unknown = publisher("validate-all", OCF_RESKEY_cloud="nope")
    assert unknown.code == OCFExit.ERR_CONFIGURED
    assert unknown.exit_reason == f"cloud: {clouds_yaml} has no cloud 'nope' (clouds: hakit)"

    # an application credential of hakit's user: the daemon starts, depth 20 gets a token
    first, first_secret = identity.application_credential("agent")
    write(identity.application_cloud(first, first_secret))
    started = publisher("start")
    assert started.code == OCFExit.SUCCESS, (started.stderr, publisher.log())
    assert monitor() == (OCFExit.SUCCESS, "")

    # a wrong secret: Keystone says 401
    write(identity.application_cloud(first, WRONG))
    code, reason = monitor()
    assert code == OCFExit.DEGRADED, reason
    assert reason.startswith(
        f"OpenStack calls would fail: Keystone at {cloud.identity.url} refused cloud "
        f"'hakit' (application credential {first}): HTTP 401"
    ), reason

    # the credential deleted: degraded, Keystone's refusal (its id, never its secret);
    # Keystone 30 answers an authentication with a deleted credential with a 404
    write(identity.application_cloud(first, first_secret))
    identity.delete_application_credential(first)
    code, reason = monitor()
    assert code == OCFExit.DEGRADED, reason
    assert reason.startswith(
        f"OpenStack calls would fail: Keystone at {cloud.identity.url} refused cloud "
        f"'hakit' (application credential {first}): HTTP 404 Could not find Application "
        f"Credential: {first}"
    ), reason
    assert monitor()[0] == OCFExit.DEGRADED  # a fresh process each time: still refused
    assert publisher.monitor(10).code == OCFExit.SUCCESS  # the daemon itself is fine

    # a wrong password: the user is named, the password never
    wrong = cloud.identity.cloud()
    wrong["auth"]["password"] = WRONG
    write(wrong)
    code, reason = monitor()
    assert code == OCFExit.DEGRADED
    assert "refused cloud 'hakit' (user hakit, project service): HTTP 401" in reason, reason

    # Keystone unreachable: degraded too, and says so
    unreachable = cloud.identity.cloud()
    unreachable["auth"]["auth_url"] = f"http://127.0.0.1:{free_port()}/v3"
    write(unreachable)
    code, reason = monitor()
    assert code == OCFExit.DEGRADED
    assert reason.startswith("OpenStack calls would fail: cloud 'hakit': unreachable"), reason

    # fixed with a new credential: success again, the daemon never restarted
    pid = publisher.pid
    second, second_secret = identity.application_credential("agent")
    write(identity.application_cloud(second, second_secret))
    assert monitor() == (OCFExit.SUCCESS, "")
    assert publisher.pid == pid
    identity.delete_application_credential(second)

    secrets = [first_secret, second_secret, WRONG, *cloud.secrets()]
    seen = "".join(outputs) + started.stderr + publisher.log()
    assert not [s for s in secrets if s in seen]
