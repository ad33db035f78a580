"""No agent echoes a secret planted in a config file, an environment file or a URL, in any
exit reason or log line, whatever is wrong with the file; a file that is not UTF-8 is
OCF_ERR_CONFIGURED (6), never an internal error."""

from __future__ import annotations

from pathlib import Path

import pytest

from hakit.ocf import OCFExit
from hakit.ocf.log import mask_urls
from hakit.resource_agents.cinder_volume import AGENT as CINDER
from hakit.resource_agents.nova_scheduler import AGENT as SCHEDULER
from hakit.resource_agents.service import AGENT as SERVICE
from tests.conftest import run_in_process

SECRET = "Pl4nted-S3cret"  # noqa: S105 — what must never show
URL = f"rabbit://openstack:{SECRET}@127.0.0.1:9/"
DB = f"mysql+pymysql://cinder:{SECRET}@127.0.0.1:9/cinder"

CONFIGS: dict[str, bytes] = {
    "setting before any section": f"transport_url = {URL}\n[DEFAULT]\n".encode(),
    "continuation before a key": f"[DEFAULT]\n  {SECRET}\n".encode(),
    "not UTF-8": f"[DEFAULT]\ntransport_url = {URL}\n".encode() + b"\xff\xfe\n",
    "valid, unreachable": f"[DEFAULT]\ntransport_url = {URL}\n[database]\nconnection = {DB}\n".encode(),
}


@pytest.mark.parametrize("agent", [CINDER, SCHEDULER], ids=lambda a: a.name)
@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_a_broken_config_file_never_shows_its_secrets(
    tmp_path: Path, agent: object, case: str
) -> None:
    config = tmp_path / "service.conf"
    config.write_bytes(CONFIGS[case])
    env = {
        "OCF_RESKEY_config": str(config),
        "OCF_RESKEY_binary": "/bin/true",
        "OCF_RESKEY_management_url": f"http://admin:{SECRET}@127.0.0.1:9",
        "OCF_RESKEY_CRM_meta_timeout": "5000",
        "HAKIT_RUN_DIR": str(tmp_path / "run"),
    }
    for action in ("validate-all", "start", "monitor"):
        result = run_in_process(agent, action, env)  # type: ignore[arg-type]
        assert SECRET not in result.stdout + result.stderr, (action, result.stderr)
        assert "internal error" not in result.stderr, (action, result.stderr)
        if case != "valid, unreachable" and action != "monitor":
            assert result.code == OCFExit.ERR_CONFIGURED, (action, result.stderr)


def test_an_environment_file_that_is_not_utf8_is_err_configured(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_bytes(f"DB_PASSWORD={SECRET}\n".encode() + b"\xff\n")
    env = {
        "OCF_RESKEY_binary": "sleep",
        "OCF_RESKEY_arguments": "1000",
        "OCF_RESKEY_environment_file": str(env_file),
        "HAKIT_RUN_DIR": str(tmp_path / "run"),
    }
    for action in ("validate-all", "start"):
        result = run_in_process(SERVICE, action, env)
        assert result.code == OCFExit.ERR_CONFIGURED, (action, result.stderr)
        assert "not UTF-8" in result.stderr and SECRET not in result.stderr


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (f"http://admin:{SECRET}@h:5000/v3", "http://******@h:5000/v3"),
        (
            f"rabbit://a:{SECRET}@h1:5672,b:{SECRET}@h2:5672/",
            "rabbit://******@h1:5672,******@h2:5672/",
        ),
        (f"failed: {DB} refused", "failed: mysql+pymysql://******@127.0.0.1:9/cinder refused"),
        ("no credentials: http://h:80/x and a@b", "no credentials: http://h:80/x and a@b"),
    ],
)
def test_url_user_info_is_masked(text: str, masked: str) -> None:
    assert mask_urls(text) == masked
