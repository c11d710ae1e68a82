"""`sunflower dev` as a newcomer runs it: a process with the API, the local cloud and saved state."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sunflower.auth import device_signature
from sunflower.common.clock import utc_now

ROOT = Path(__file__).resolve().parents[2]
SUNFLOWER = [sys.executable, "-m", "sunflower.cli"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DevStack:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self, *flags: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SUNFLOWER_"))}
        self.process = subprocess.Popen(
            [*SUNFLOWER, "dev", "--port", str(self.port), "--data-dir", str(self.data_dir), *flags],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"sunflower dev exited: {self.process.stdout.read()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise AssertionError("sunflower dev did not answer /healthz within 60 s")

    def stop(self) -> str:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            output, _ = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        self.process = None
        return output

    def token(self, role: str, user: str = "e2e") -> str:
        result = subprocess.run(
            [*SUNFLOWER, "token", "--role", role, "--user", user, "--data-dir", str(self.data_dir)],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )
        return result.stdout.strip()

    def graphql(self, query: str, token: str) -> dict:
        response = httpx.post(
            f"{self.url}/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        return response.json()

    def device_names(self) -> list[str]:
        result = self.graphql("{ devices(first: 100) { edges { node { name } } } }", self.token("admin"))
        return sorted(e["node"]["name"] for e in result["data"]["devices"]["edges"])


@pytest.fixture
def stack(tmp_path):
    dev = DevStack(tmp_path / "state")
    yield dev
    if dev.process is not None:
        dev.stop()


def test_dev_stack_serves_the_seeded_district_and_keeps_its_state_across_restarts(stack):
    # given a fresh stack with the demo district
    stack.start("--seed", "demo")
    seeded = stack.device_names()
    assert any("闸机" in n or "门" in n for n in seeded) and any("信号机" in n for n in seeded)
    assert "GraphiQL" in httpx.get(f"{stack.url}/graphql", headers={"accept": "text/html"}).text
    secrets = json.loads((stack.data_dir / "demo-devices.json").read_text())
    device_id, device = next(iter(secrets.items()))

    # when it restarts (seeding again changes nothing)
    stack.stop()
    stack.start("--seed", "demo")

    # then the devices are still there, once each, and a seeded device's secret still verifies
    assert stack.device_names() == seeded
    body = b'{"firmware": "e2e"}'
    headers = device_signature.signed_headers(device_id, device["secret"], "POST", "/devices/heartbeat", body, utc_now())
    assert httpx.post(f"{stack.url}/devices/heartbeat", content=body, headers=headers).status_code == 200
    # and the demo residents are there for an official to find
    official = stack.token("official", user="e2e-official")
    residents = stack.graphql('{ persons(communityId: "pf-youxie-xingfu") { edges { node { name } } } }', official)
    assert residents["data"]["persons"]["edges"]
    # and the audit log of the registrations verifies
    verify = subprocess.run(
        [*SUNFLOWER, "audit", "verify", "--data-dir", str(stack.data_dir)], cwd=ROOT, capture_output=True, text=True
    )
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout.splitlines()[-1])["entries_checked"] >= len(seeded)  # devices and residents

    # when it restarts with --reset, then it starts clean
    stack.stop()
    stack.start("--reset")
    assert stack.device_names() == []


def test_token_without_a_running_stack_says_what_to_do(tmp_path):
    result = subprocess.run(
        [*SUNFLOWER, "token", "--role", "police", "--data-dir", str(tmp_path)], cwd=ROOT, capture_output=True, text=True
    )

    assert result.returncode != 0
    assert "sunflower dev" in result.stderr


def test_registry_import_from_the_command_line_ends_with_the_report(stack, tmp_path):
    import random

    from sunflower.registries import synthetic

    stack.start()
    good = synthetic.unique_id_numbers(random.Random(5), 2)
    sheet = tmp_path / "人口.csv"
    sheet.write_text(
        "姓名,身份证号\n"
        f"张三,{good[0]}\n"
        "李四,230108199902310011\n"  # 2月31日: no such date
        f"王五,{good[1]}\n",
        encoding="gb18030",
    )

    result = subprocess.run(
        [*SUNFLOWER, "registry", "import", str(sheet), "--kind", "person", "--data-dir", str(stack.data_dir)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["status"], report["accepted"], report["rejected"]) == ("succeeded", 2, 1)


def test_gate_enroll_and_check_from_the_command_line(stack):
    import base64

    from factories import new_id_number

    from sunflower.gate import modelstore

    stack.start()
    community = "pf-e2e-gate"
    registered = httpx.post(
        f"{stack.url}/graphql",
        json={"query": "mutation($i: PersonInput!) { registerPerson(input: $i) { ... on Person { id } } }",
              "variables": {"i": {"name": "门禁测试", "idNumber": new_id_number(),
                                  "currentAddress": {"communityId": community, "community": "测试社区"}}}},
        headers={"Authorization": f"Bearer {stack.token('official')}", "X-Purpose": "e2e"}, timeout=10,
    ).json()
    # GraphQL ids are Relay global ids ("Person:<id>", base64); the registry's own id is inside.
    person_id = base64.b64decode(registered["data"]["registerPerson"]["id"]).decode().split(":", 1)[1]
    photos = modelstore.photo_dir() / "face_recognition"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*SUNFLOWER, "gate", *args, "--data-dir", str(stack.data_dir)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)

    enrolled = cli("enroll", "--community", community, "--person", person_id, "--consent-method", "in_person",
                   str(photos / "obama.jpg"), str(photos / "obama2.jpg"))
    resident = cli("check", "--community", community, str(photos / "obama3.jpg"))
    stranger = cli("check", "--community", community, str(photos / "biden.jpg"))

    assert enrolled.returncode == 0, enrolled.stderr
    assert json.loads(enrolled.stdout)["templates"] == 2
    assert resident.returncode == 0, resident.stderr
    assert json.loads(resident.stdout)["personId"] == person_id
    assert stranger.returncode == 1 and json.loads(stranger.stdout)["reason"] == "NO_MATCH"
