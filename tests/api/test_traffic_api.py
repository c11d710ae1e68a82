"""Signal corridors through the real schema and app: status, plan history and exports, pins and overrides,
and the signed device endpoints (sensors post batches, controllers fetch the plan with an ETag)."""

import json
import sys
from pathlib import Path

import boto3
import pytest
import requests
from factories import audit_log
from strawberry.relay import from_base64

from sunflower.auth import device_signature
from sunflower.common.clock import utc_now
from sunflower.common.settings import get_settings

pytest.importorskip("scipy", reason="retiming needs the [sim] extra (numpy, scipy)")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit" / "traffic"))
from traffic_factories import PEAK, batch_for, make_corridor, recent_minutes

CORRIDOR = "hanan2-test"
HEAVIER = {**PEAK, "EB_0": 1300.0, "EB_1": 1300.0, "NB_0": 500.0, "SB_0": 480.0}
BATCHES_PATH = "/devices/traffic/batches"


# --- given ---------------------------------------------------------------------------------------


@pytest.fixture
def engineer(api) -> str:
    return api.token("traffic_engineer", user="eng-1")


@pytest.fixture
def corridor(api, engineer):
    corridor = make_corridor()
    result = api.data("CreateCorridor", {"input": {"corridorJson": corridor.model_dump_json()}},
                      token=engineer)["createCorridor"]
    assert result["__typename"] == "TrafficCorridor", result
    return corridor


@pytest.fixture
def minutes():
    return recent_minutes()


@pytest.fixture
def ingest(corridor, minutes):
    """Feed the corridor batches as the traffic function would (minute k, lane flows)."""
    from sunflower.container import services

    def feed(k: int, per_lane=None):
        return services().traffic.ingest(batch_for(corridor, f"b{k}", minutes(k), per_lane=per_lane))

    return feed


def _device(api, kind: str, site_id: str = CORRIDOR) -> dict:
    issued = api.data("RegisterDevice", {"input": {"kind": kind, "name": f"{kind} 1", "siteId": site_id}},
                      token=api.token("admin"))["registerDevice"]
    return {"id": from_base64(issued["device"]["id"])[1], "secret": issued["secret"]}


def _post(api, device: dict, body: bytes, path: str = BATCHES_PATH):
    headers = device_signature.signed_headers(device["id"], device["secret"], "POST", path, body, utc_now())
    return api.client.post(path, content=body, headers={**headers, "content-type": "application/json"})


def _get_plan(api, device: dict, controller_id: str | None = None, **extra: str):
    path = f"/devices/controllers/{controller_id or device['id']}/plan"
    headers = device_signature.signed_headers(device["id"], device["secret"], "GET", path, b"", utc_now())
    return api.client.get(path, headers={**headers, **extra})


# --- queries -------------------------------------------------------------------------------------


def test_an_engineer_sees_a_corridors_status_per_intersection(api, engineer, ingest):
    ingest(0)

    corridor = api.data("TrafficCorridor", {"id": CORRIDOR}, token=engineer)["corridor"]

    assert (corridor["corridorId"], corridor["forwardLabel"], corridor["lastBatchId"]) == (CORRIDOR, "EB", "b0")
    assert [i["id"] for i in corridor["intersections"]] == ["J1", "J2", "J3"]
    j1 = corridor["intersections"][0]
    assert 0 < j1["degreeOfSaturation"] < 1.5 and j1["expectedDelayS"] > 0 and j1["flowVph"] > 0
    assert {f["name"] for f in j1["movementFlows"]} == {"EB_T", "WB_T", "EB_L", "NB_T", "SB_T"}
    plan = corridor["currentPlan"]
    assert (plan["version"], plan["source"], plan["inForce"]) == (1, "RETIMED", True)
    assert corridor["bandwidthForwardS"] == plan["bandwidthForwardS"] > 0
    assert corridor["expectedDelayS"] > 0 and corridor["pin"] is None
    assert [p["name"] for p in plan["intersections"][0]["phases"]][:1] == ["P1"]
    # the global id names the same corridor
    again = api.data("TrafficCorridor", {"id": corridor["id"]}, token=engineer)["corridor"]
    assert again["corridorId"] == CORRIDOR


