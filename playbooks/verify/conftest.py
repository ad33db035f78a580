"""Options and fixtures of the testinfra checks: the topology the cluster was deployed
with, and each host's view of the cluster (crm_mon's XML, read once per host)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--topology", required=True, help="the topology YAML the cluster was deployed with"
    )
    parser.addoption("--hakit-venv", default="/opt/hakit/venv", help="hakit's venv on the nodes")


@pytest.fixture(scope="session")
def topology(request: pytest.FixtureRequest) -> dict[str, Any]:
    document = yaml.safe_load(Path(request.config.getoption("--topology")).read_text())
    assert isinstance(document, dict), "the topology is a YAML mapping"
    return document


@pytest.fixture(scope="session")
def hakit_venv(request: pytest.FixtureRequest) -> str:
    return str(request.config.getoption("--hakit-venv"))


@pytest.fixture(scope="module")
def status(host: Any) -> ET.Element:
    """crm_mon's one-shot XML as this host sees it."""
    return ET.fromstring(host.check_output("crm_mon --one-shot --output-as=xml"))
