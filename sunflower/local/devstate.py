"""What a running `sunflower dev` tells other commands: where its cloud and API are."""

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path(".sunflower")
_FILE = "dev.json"


@dataclass(frozen=True)
class DevState:
    api_url: str
    aws_endpoint: str
    region: str
    resource_prefix: str
    user_pool_id: str
    client_id: str
    pid: int

    def write(self, data_dir: Path) -> None:
        (data_dir / _FILE).write_text(json.dumps(asdict(self), indent=2))

    def export(self) -> None:
        """Point this process's AWS clients and settings at the running local stack."""
        os.environ.update(
            AWS_ENDPOINT_URL=self.aws_endpoint,
            AWS_REGION=self.region,
            AWS_DEFAULT_REGION=self.region,
            AWS_ACCESS_KEY_ID="local",
            AWS_SECRET_ACCESS_KEY="local",
            SUNFLOWER_RESOURCE_PREFIX=self.resource_prefix,
        )


def read(data_dir: Path) -> DevState | None:
    path = data_dir / _FILE
    if not path.exists():
        return None
    state = DevState(**json.loads(path.read_text()))
    try:
        os.kill(state.pid, 0)
    except OSError:
        return None  # left behind by a stack that is no longer running
    return state


def clear(data_dir: Path) -> None:
    (data_dir / _FILE).unlink(missing_ok=True)
