"""The embedded cloud: a moto server on loopback with Sunflower's resources built in it."""

import logging
import os
from dataclasses import dataclass

import requests
from moto.server import ThreadedMotoServer

from sunflower.aws.clients import reset_clients
from sunflower.common.settings import get_settings
from sunflower.local import catalog as catalog_module
from sunflower.local import moto_patches, stack
from sunflower.local.catalog import Catalog


@dataclass
class LocalCloud:
    server: ThreadedMotoServer
    endpoint: str
    catalog: Catalog
    identity: stack.Identity | None = None

    def build(self, *, notifications: bool = True) -> None:
        self.identity = stack.build(self.catalog, self.endpoint, notifications=notifications)
        if self.identity:
            os.environ.update(
                SUNFLOWER_JWT_ISSUER=self.identity.issuer,
                SUNFLOWER_JWT_AUDIENCE=self.identity.client_id,
                SUNFLOWER_JWT_JWKS_URL=self.identity.jwks_url,
            )
        get_settings.cache_clear()

    def reset(self) -> None:
        """Empty every service and build the resources again (between tests)."""
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()
        self.build()

    def stop(self) -> None:
        self.server.stop()


def start(*, port: int = 0, catalog: Catalog | None = None) -> LocalCloud:
    """Start moto on 127.0.0.1 and point every AWS client of this process at it."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    moto_patches.apply()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    host, bound = server.get_host_and_port()
    endpoint = f"http://{host}:{bound}"
    catalog = catalog or catalog_module.load()
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        AWS_REGION=catalog.region,
        AWS_DEFAULT_REGION=catalog.region,
        SUNFLOWER_RESOURCE_PREFIX=f"sunflower-{catalog.stage}",
        # Stable pool and client ids, so tokens survive a restart of the dev stack.
        MOTO_COGNITO_IDP_USER_POOL_ID_STRATEGY="HASH",
        MOTO_COGNITO_IDP_USER_POOL_CLIENT_ID_STRATEGY="HASH",
    )
    os.environ.pop("SUNFLOWER_BUCKET_PREFIX", None)
    # As provider.environment sets them for every function in infra/serverless.yml: without a
    # namespace, a handler that emits metrics fails when Powertools flushes them.
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "sunflower")
    os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "Sunflower")
    get_settings.cache_clear()
    reset_clients()
    return LocalCloud(server, endpoint, catalog)