def test_a_corridor_that_does_not_exist_is_null(api, engineer):
    assert api.data("TrafficCorridor", {"id": "nowhere"}, token=engineer)["corridor"] is None


def test_corridors_are_listed_with_their_status_in_a_constant_number_of_reads(api, engineer, corridor, ingest):
    ingest(0)
    for n in range(3):
        api.data("CreateCorridor", {"input": {"corridorJson": corridor.model_copy(update={"id": f"c{n}"})
                                              .model_dump_json()}}, token=engineer)

    connection = api.data("TrafficCorridors", {"first": 10}, token=engineer)["corridors"]

    ids = [e["node"]["corridorId"] for e in connection["edges"]]
    assert sorted(ids) == sorted([CORRIDOR, "c0", "c1", "c2"])
    by_id = {e["node"]["corridorId"]: e["node"] for e in connection["edges"]}
    assert by_id[CORRIDOR]["currentPlan"]["version"] == 1 and by_id["c0"]["currentPlan"] is None


def test_plan_history_pages_newest_first_with_inputs(api, engineer, ingest):
    ingest(0)
    ingest(1, HEAVIER)

    first = api.data("TrafficPlanHistory", {"corridorId": CORRIDOR, "first": 1}, token=engineer)["planHistory"]
    rest = api.data("TrafficPlanHistory", {"corridorId": CORRIDOR, "first": 1,
                                           "after": first["pageInfo"]["endCursor"]}, token=engineer)["planHistory"]

    newest, older = first["edges"][0]["node"], rest["edges"][0]["node"]
    assert (newest["version"], newest["inForce"], older["version"], older["inForce"]) == (2, True, 1, False)
    assert newest["inputs"]["previousVersion"] == 1 and newest["inputs"]["batchIds"] == ["b0", "b1"]
    assert {r["code"] for r in newest["reasons"]} >= {"flows", "bandwidth"}
    assert newest["inputs"]["intersections"][0]["degreeOfSaturation"] > 0
    assert first["pageInfo"]["hasNextPage"] is True


def test_a_plan_exports_as_json_sumo_xml_and_a_diagram_link(api, engineer, ingest):
    from sunflower.container import services
    from sunflower.traffic.export import plan_dict

    ingest(0)

    plan = api.data("TrafficPlanExports", {"id": CORRIDOR}, token=engineer)["corridor"]["currentPlan"]

    assert json.loads(plan["json"]) == plan_dict(services().traffic.current_plan(CORRIDOR)[0])
    assert plan["sumoXml"].count("<tlLogic") == 3 and 'programID="sunflower-v1"' in plan["sumoXml"]
    svg = requests.get(plan["diagramUrl"], timeout=10)
    assert svg.status_code == 200 and b"<svg" in svg.content


