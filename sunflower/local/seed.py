"""A small, realistic demo district, so every query has something to show.

Each capability adds its part to DEMO; loading is idempotent (what exists is left alone).
"""

import json
from collections.abc import Callable
from pathlib import Path

from sunflower.auth.principals import Principal, PrincipalKind, Role
from sunflower.container import services
from sunflower.devices.models import DeviceKind

SEEDER = Principal(id="demo-seed", kind=PrincipalKind.SYSTEM, roles=frozenset({Role.ADMIN}))

# 平房区 (Pingfang District, Harbin): sub-district communities with residential gates,
# the 哈南第二大道 arterial with its signal controllers, and a few cameras.
COMMUNITIES = {
    "pf-youxie-xingfu": "友协街道 幸福社区",
    "pf-xinjiang-hangtian": "新疆街道 航天社区",
    "pf-lianmeng-huayuan": "联盟街道 花园社区",
}
CORRIDOR = "hanan-2nd-avenue"
CROSSINGS = ["哈南第八大道", "哈南第七大道", "哈南第六大道", "新疆大街", "友协大街", "联盟大街", "保国大街"]


def _demo_devices() -> list[tuple[DeviceKind, str, str]]:
    devices = []
    for site, name in COMMUNITIES.items():
        devices.append((DeviceKind.GATE, f"{name} 东门", site))
        devices.append((DeviceKind.GATE, f"{name} 南门", site))
        devices.append((DeviceKind.CAMERA, f"{name} 出入口摄像机", site))
    for crossing in CROSSINGS:
        devices.append((DeviceKind.SIGNAL_CONTROLLER, f"哈南第二大道 × {crossing} 信号机", CORRIDOR))
        devices.append((DeviceKind.SENSOR, f"哈南第二大道 × {crossing} 线圈检测器", CORRIDOR))
    return devices


def seed_devices(data_dir: Path) -> dict:
    """Register the demo devices; their secrets go to DATA_DIR/demo-devices.json for trying signed calls."""
    devices = services().devices
    existing = set()
    start = None
    while True:
        page = devices.page(SEEDER, kind=None, limit=100, start=start)
        existing.update((d.kind, d.name, d.site_id) for d in page.items)
        if not page.next_key:
            break
        start = page.next_key
    secrets_file = data_dir / "demo-devices.json"
    issued = json.loads(secrets_file.read_text()) if secrets_file.exists() else {}
    added = 0
    for kind, name, site in _demo_devices():
        if (kind, name, site) in existing:
            continue
        result = devices.register(SEEDER, kind=kind, name=name, site_id=site)
        issued[result.device.id] = {"name": name, "kind": kind.value, "site": site, "secret": result.secret}
        added += 1
    secrets_file.write_text(json.dumps(issued, ensure_ascii=False, indent=2))
    secrets_file.chmod(0o600)
    return {"devices_added": added}


DEMO: list[Callable[[Path], dict]] = [seed_devices]
SEEDS = {"demo": DEMO}


def load(name: str, data_dir: Path) -> dict:
    if name not in SEEDS:
        raise ValueError(f"unknown seed {name!r}; known: {', '.join(SEEDS)}")
    report: dict = {}
    for seeder in SEEDS[name]:
        report.update(seeder(data_dir))
    return report
