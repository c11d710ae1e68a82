"""One embedded moto server per test session, emptied and rebuilt before each test that uses it."""

import os
from collections.abc import Iterator

import pytest

# Nothing in the test session may reach real AWS, even by accident before the server starts.
os.environ.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local", AWS_EC2_METADATA_DISABLED="true")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "SunflowerTest")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "sunflower")


@pytest.fixture(scope="session")
def local_cloud_session():
    from sunflower.local import cloud

    local = cloud.start()
    local.build()
    yield local
    local.stop()


@pytest.fixture
def local_cloud(local_cloud_session) -> Iterator:
    """A clean embedded cloud with every resource infra/serverless.yml declares."""
    from sunflower.container import services

    local_cloud_session.reset()
    services.cache_clear()
    yield local_cloud_session
    services.cache_clear()
