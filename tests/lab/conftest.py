"""The lab's cloud, shared by the modules that need it: they run last in tests/lab
(test_minicloud adds the compute layer and takes it away, then test_openstack), so the
cloud comes up once and goes after the package, and the modules before it run without."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hakit.lab import cloud
from hakit.lab.lab import Lab


@pytest.fixture(scope="package")
def openstack(lab: Lab) -> Iterator[Lab]:
    """The lab with real cinder and nova services (`hakit lab cloud up`)."""
    try:  # taken down even when it did not come up
        cloud.up(lab, timeout=900)
        yield lab
    finally:
        lab.restore()
        lab.wait_until_online(timeout=180)
        cloud.down(lab)
