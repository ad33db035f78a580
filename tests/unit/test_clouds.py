"""clouds.yaml entries offline (`hakit.resource_agents.clouds`): what validate-all
accepts and refuses, every missing key in one message, secure.yaml merged, bad YAML
located, secrets masked, and a CloudSession re-reading a changed file. Nothing here
contacts Keystone."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from hakit.resource_agents.clouds import CloudEntry, CloudError, CloudSession, read_entry

SECRET = "s3cret-Value"  # noqa: S105
KEYSTONE = "http://keystone.example:5000"


def password_cloud(**auth: str | None) -> dict[str, Any]:
    values = {
        "auth_url": KEYSTONE,
        "username": "hakit",
        "password": SECRET,
        "project_name": "service",
        "user_domain_name": "Default",
        "project_domain_name": "Default",
        **auth,
    }
    return {"auth": {k: v for k, v in values.items() if v is not None}}


def write(path: Path, clouds: dict[str, Any]) -> Path:
    """`clouds` as clouds.yaml (JSON is YAML), replacing the file (a new inode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = path.with_name(path.name + ".new")
    new.write_text(json.dumps({"clouds": clouds}))
    os.replace(new, path)
    return path


def refused(path: Path, name: str) -> str:
    with pytest.raises(CloudError) as caught:
        read_entry(str(path), name)
    assert caught.value.kind == "config"
    assert SECRET not in caught.value.reason
    return caught.value.reason


def test_a_complete_password_entry(tmp_path: Path) -> None:
    cloud = {**password_cloud(), "region_name": "RegionOne", "interface": "internalURL"}
    path = write(tmp_path / "clouds.yaml", {"hakit": cloud})
    entry = read_entry(str(path), "hakit")
    assert (entry.name, entry.path, entry.auth_type) == ("hakit", str(path), "password")
    assert (entry.region_name, entry.interface, entry.verify) == ("RegionOne", "internal", True)
    assert entry.auth_url == f"{KEYSTONE}/v3"  # keystoneauth's v3 plugins need the path
    assert entry.who() == "user hakit, project service"
    assert entry.secrets == (SECRET,)
    assert SECRET not in repr(entry) and SECRET not in str(entry)


def test_complete_application_credential_entries(tmp_path: Path) -> None:
    by_id = {
        "auth_type": "v3applicationcredential",
        "auth": {
            "auth_url": f"{KEYSTONE}/v3/",
            "application_credential_id": "0123abcd",
            "application_credential_secret": SECRET,
        },
        "cacert": "/etc/ssl/ca.pem",
    }
    by_name = {
        "auth_type": "v3applicationcredential",
        "auth": {
            "auth_url": KEYSTONE,
            "application_credential_name": "publisher",
            "username": "hakit",
            "user_domain_name": "Default",
            "application_credential_secret": SECRET,
        },
    }
    path = write(tmp_path / "clouds.yaml", {"id": by_id, "name": by_name})
    entry = read_entry(str(path), "id")
    assert entry.auth_url == f"{KEYSTONE}/v3" and entry.verify == "/etc/ssl/ca.pem"
    assert entry.who() == "application credential 0123abcd"
    assert entry.secrets == (SECRET,)
    named = read_entry(str(path), "name")
    assert named.who() == "application credential publisher of user hakit"
    assert named.region_name is None and named.interface == "public"


def test_every_missing_key_is_reported_in_one_message(tmp_path: Path) -> None:
    path = write(
        tmp_path / "clouds.yaml",
        {
            "empty": {"auth": {"password": SECRET}},
            "domains": password_cloud(user_domain_name=None, project_domain_name=None),
            "nopass": password_cloud(password=None, project_name=None),
            "ids": password_cloud(
                username=None,
                user_domain_name=None,
                user_id="u1",
                project_name=None,
                project_domain_name=None,
                project_id="p1",
            ),
            "app": {
                "auth_type": "v3applicationcredential",
                "auth": {"auth_url": "keystone:5000", "username": "hakit"},
            },
            "iface": {**password_cloud(), "interface": "private"},
        },
    )
    assert refused(path, "empty") == (
        f"{path}: cloud 'empty': auth.auth_url must be the Keystone URL (http or https); "
        "auth.username (or user_id) is missing; "
        "auth.project_name (or project_id) is missing (no catalog without one)"
    )
    assert refused(path, "domains") == (
        f"{path}: cloud 'domains': auth.user_domain_name (or user_domain_id) is missing "
        "(a user given by name needs it); "
        "auth.project_domain_name (or project_domain_id) is missing"
    )
    assert refused(path, "nopass") == (
        f"{path}: cloud 'nopass': auth.password is missing; "
        "auth.project_name (or project_id) is missing (no catalog without one)"
    )
    assert read_entry(str(path), "ids").who() == "user u1, project p1"  # ids need no domains
    assert refused(path, "app") == (
        f"{path}: cloud 'app': auth.auth_url must be the Keystone URL (http or https); "
        "auth.user_domain_name (or user_domain_id) is missing (a user given by name needs "
        "it); auth.application_credential_secret is missing; "
        "auth.application_credential_id (or application_credential_name and username) "
        "is missing"
    )
    assert refused(path, "iface").endswith(
        "cloud 'iface': interface 'private' is not one of public, internal, admin"
    )


def test_an_unknown_auth_type_and_a_missing_auth(tmp_path: Path) -> None:
    path = write(
        tmp_path / "clouds.yaml",
        {
            "token": {"auth_type": "token", "auth": {"auth_url": KEYSTONE, "token": SECRET}},
            "noauth": {"region_name": "RegionOne"},
        },
    )
    assert refused(path, "token") == (
        f"{path}: cloud 'token': auth_type 'token' is not supported (use one of password, "
        "v3password, v3applicationcredential, applicationcredential)"
    )
    assert refused(path, "noauth") == f"{path}: cloud 'noauth' has no auth mapping"


def test_an_unknown_cloud_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path / "clouds.yaml", {"hakit": password_cloud(), "demo": password_cloud()})
    assert refused(path, "nova") == f"{path} has no cloud 'nova' (clouds: demo, hakit)"
    empty = write(tmp_path / "empty" / "clouds.yaml", {})
    assert refused(empty, "nova") == f"{empty} has no cloud 'nova' (clouds: none)"
    with pytest.raises(CloudError, match="no cloud name given"):
        read_entry(str(path), "")


