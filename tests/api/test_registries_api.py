"""The three registries as one graph, through the real schema: who sees what, and at what cost."""

import random
from urllib.parse import quote

import pytest

from sunflower.auth.principals import SYSTEM
from sunflower.registries import synthetic
from sunflower.registries.service import ImportKind, Row

COMMUNITY, OTHER_COMMUNITY = "pf-youxie-xingfu", "pf-xinjiang-hangtian"


@pytest.fixture
def district(local_cloud):
    """A household of three in one community, a neighbour elsewhere, an entity, public and unpublished credit."""
    from sunflower.container import services

    rng = random.Random(7)
    ids = synthetic.unique_id_numbers(rng, 4)
    code = synthetic.credit_code(rng)
    registries = services().registries
    people = [
        ("王建国", ids[0], "户主", COMMUNITY),
        ("李秀英", ids[1], "配偶", COMMUNITY),
        ("王小明", ids[2], "子", COMMUNITY),
        ("赵敏", ids[3], "", OTHER_COMMUNITY),
    ]
    rows = [
        Row(i + 2, {"name": n, "id_number": number, "phone": "13904510000", "current_community_id": c,
                    "current_district": "平房区", "registered_district": "平房区", "registered_detail": "友协大街1号",
                    **({"household_no": "230108-0001", "relationship": rel} if rel else {})})
        for i, (n, number, rel, c) in enumerate(people)
    ]
    outcomes = registries.import_rows(SYSTEM, ImportKind.PERSON, rows, "test setup")
    assert all(o.status.value == "accepted" for o in outcomes), outcomes
    registries.import_rows(SYSTEM, ImportKind.ENTITY, [Row(2, {
        "name": "哈尔滨平房精密机械有限公司", "credit_code": code, "legal_rep_id_number": ids[0],
        "industry_code": "C3411", "registered_capital": "500", "entity_type": "有限责任公司"})], "test setup")
    registries.import_rows(SYSTEM, ImportKind.CREDIT, [
        Row(2, {"subject": code, "category": "行政处罚", "decided_on": "2026-03-01",
                "department": "平房区市场监督管理局", "decision_number": "平市监罚〔2026〕12号"}),
        Row(3, {"subject": ids[0], "category": "欠费", "decided_on": "2026-05-01",
                "department": "平房区供热办", "decision_number": "平供热〔2026〕3号"}),
        Row(4, {"subject": code, "category": "欠费", "decided_on": "2026-07-01",
                "department": "平房区供热办", "decision_number": "平供热〔2026〕9号"}),
    ], "test setup")
    return {"ids": ids, "code": code}


def test_an_official_stating_a_purpose_sees_the_whole_person_and_their_graph(api, district):
    token = api.token("official", user="off-1")
    api.client.headers["X-Purpose"] = quote("低保资格复核 case 2026-77")

    person = api.data("PersonByIdNumber", {"idNumber": district["ids"][0]}, token=token)["personByIdNumber"]

    assert person["masked"] is False and person["idNumber"] == district["ids"][0]
    assert person["registeredAddress"]["line"] == "平房区友协大街1号"
    members = {m["person"]["name"]: m["relationship"] for m in person["household"]["members"]}
    assert members == {"王建国": "HEAD", "李秀英": "SPOUSE", "王小明": "CHILD"}
    assert [e["node"]["creditCode"] for e in person["legalRepresentativeOf"]["edges"]] == [district["code"]]
    assert [e["node"]["category"] for e in person["creditRecords"]["edges"]] == ["ARREARS"]
    assert person["creditProfile"]["score"] == 95


def test_community_staff_see_their_own_residents_masked_and_no_one_else(api, district):
    token = api.token("community_staff", user="staff-1", community=COMMUNITY)

    edges = api.data("Persons", {"communityId": COMMUNITY}, token=token)["persons"]["edges"]
    outsider = api.data("PersonByIdNumber", {"idNumber": district["ids"][3]}, token=token)["personByIdNumber"]

    assert sorted(e["node"]["name"] for e in edges) == ["李秀英", "王小明", "王建国"]
    for edge in edges:
        node = edge["node"]
        assert node["masked"] is True
        assert node["idNumber"][:6] == "230108" and node["idNumber"][6:14] == "********"
        assert node["birthDate"] is None and node["registeredAddress"] is None
        assert node["phone"] == "139****0000"
    assert outsider is None


def test_a_resident_sees_only_themselves(api, district):
    from sunflower.container import services

    me = services().registries.person_by_id_number(SYSTEM, district["ids"][2], "test").person.id
    token = api.token("resident", user=me)

    mine = api.data("PersonByIdNumber", {"idNumber": district["ids"][2]}, token=token)["personByIdNumber"]
    father = api.data("PersonByIdNumber", {"idNumber": district["ids"][0]}, token=token)["personByIdNumber"]

    assert mine["name"] == "王小明" and mine["masked"] is False
    assert father is None


