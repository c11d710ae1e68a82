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


def seed_registries(data_dir: Path) -> dict:
    """Households of residents in each community, businesses along the arterial, their credit records."""
    import random

    from sunflower.auth.principals import SYSTEM
    from sunflower.registries import synthetic
    from sunflower.registries.service import ImportKind, Row

    rng = random.Random(20261124)  # the same demo district every time: loading again changes nothing
    registries = services().registries
    people, heads = [], []
    relations = ["户主", "配偶", "子", "女", "母亲"]
    for c, (community_id, name) in enumerate(COMMUNITIES.items()):
        subdistrict, community = name.split()
        for h in range(6):
            household_no = f"230108{c + 1:02d}{h + 1:04d}"
            for m in range(rng.randint(1, 4)):
                number = synthetic.id_number(rng, born=None)
                people.append({
                    "name": synthetic.person_name(rng), "id_number": number, "phone": synthetic.mobile_phone(rng),
                    "household_no": household_no, "relationship": relations[m],
                    "current_district": "平房区", "current_subdistrict": subdistrict, "current_community": community,
                    "current_community_id": community_id, "current_building": str(h + 1), "current_unit": "1",
                    "current_room": f"{rng.randint(1, 6)}0{rng.randint(1, 4)}",
                    "registered_district": "平房区", "registered_subdistrict": subdistrict,
                })
                if m == 0:
                    heads.append(number)
    report = _count(registries.import_rows(SYSTEM, ImportKind.PERSON, [Row(i + 2, p) for i, p in enumerate(people)], "demo seed"))
    businesses = ["精密机械", "汽车零部件", "食品", "物流", "商贸", "餐饮", "物业服务", "建筑工程"]
    industries = ["C3411", "C3670", "C1419", "G5430", "F5191", "H6210", "K7020", "E4813"]
    codes = [synthetic.credit_code(rng) for _ in businesses]
    entities = [
        {"name": f"哈尔滨平房{b}有限公司", "credit_code": code, "legal_rep_id_number": heads[i], "industry_code": industries[i],
         "registered_capital": str(rng.choice([50, 100, 300, 500, 1000])), "entity_type": "有限责任公司",
         "established_on": f"20{rng.randint(5, 24):02d}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
         "address_district": "平房区", "address_detail": f"哈南第二大道{100 + 20 * i}号"}
        for i, (b, code) in enumerate(zip(businesses, codes, strict=True))
    ]
    report.update(_count(registries.import_rows(SYSTEM, ImportKind.ENTITY, [Row(i + 2, e) for i, e in enumerate(entities)], "demo seed"), "entities"))
    credit = [
        {"subject": codes[0], "category": "守合同重信用", "decided_on": "2025-12-01", "department": "平房区市场监督管理局", "decision_number": "平市监〔2025〕88号"},
        {"subject": codes[3], "category": "行政处罚", "decided_on": "2026-06-12", "department": "平房区应急管理局", "decision_number": "平应急罚〔2026〕7号", "summary": "危险货物装卸未按规定执行"},
        {"subject": codes[5], "category": "行政许可", "decided_on": "2026-02-20", "department": "平房区市场监督管理局", "decision_number": "JY22301080012345", "summary": "食品经营许可"},
        {"subject": heads[4], "category": "失信被执行人", "decided_on": "2026-04-02", "department": "平房区人民法院", "decision_number": "(2026)黑0108执211号"},
        {"subject": heads[7], "category": "表彰", "decided_on": "2026-09-30", "department": "平房区人民政府", "decision_number": "平政发〔2026〕31号", "summary": "见义勇为"},
    ]
    report.update(_count(registries.import_rows(SYSTEM, ImportKind.CREDIT, [Row(i + 2, r) for i, r in enumerate(credit)], "demo seed"), "credit"))
    return report


# The office's demo organisation chart: department code -> (name, parent, leader); staff id -> (name, department).
# Sign in as one of them with `sunflower token --role official --user h-head`.
OFFICE_DEPARTMENTS = {
    "gov": ("平房区人民政府", None, "mayor"),
    "supervision-office": ("区政府督查室", "gov", "s-head"),
    "general-office": ("区政府办公室", "gov", "g-head"),
    "housing": ("区住房和城乡建设局", "gov", "h-head"),
    "water": ("区水务局", "gov", "w-head"),
    "market": ("区市场监督管理局", "gov", "m-head"),
}
OFFICE_STAFF = {
    "mayor": ("区长", "gov"), "s-head": ("督查室主任", "supervision-office"), "s-1": ("督查员", "supervision-office"),
    "g-head": ("办公室主任", "general-office"), "g-1": ("文书", "general-office"),
    "h-head": ("住建局局长", "housing"), "h-1": ("住建局科员", "housing"),
    "w-head": ("水务局局长", "water"), "w-1": ("水务局科员", "water"),
    "m-head": ("市场监管局局长", "market"), "m-1": ("市场监管局科员", "market"),
}


def seed_office(data_dir: Path) -> dict:
    """The organisation chart the workflows assign and escalate along, and the built-in diagrams."""
    from sunflower.office.wiring import install_builtins

    office = services().office  # deploys the built-in diagrams on first use; install_builtins reports them
    org = office.org
    chart = org.chart(SEEDER)
    added = 0
    for code, (name, parent, _) in OFFICE_DEPARTMENTS.items():  # in order: parents before children
        if code not in chart.departments:
            org.add_department(SEEDER, name, code=code, parent_id=parent)
            added += 1
    known = org.staff_many(SEEDER, list(OFFICE_STAFF))
    for ident, (name, department) in OFFICE_STAFF.items():
        if ident not in known:
            org.add_staff(SEEDER, ident, name, department)
            added += 1
    chart = org.chart(SEEDER)
    for code, (_, _, leader) in OFFICE_DEPARTMENTS.items():
        if chart.departments[code].leader_id != leader:
            org.set_leader(SEEDER, code, leader)
    definitions = install_builtins(office, SEEDER)
    return {"office_chart_added": added, "office_definitions": {d.key: d.version for d in definitions}}


def _count(outcomes, what: str = "persons") -> dict:
    return {f"{what}_{status}": sum(1 for o in outcomes if o.status.value == status) for status in ("accepted", "unchanged", "rejected")}


DEMO: list[Callable[[Path], dict]] = [seed_devices, seed_registries, seed_office]
SEEDS = {"demo": DEMO}


def load(name: str, data_dir: Path) -> dict:
    if name not in SEEDS:
        raise ValueError(f"unknown seed {name!r}; known: {', '.join(SEEDS)}")
    report: dict = {}
    for seeder in SEEDS[name]:
        report.update(seeder(data_dir))
    return report