def test_reading_corridors_needs_a_traffic_role(api, corridor):
    result = api.run("TrafficCorridor", {"id": CORRIDOR}, token=api.token("resident"))

    assert result["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"


# --- mutations -----------------------------------------------------------------------------------


def test_pin_and_unpin_hold_and_release_the_plan_and_are_audited(api, engineer, ingest):
    ingest(0)
    ingest(1, HEAVIER)

    pinned = api.data("PinPlan", {"input": {"corridorId": CORRIDOR, "version": 1, "reason": "roadworks at J2"}},
                      token=engineer)["pinPlan"]

    assert pinned["__typename"] == "TrafficCorridor"
    assert pinned["currentPlan"]["version"] == 1
    assert (pinned["pin"]["mode"], pinned["pin"]["by"], pinned["pin"]["reason"]) == ("PINNED", "person:eng-1",
                                                                                    "roadworks at J2")
    ingest(2, HEAVIER)  # retiming goes on as a candidate
    held = api.data("TrafficCorridor", {"id": CORRIDOR}, token=engineer)["corridor"]
    assert (held["currentPlan"]["version"], held["candidatePlanVersion"]) == (1, 3)

    released = api.data("UnpinPlan", {"input": {"corridorId": CORRIDOR, "reason": "roadworks done"}},
                        token=engineer)["unpinPlan"]

    assert (released["currentPlan"]["version"], released["pin"]) == (3, None)
    changes = [(e["actor"], e["detail"]["change"]) for e in audit_log() if e["subject_type"] == "traffic_corridor"
               and e["detail"].get("change")]
    assert changes == [("person:eng-1", "pin_plan"), ("person:eng-1", "unpin_plan")]


def test_an_override_with_a_green_under_its_minimum_is_a_validation_error_naming_it(api, engineer, ingest):
    ingest(0)
    plan = json.loads(api.data("TrafficPlanExports", {"id": CORRIDOR}, token=engineer)["corridor"]["currentPlan"]
                      ["json"])
    plan["intersections"][0]["phases"][0]["green_s"] = 1

    result = api.data("OverridePlan", {"input": {"corridorId": CORRIDOR, "planJson": json.dumps(plan),
                                                 "reason": "test"}}, token=engineer)["overridePlan"]

    assert result["__typename"] == "ValidationError"
    assert "intersections[0].phases[0].greenS" in [f["field"] for f in result["fields"]]
    assert api.data("TrafficCorridor", {"id": CORRIDOR}, token=engineer)["corridor"]["currentPlan"]["version"] == 1


def test_an_engineer_overrides_a_plan_with_an_edited_export(api, engineer, ingest):
    ingest(0)
    plan = json.loads(api.data("TrafficPlanExports", {"id": CORRIDOR}, token=engineer)["corridor"]["currentPlan"]
                      ["json"])
    plan["intersections"][2]["offset_s"] = (plan["intersections"][2]["offset_s"] + 10) % plan["cycle_s"]

    result = api.data("OverridePlan", {"input": {"corridorId": CORRIDOR, "planJson": json.dumps(plan),
                                                 "reason": "platoon from the ramp"}}, token=engineer)["overridePlan"]

    assert result["__typename"] == "TrafficCorridor"
    assert (result["currentPlan"]["version"], result["currentPlan"]["source"]) == (2, "MANUAL")
    assert result["pin"]["mode"] == "OVERRIDDEN"
    assert result["currentPlan"]["createdBy"] == "person:eng-1"


def test_only_traffic_engineers_pin(api, corridor, ingest):
    ingest(0)

    result = api.run("PinPlan", {"input": {"corridorId": CORRIDOR, "version": 1, "reason": "x"}},
                     token=api.token("admin"))

    assert result["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"


def test_pinning_a_version_that_does_not_exist_is_not_found(api, engineer, ingest):
    ingest(0)

    result = api.data("PinPlan", {"input": {"corridorId": CORRIDOR, "version": 7, "reason": "x"}},
                      token=engineer)["pinPlan"]

    assert (result["__typename"], result["code"]) == ("NotFoundError", "NOT_FOUND")


def test_a_corridor_that_is_not_json_is_a_validation_error(api, engineer):
    result = api.data("CreateCorridor", {"input": {"corridorJson": '{"id": "x", "intersections": []}'}},
                      token=engineer)["createCorridor"]

    assert (result["__typename"], result["code"]) == ("ValidationError", "INVALID_CORRIDOR")
    assert result["fields"][0]["field"] == "intersections"


# --- device endpoints ----------------------------------------------------------------------------


def _queued() -> list[dict]:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=get_settings().resource("traffic-batches"))["QueueUrl"]
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                               AttributeNames=["All"]).get("Messages", [])


def test_a_sensor_posts_a_batch_that_the_traffic_function_then_ingests(api, corridor, minutes):
    from functions import traffic_batch
    from sunflower.container import services
    from sunflower.local.lambda_context import LambdaContext
    from sunflower.local.pump import sqs_event

    # given
    sensor = _device(api, "SENSOR")
    body = batch_for(corridor, "cabinet-1/0001", minutes(0)).model_dump_json().encode()

    # when
    response = _post(api, sensor, body)

    # then it is accepted for processing and waits on the queue, its batch id beside it
    assert (response.status_code, response.json()) == (202, {"batchId": "cabinet-1/0001"})
    (message,) = _queued()
    assert message["Body"].encode() == body
    assert message["MessageAttributes"]["batchId"]["StringValue"] == "cabinet-1/0001"
    # and the traffic function turns it into the corridor's first plan
    queue_arn = f"arn:aws:sqs:{get_settings().region}:123456789012:{get_settings().resource('traffic-batches')}"
    context = LambdaContext.for_invocation("trafficBatch", region=get_settings().region, timeout_s=60)
    assert traffic_batch.handler(sqs_event([message], queue_arn, get_settings().region), context) == {
        "batchItemFailures": []}
    assert services().traffic.current_plan(CORRIDOR)[0].version == 1