def test_secure_yaml_is_merged_over_the_entry(tmp_path: Path) -> None:
    path = write(tmp_path / "clouds.yaml", {"hakit": password_cloud(password=None)})
    assert "auth.password is missing" in refused(path, "hakit")
    write(tmp_path / "secure.yaml", {"hakit": {"auth": {"password": SECRET}}})
    entry = read_entry(str(path), "hakit")
    assert entry.auth["password"] == SECRET and entry.auth["username"] == "hakit"
    assert entry.secrets == (SECRET,)
    # a cloud only secure.yaml has is still a cloud
    write(tmp_path / "secure.yaml", {"other": password_cloud()})
    assert read_entry(str(path), "other").who() == "user hakit, project service"


def test_bad_yaml_is_located_and_other_files_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(f"clouds:\n  hakit:\n    auth: {{password: {SECRET}\n")
    reason = refused(broken, "hakit")
    assert reason.startswith(f"{broken}:4:1: ") and "expected ',' or '}'" in reason, reason
    tabs = tmp_path / "tabs.yaml"
    tabs.write_text("clouds:\n\thakit: {}\n")
    assert refused(tabs, "hakit").startswith(f"{tabs}:2:1: ")
    listed = tmp_path / "list.yaml"
    listed.write_text("- clouds\n")
    assert refused(listed, "hakit") == f"{listed} has no `clouds:` mapping"
    missing = tmp_path / "none.yaml"
    assert refused(missing, "hakit") == f"{missing}: No such file or directory"


def test_mask_hides_every_secret_of_the_entry() -> None:
    entry = CloudEntry(
        "hakit",
        "/etc/openstack/clouds.yaml",
        "password",
        {"auth_url": KEYSTONE, "password": SECRET},
        secrets=(SECRET, "another"),
    )
    text = f"POST /v3/auth/tokens {{'password': '{SECRET}'}} and another one"
    assert entry.mask(text) == "POST /v3/auth/tokens {'password': '******'} and ****** one"
    assert CloudEntry("x", "p", "password", {}).mask(text) == text


def test_a_session_re_reads_clouds_yaml_when_it_changes(tmp_path: Path) -> None:
    path = write(tmp_path / "clouds.yaml", {"hakit": password_cloud()})
    session = CloudSession(str(path), "hakit", timeout=2)
    first = session.entry()
    assert session.entry() is first  # unchanged: not read again
    write(path, {"hakit": password_cloud(username="other")})
    second = session.entry()
    assert second is not first and second.who() == "user other, project service"
    write(path, {"hakit": password_cloud(password=None)})  # broken: refused, with the reason
    with pytest.raises(CloudError, match="auth.password is missing") as caught:
        session.token()  # refused offline: Keystone is never asked
    assert caught.value.kind == "config"
    write(tmp_path / "secure.yaml", {"hakit": {"auth": {"password": "fixed"}}})
    assert session.entry().secrets == ("fixed",)  # secure.yaml counts too
    (tmp_path / "secure.yaml").unlink()
    with pytest.raises(CloudError):
        session.entry()
    path.unlink()
    with pytest.raises(CloudError, match="No such file or directory"):
        session.entry()
