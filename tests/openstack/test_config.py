"""Bad and unsafe configurations: the exit code and the reason, on validate-all and start
(which must refuse before spawning anything); probes and stop still work."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

import pytest

from hakit.lab import keystone
from hakit.lab.openstack import FAKE_DRIVER
from hakit.ocf import OCFExit
from tests.conftest import run_installed
from tests.openstack.conftest import Cloud, Resource


def variant(source: Path, target: Path, changes: dict[str, dict[str, str | None]]) -> str:
    """A copy of an oslo config with options set (a value) or removed (None)."""
    parser = configparser.RawConfigParser(default_section="\0none", interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(source)
    for section, options in changes.items():
        if not parser.has_section(section):
            parser.add_section(section)
        for key, value in options.items():
            if value is None:
                parser.remove_option(section, key)
            else:
                parser.set(section, key, value)
    with target.open("w") as handle:
        parser.write(handle)
    return str(target)


CLONE = {"CRM_meta_clone_max": "2", "CRM_meta_clone": "0", "CRM_meta_on_node": "cvx"}


def clouds_yaml(tmp: Path, cloud: Cloud) -> Path:
    """clouds.yaml with incomplete entries: `bare` lacks every key but a password,
    `halfapp` is an application credential without its id, `odd` has an unknown auth type;
    each holds the secret `secretpw`."""
    path = tmp / "clouds" / "clouds.yaml"
    keystone.clouds_yaml(
        path,
        {
            "bare": {"auth": {"password": "secretpw"}},
            "halfapp": {
                "auth_type": "v3applicationcredential",
                "auth": {
                    "auth_url": cloud.identity.url,
                    "application_credential_secret": "secretpw",
                },
            },
            "odd": {
                "auth_type": "token",
                "auth": {"auth_url": cloud.identity.url, "token": "secretpw"},
            },
        },
    )
    return path


def cloud_cases(cloud: Cloud, tmp: Path) -> list[tuple[str, dict[str, str], int, str]]:
    """The cloud and clouds_yaml parameters, checked offline (no Keystone call)."""
    conf, path = cloud.cinder_conf, clouds_yaml(tmp, cloud)
    broken = tmp / "broken.yaml"
    broken.write_text("clouds:\n  hakit:\n    auth: {password: secretpw\n")
    api = {"config": str(conf), "cinder_api_url": "http://127.0.0.1:8776/v3"}
    with_cloud = {**api, "cloud": "hakit", "clouds_yaml": str(cloud.clouds_yaml)}
    return [
        (
            "api URL",
            {**with_cloud, "cinder_api_url": "127.0.0.1:8776"},
            6,
            "cinder_api_url '127.0.0.1:8776' is not an http(s) URL",
        ),
        ("api URL without cloud", api, 6, "cinder_api_url needs cloud (its credentials)"),
        (
            "clouds.yaml missing",
            {**with_cloud, "clouds_yaml": str(tmp / "none.yaml")},
            5,
            f"clouds_yaml: {tmp / 'none.yaml'} does not exist here",
        ),
        (
            "unknown cloud",
            {**with_cloud, "cloud": "nope"},
            6,
            f"cloud: {cloud.clouds_yaml} has no cloud 'nope' (clouds: demo, hakit",
        ),
        (
            "incomplete entry",
            {**with_cloud, "cloud": "bare", "clouds_yaml": str(path)},
            6,
            f"cloud: {path}: cloud 'bare': auth.auth_url must be the Keystone URL (http or "
            "https); auth.username (or user_id) is missing; auth.project_name (or "
            "project_id) is missing (no catalog without one)",
        ),
        (
            "application credential without id",
            {**with_cloud, "cloud": "halfapp", "clouds_yaml": str(path)},
            6,
            "cloud 'halfapp': auth.application_credential_id (or application_credential_name "
            "and username) is missing",
        ),
        (
            "unknown auth type",
            {**with_cloud, "cloud": "odd", "clouds_yaml": str(path)},
            6,
            "cloud 'odd': auth_type 'token' is not supported (use one of password, v3password, "
            "v3applicationcredential, applicationcredential)",
        ),
        (
            "bad YAML",
            {**with_cloud, "clouds_yaml": str(broken)},
            6,
            f"cloud: {broken}:4:1: expected ',' or '}}', but got '<stream end>'",
        ),
    ]


def cinder_cases(cloud: Cloud, tmp: Path) -> list[tuple[str, dict[str, str], int, str]]:
    conf = cloud.cinder_conf
    missing = tmp / "no-such-dir"
    return [
        *cloud_cases(cloud, tmp),
        (
            "no cluster",
            {"config": variant(conf, tmp / "a.conf", {"DEFAULT": {"cluster": None}}), **CLONE},
            6,
            "not safe active/active: [DEFAULT] cluster is not set",
        ),
        (
            "no coordination",
            {
                "config": variant(conf, tmp / "b.conf", {"coordination": {"backend_url": None}}),
                **CLONE,
            },
            6,
            "[coordination] backend_url is not set",
        ),
        (
            "coordination dir missing",
            {
                "config": variant(
                    conf, tmp / "c.conf", {"coordination": {"backend_url": f"file://{missing}"}}
                ),
                **CLONE,
            },
            6,
            f"backend_url directory {missing} does not exist",
        ),
        (
            "coordination mysql unreachable",
            {
                "config": variant(
                    conf,
                    tmp / "d.conf",
                    {"coordination": {"backend_url": "mysql://u:secretpw@127.0.0.1:9/x"}},
                ),
                **CLONE,
            },
            6,
            "[coordination] backend_url unusable: database mysql 127.0.0.1:9/x",
        ),
        (
            "driver not A/A",
            {
                "config": variant(conf, tmp / "e.conf", {"fake": {"volume_driver": FAKE_DRIVER}}),
                **CLONE,
            },
            6,
            "backend fake: driver FakeLoggingVolumeDriver does not support active/active",
        ),
        (
            "LVM default driver",
            {"config": variant(conf, tmp / "f.conf", {"fake": {"volume_driver": None}}), **CLONE},
            6,
            "driver LVMVolumeDriver does not support active/active",
        ),
        (
            "host on a clone",
            {"config": str(conf), "host": "shared", **CLONE},
            6,
            "with host='shared': every instance would register as the same service",
        ),
        (
            "no database",
            {"config": variant(conf, tmp / "g.conf", {"database": {"connection": None}})},
            6,
            "[database] connection is not set",
        ),
        (
            "no transport_url",
            {"config": variant(conf, tmp / "h.conf", {"DEFAULT": {"transport_url": None}})},
            6,
            "[DEFAULT] transport_url is not set",
        ),
        (
            "config file missing",
            {"config": f"{conf} {tmp / 'nope.conf'}"},
            5,
            f"config file {tmp / 'nope.conf'} does not exist",
        ),
        (
            "bad integer",
            {"config": str(conf), "service_down_time": "soon"},
            6,
            "parameter service_down_time='soon' is not an integer from 1",
        ),
        (
            "binary missing",
            {"config": str(conf), "binary": "/nonexistent/cinder-volume"},
            5,
            "binary: program /nonexistent/cinder-volume is not installed here",
        ),
    ]


def test_cinder_volume_refuses_unsafe_and_broken_configurations(
    cloud: Cloud, tmp_path: Path
) -> None:
    (tmp_path / "broken.conf").write_text("transport_url = rabbit://\n")
    cases = cinder_cases(cloud, tmp_path)
    cases.append(
        (
            "no section header",
            {"config": str(tmp_path / "broken.conf")},
            6,
            "line 1: a setting before any [section] header",
        )
    )
    for name, params, code, reason in cases:
        resource = Resource(
            "cinder-volume", tmp_path, "bad", **{"binary": cloud.bin("cinder-volume"), **params}
        )
        for action in ("validate-all", "start"):
            result = resource(action)
            assert result.code == code, (name, action, result.stderr)
            assert result.exit_reason and reason in result.exit_reason, (name, result.exit_reason)
            for secret in ("secretpw", *cloud.secrets()):
                assert secret not in result.stdout + result.stderr, (name, action)
        assert not (tmp_path / "run" / "service" / "bad.state").exists(), name  # nothing spawned
        assert resource.monitor(interval_ms=0).code == OCFExit.NOT_RUNNING, name
        assert resource("stop").code == OCFExit.SUCCESS, name


def test_cinder_volume_safe_configurations_validate(cloud: Cloud, tmp_path: Path) -> None:
    active_active = Resource(
        "cinder-volume",
        tmp_path,
        "ok",
        binary=cloud.bin("cinder-volume"),
        config=str(cloud.cinder_conf),
        **CLONE,
    )
    assert active_active("validate-all").code == OCFExit.SUCCESS
    not_aa = variant(
        cloud.cinder_conf, tmp_path / "ap.conf", {"fake": {"volume_driver": FAKE_DRIVER}}
    )
    active_passive = Resource(
        "cinder-volume", tmp_path, "ap", binary=cloud.bin("cinder-volume"), config=not_aa
    )
    assert active_passive("validate-all").code == OCFExit.SUCCESS  # a primitive may use it


def test_console_tier_configurations(cloud: Cloud, tmp_path: Path) -> None:
    wrong_db = variant(
        cloud.nova_conf, tmp_path / "w.conf", {"database": {"connection": cloud.db_url("cinder")}}
    )
    proxy = Resource(
        "nova-consoleauth", tmp_path, "p", binary=cloud.bin("nova-novncproxy"), config=wrong_db
    )
    result = proxy("validate-all")
    assert result.code == OCFExit.ERR_CONFIGURED
    assert (
        result.exit_reason
        and "must be the cell database holding console_auth_tokens" in result.exit_reason
    )
    assert "console_auth_tokens' doesn't exist" in result.exit_reason

    legacy = tmp_path / "bin" / "nova-consoleauth"  # nova ≤ Stein: a stand-in with its name
    legacy.parent.mkdir()
    legacy.symlink_to("/bin/sleep")
    clone = {"binary": str(legacy), **CLONE}
    result = Resource("nova-consoleauth", tmp_path, "l", config=str(cloud.nova_conf), **clone)(
        "validate-all"
    )
    assert result.code == OCFExit.ERR_CONFIGURED
    assert (
        result.exit_reason
        and "nova-consoleauth cloned with clone-max=2 needs shared token storage"
        in result.exit_reason
    )
    shared = variant(
        cloud.nova_conf,
        tmp_path / "m.conf",
        {
            "cache": {
                "enabled": "true",
                "backend": "oslo_cache.memcache_pool",
                "memcache_servers": "127.0.0.1:11211",
            }
        },
    )
    assert (
        Resource("nova-consoleauth", tmp_path, "l", config=shared, **clone)("validate-all").code
        == 0
    )
    single = Resource(
        "nova-consoleauth", tmp_path, "l", config=str(cloud.nova_conf), binary=str(legacy)
    )
    assert single("validate-all").code == OCFExit.SUCCESS


@pytest.mark.parametrize(
    "agent", ["openstack-service", "cinder-volume", "nova-scheduler", "nova-consoleauth"]
)
def test_usage_errors_and_required_parameters(agent: str, tmp_path: Path) -> None:
    env = {"HAKIT_RUN_DIR": str(tmp_path), "OCF_RESOURCE_INSTANCE": "x"}
    done = run_installed(agent, "", env)
    assert done.code == OCFExit.ERR_UNIMPLEMENTED  # "" is no action
    import subprocess

    bare = subprocess.run(
        [f"/usr/lib/ocf/resource.d/hakit/{agent}"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert bare.returncode == OCFExit.ERR_ARGS and "usage:" in bare.stderr
    if agent == "openstack-service":
        result = run_installed(agent, "validate-all", env)
        assert result.code == OCFExit.ERR_CONFIGURED
        assert result.exit_reason and "required parameter binary is not set" in result.exit_reason