def test_anyone_signed_in_sees_an_entity_its_public_credit_but_not_the_representative(api, district):
    token = api.token("traffic_engineer", user="eng-1")

    entity = api.data("EntityByCreditCode", {"creditCode": district["code"]}, token=token)["entityByCreditCode"]

    assert entity["legalRepresentativeName"] == "王建国"
    assert entity["legalRepresentative"] is None
    assert entity["creditProfile"]["grade"] == "C"  # the penalty and the unpublished arrears both weigh
    factors = [f["description"] for f in entity["creditProfile"]["factors"]]
    assert factors == ["administrative penalty: 平市监罚〔2026〕12号"]  # the arrears' decision stays unshown
    assert [e["node"]["category"] for e in entity["creditRecords"]["edges"]] == ["ADMINISTRATIVE_PENALTY"]


def test_police_with_a_purpose_see_every_factor_of_an_entity(api, district):
    api.client.headers["X-Purpose"] = quote("经侦协查 2026-31")

    entity = api.data("EntityByCreditCode", {"creditCode": district["code"]}, token=api.token("police", user="p-3"))

    factors = [f["description"] for f in entity["entityByCreditCode"]["creditProfile"]["factors"]]
    assert len(factors) == 2 and any("平供热〔2026〕9号" in f for f in factors)


def test_unpublished_credit_records_stay_hidden_from_the_unentitled(api, district):
    token = api.token("official", user="off-2")  # no purpose stated

    person = api.data("PersonByIdNumber", {"idNumber": district["ids"][0]}, token=token)["personByIdNumber"]

    assert person["masked"] is True
    assert person["creditRecords"]["edges"] == []
    assert person["creditProfile"] is None


def test_every_person_read_is_audited_with_who_and_why(api, district):
    token = api.token("police", user="officer-9")
    api.client.headers["X-Purpose"] = quote("刑案协查 2026-0412")
    api.data("Persons", {"communityId": COMMUNITY}, token=token)

    entries = api.data(
        "AuditEntries", {"filter": {"actor": "person:officer-9"}}, token=api.token("auditor", user="aud")
    )["auditEntries"]["edges"]

    assert len(entries) == 3
    assert {e["node"]["purpose"] for e in entries} == {"刑案协查 2026-0412"}
    assert {e["node"]["action"] for e in entries} == {"READ"}


def test_an_invalid_id_number_says_which_rule_failed_and_nothing_is_written(api, district):
    token = api.token("official", user="off-3")
    bad = district["ids"][0][:17] + ("0" if district["ids"][0][17] != "0" else "1")

    result = api.data("RegisterPerson", {"input": {"name": "钱七", "idNumber": bad}}, token=token)["registerPerson"]

    assert result["__typename"] == "ValidationError"
    assert result["fields"][0]["field"] == "idNumber"
    assert "check character" in result["fields"][0]["message"]
    assert api.data("Persons", {"namePrefix": "钱"}, token=token)["persons"]["edges"] == []


def test_registering_an_existing_id_number_is_already_exists(api, district):
    token = api.token("official", user="off-4")

    result = api.data("RegisterPerson", {"input": {"name": "王建国", "idNumber": district["ids"][0]}}, token=token)

    assert result["registerPerson"]["__typename"] == "AlreadyExistsError"


def test_community_staff_cannot_register_residents_of_another_community(api, district):
    token = api.token("community_staff", user="staff-2", community=COMMUNITY)
    number = synthetic.id_number(random.Random(99))

    result = api.data("RegisterPerson", {"input": {
        "name": "孙八", "idNumber": number, "currentAddress": {"communityId": OTHER_COMMUNITY}}}, token=token)

    assert result["registerPerson"]["__typename"] == "PermissionDeniedError"


def test_merging_duplicates_moves_the_duplicates_entities_to_the_kept_record(api, district):
    from sunflower.container import services

    token = api.token("official", user="off-5")
    api.client.headers["X-Purpose"] = quote("去重")
    keep = api.data("PersonByIdNumber", {"idNumber": district["ids"][1]}, token=token)["personByIdNumber"]["id"]
    duplicate = api.data("PersonByIdNumber", {"idNumber": district["ids"][0]}, token=token)["personByIdNumber"]["id"]

    merged = api.data("MergePersons", {"keepId": keep, "duplicateId": duplicate}, token=token)["mergePersons"]

    assert merged["__typename"] == "Person"
    entity = services().registries.entity_by_code(SYSTEM, district["code"])
    assert entity.legal_rep_name == "李秀英"
    gone = api.data("PersonByIdNumber", {"idNumber": district["ids"][0]}, token=token)["personByIdNumber"]
    assert gone["status"] == "MERGED"


def _dynamodb_calls(monkeypatch) -> list[str]:
    from pynamodb.connection.base import Connection

    calls: list[str] = []
    original = Connection._make_api_call

    def counting(self, operation_name, operation_kwargs, *args, **kwargs):
        calls.append(operation_name)
        return original(self, operation_name, operation_kwargs, *args, **kwargs)

    monkeypatch.setattr(Connection, "_make_api_call", counting)
    return calls