def test_a_malformed_batch_is_refused_at_the_door_naming_the_fields(api, corridor):
    sensor = _device(api, "SENSOR")

    response = _post(api, sensor, b'{"batch_id": "x", "corridor_id": "hanan2-test", "readings": []}')

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "MALFORMED_BATCH"
    assert response.json()["error"]["fields"][0]["field"] == "readings"
    assert _queued() == []


@pytest.mark.parametrize("kind, site", [("GATE", CORRIDOR), ("SENSOR", "another-corridor")])
def test_only_a_sensor_of_the_corridor_may_post_its_batches(api, corridor, minutes, kind, site):
    device = _device(api, kind, site)

    response = _post(api, device, batch_for(corridor, "b", minutes(0)).model_dump_json().encode())

    assert response.status_code == 403
    assert _queued() == []


def test_an_unsigned_batch_is_refused(api, corridor, minutes):
    response = api.client.post(BATCHES_PATH, content=batch_for(corridor, "b", minutes(0)).model_dump_json())

    assert response.status_code == 401
    assert _queued() == []


def test_a_controller_fetches_the_plan_with_an_etag_and_gets_304_until_it_changes(api, ingest):
    controller = _device(api, "SIGNAL_CONTROLLER")
    ingest(0)

    first = _get_plan(api, controller)

    assert first.status_code == 200
    etag = first.headers["etag"]
    assert first.json()["version"] == 1 and [i["id"] for i in first.json()["intersections"]] == ["J1", "J2", "J3"]
    assert set(first.json()["intersections"][0]["phases"][0]) >= {"name", "green_s", "yellow_s", "all_red_s",
                                                                  "movements"}
    assert first.json()["intersections"][0]["phases"][0]["coordinated"] is True  # P1 carries the band
    # when it asks again with the ETag it has
    same = _get_plan(api, controller, **{"If-None-Match": etag})
    assert (same.status_code, same.content, same.headers["etag"]) == (304, b"", etag)
    # and once the corridor is retimed, it gets the new plan
    ingest(1, HEAVIER)
    changed = _get_plan(api, controller, **{"If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["version"] == 2 and changed.headers["etag"] != etag


def test_a_controller_asks_only_for_itself_and_only_a_controller_may(api, ingest):
    controller = _device(api, "SIGNAL_CONTROLLER")
    sensor = _device(api, "SENSOR")
    ingest(0)

    assert _get_plan(api, controller, controller_id=sensor["id"]).status_code == 403
    assert _get_plan(api, sensor).status_code == 403


def test_a_controller_of_a_corridor_without_a_plan_gets_404(api, corridor):
    controller = _device(api, "SIGNAL_CONTROLLER")

    response = _get_plan(api, controller)

    assert response.status_code == 404


def test_a_corridor_imported_from_sumo_starts_with_the_plan_its_signals_run(api, engineer):
    pytest.importorskip("sumolib", reason="importing a SUMO network needs the [sim] extra")
    from sunflower.traffic import export, sumo

    # given what `sunflower traffic import-sumo hanan2.net.xml --plan-out plan.json` writes
    net = Path(sumo.__file__).parent / "scenarios" / "hanan2" / "hanan2.net.xml"
    corridor = sumo.import_corridor(net)
    plan_out = export.plan_json(sumo.imported_plan(corridor, net))

    # when
    created = api.data("CreateCorridor", {"input": {"corridorJson": corridor.model_dump_json(),
                                                    "initialPlanJson": plan_out}}, token=engineer)["createCorridor"]

    # then its signals' own program is plan v0, in force, exportable back to SUMO
    assert created["__typename"] == "TrafficCorridor", created
    assert (created["currentPlan"]["version"], created["currentPlan"]["source"]) == (0, "IMPORTED")
    assert len(created["intersections"]) == len(corridor.intersections) >= 7
    exports = api.data("TrafficPlanExports", {"id": corridor.id}, token=engineer)["corridor"]["currentPlan"]
    assert exports["sumoXml"].count("<tlLogic") == len(corridor.intersections)
    assert json.loads(exports["json"])["intersections"] == json.loads(plan_out)["intersections"]
