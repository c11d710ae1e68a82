"""`sunflower dev`: the whole system on one laptop, with no AWS account."""

import logging
import os
from pathlib import Path

import uvicorn

from sunflower.local import cloud, devstate, seed
from sunflower.local.persistence import Persistence
from sunflower.local.pump import EventPump
from sunflower.local.scheduler import Scheduler

log = logging.getLogger("sunflower.dev")


def run(*, port: int, data_dir: Path, reset: bool, seed_name: str | None, host: str = "127.0.0.1") -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    if (running := devstate.read(data_dir)) is not None:
        raise SystemExit(f"a dev stack (pid {running.pid}) already uses {data_dir}; stop it or pick --data-dir")
    persistence = Persistence(data_dir)
    if reset:
        persistence.reset()
    local = cloud.start()
    pump = scheduler = None
    try:
        persistence.restore(local)
        identity = local.identity
        assert identity is not None, "infra/serverless.yml declares no user pool"
        state = devstate.DevState(
            api_url=f"http://{host}:{port}",
            aws_endpoint=local.endpoint,
            region=local.catalog.region,
            resource_prefix=os.environ["SUNFLOWER_RESOURCE_PREFIX"],
            user_pool_id=identity.user_pool_id,
            client_id=identity.client_id,
            pid=os.getpid(),
        )
        state.write(data_dir)
        if seed_name:
            log.info("seeded %s: %s", seed_name, seed.load(seed_name, data_dir))
        pump, scheduler = EventPump(local.catalog), Scheduler(local.catalog)
        pump.start()
        scheduler.start()
        print(
            f"Sunflower is running: GraphQL and GraphiQL at {state.api_url}/graphql, devices under "
            f"{state.api_url}/devices/, health at {state.api_url}/healthz\n"
            f"  local cloud (moto) at {local.endpoint}, state in {data_dir}/\n"
            f"  try: sunflower token --role admin --user me",
            flush=True,
        )
        from sunflower.api.app import create_app

        uvicorn.run(create_app(), host=host, port=port, log_level="info", ws="websockets")
    finally:
        for part in (scheduler, pump):
            if part is not None:
                part.stop()
        persistence.stop()
        devstate.clear(data_dir)
        local.stop()