@pytest.mark.parametrize("count", [5, 30])
def test_listing_entities_with_representatives_and_profiles_costs_the_same_requests_at_any_length(
    api, monkeypatch, count, local_cloud
):
    from sunflower.container import services

    rng = random.Random(count)
    ids, codes = synthetic.unique_id_numbers(rng, count), synthetic.unique_credit_codes(rng, count)
    registries = services().registries
    registries.import_rows(SYSTEM, ImportKind.PERSON, [Row(i, {"name": f"周{i}", "id_number": n}) for i, n in enumerate(ids)], "setup")
    registries.import_rows(SYSTEM, ImportKind.ENTITY, [
        Row(i, {"name": f"平房{i:03d}号商贸有限公司", "credit_code": c, "legal_rep_id_number": ids[i]})
        for i, c in enumerate(codes)], "setup")
    token = api.token("police", user="officer-1")
    api.client.headers["X-Purpose"] = quote("经侦 2026-9")
    calls = _dynamodb_calls(monkeypatch)

    edges = api.data("EntitiesWithRepresentatives", {"namePrefix": "平房", "first": 50}, token=token)["entities"]["edges"]

    assert len(edges) == count
    assert all(e["node"]["legalRepresentative"]["name"].startswith("周") for e in edges)
    # one Query for the page, one BatchGetItem each for people and profiles, and the audit entries
    # of the people read: GetItem of the chain head and one transaction per 99 entries
    assert sorted(calls) == sorted(["Query", "BatchGetItem", "BatchGetItem", "GetItem", "TransactWriteItems"])


# --- the police watchlist ------------------------------------------------------------------------


def _person_id(api, id_number: str) -> str:
    token = api.token("police", user="lookup")
    return api.data("PersonByIdNumber", {"idNumber": id_number}, token=token)["personByIdNumber"]["id"]


def _set_watchlist(api, token: str, person_id: str, watchlisted: bool, reason: str = "网上追逃 A2026-17") -> dict:
    return api.run("SetWatchlist", {"input": {"personId": person_id, "watchlisted": watchlisted, "reason": reason}},
                   token=token)


def test_the_police_put_a_person_on_the_watchlist_and_take_them_off_it(api, district):
    # given a police officer stating a case, and a resident
    api.client.headers["X-Purpose"] = quote("刑侦 2026-0113")
    token = api.token("police", user="officer-7")
    person_id = _person_id(api, district["ids"][0])

    # when they flag the resident, then the answer and every later read show the flag
    flagged = _set_watchlist(api, token, person_id, True)["data"]["setWatchlist"]
    assert (flagged["__typename"], flagged["id"], flagged["watchlisted"]) == ("Person", person_id, True)
    read = api.data("PersonByIdNumber", {"idNumber": district["ids"][0]}, token=token)["personByIdNumber"]
    assert read["watchlisted"] is True

    # and when they clear it, it is cleared
    cleared = _set_watchlist(api, token, person_id, False, "A2026-17 结案")["data"]["setWatchlist"]
    assert cleared["watchlisted"] is False
    read = api.data("PersonByIdNumber", {"idNumber": district["ids"][0]}, token=token)["personByIdNumber"]
    assert read["watchlisted"] is False


def test_the_watchlist_change_is_audited_with_its_reason(api, district):
    api.client.headers["X-Purpose"] = quote("刑侦 2026-0113")
    person_id = _person_id(api, district["ids"][1])

    _set_watchlist(api, api.token("police", user="officer-8"), person_id, True, "A2026-18")

    entries = api.data(
        "AuditEntries", {"filter": {"actor": "person:officer-8"}}, token=api.token("auditor", user="aud")
    )["auditEntries"]["edges"]
    assert [(e["node"]["action"], e["node"]["purpose"]) for e in entries] == [("UPDATE", "刑侦 2026-0113")]


def test_a_watchlist_change_without_a_reason_is_a_validation_error(api, district):
    person_id = _person_id(api, district["ids"][0])

    result = _set_watchlist(api, api.token("police", user="officer-9"), person_id, True, "  ")["data"]["setWatchlist"]

    assert result["__typename"] == "ValidationError"
    assert [f["field"] for f in result["fields"]] == ["reason"]


@pytest.mark.parametrize("role", ["property_manager", "community_staff", "official"])
def test_other_roles_cannot_set_the_watchlist_and_see_the_flag_as_null(api, district, role):
    # given a flagged resident of COMMUNITY
    person_id = _person_id(api, district["ids"][0])
    _set_watchlist(api, api.token("police", user="officer-7"), person_id, True)
    token = api.token(role, user=f"{role}-1", community=COMMUNITY)

    # when someone of another role tries to clear the flag, they are refused
    refused = _set_watchlist(api, token, person_id, False)
    assert refused["data"] is None
    assert refused["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"

    # and when they read the resident, the flag is null: they cannot tell flagged from not flagged
    api.client.headers["X-Purpose"] = quote("走访 2026-5")
    edges = api.data("Persons", {"communityId": COMMUNITY}, token=token)["persons"]["edges"]
    assert len(edges) == 3
    assert {e["node"]["watchlisted"] for e in edges} == {None}
    assert services_person(district["ids"][0]).watchlisted is True


def services_person(id_number: str):
    from sunflower.container import services

    return services().registries.person_by_id_number(SYSTEM, id_number, "test check").person
