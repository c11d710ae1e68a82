"""Settings name resources the way infra/serverless.yml does."""

import pytest

from sunflower.common.settings import Settings
from sunflower.local import catalog


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("SUNFLOWER_RESOURCE_PREFIX", "SUNFLOWER_BUCKET_PREFIX", "AWS_REGION", "SUNFLOWER_DEVICE_CLOCK_SKEW_S"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_by_default_resources_are_named_for_the_local_stage(clean_env):
    settings = Settings()
    assert settings.resource("devices") == "sunflower-local-devices"
    assert settings.bucket("audit") == "sunflower-local-audit"
    assert settings.region == "ap-east-1"


def test_the_stage_prefix_comes_from_the_environment(clean_env):
    clean_env.setenv("SUNFLOWER_RESOURCE_PREFIX", "sunflower-prod")
    settings = Settings()
    assert settings.resource("audit") == "sunflower-prod-audit"
    assert settings.bucket("audit") == "sunflower-prod-audit"


def test_buckets_take_their_own_prefix_when_one_is_given(clean_env):
    # given a deployment whose bucket names need a globally unique prefix
    clean_env.setenv("SUNFLOWER_RESOURCE_PREFIX", "sunflower-prod")
    clean_env.setenv("SUNFLOWER_BUCKET_PREFIX", "district7-sunflower-prod")
    settings = Settings()
    # then buckets use it and tables do not
    assert settings.bucket("audit") == "district7-sunflower-prod-audit"
    assert settings.resource("audit") == "sunflower-prod-audit"


def test_region_is_read_from_aws_region_and_other_values_from_sunflower_variables(clean_env):
    clean_env.setenv("AWS_REGION", "cn-north-1")
    clean_env.setenv("SUNFLOWER_DEVICE_CLOCK_SKEW_S", "120")
    settings = Settings()
    assert settings.region == "cn-north-1"
    assert settings.device_clock_skew_s == 120


def test_the_names_settings_make_are_the_names_infra_declares(clean_env):
    # given the template as the local stage builds it
    declared = catalog.load(stage="local")
    tables = {t["TableName"] for t in declared.tables.values()}
    buckets = {b.name for b in declared.buckets.values()}
    settings = Settings()
    # then the tables and bucket this package uses exist under the names Settings computes
    assert {settings.resource("devices"), settings.resource("audit")} <= tables
    assert settings.bucket("audit") in buckets
    assert f"alias/{settings.resource('data')}" in declared.key_aliases
