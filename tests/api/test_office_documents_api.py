"""公文 official documents (and paperless meetings) through the real schema: the outgoing flow with two
departments countersigning in parallel, numbers, receipts, attachments for participants only, incoming with
an instruction that becomes a supervision item, and clear errors that change nothing."""

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import requests

from sunflower.auth.principals import SYSTEM

SHANGHAI = ZoneInfo("Asia/Shanghai")
PDF = b"%PDF-1.7\n" + b"1" * 2048


@pytest.fixture
def people(api):
    """The chart: district government (mayor) > general office (go-1), housing (h-1), water (w-1), finance (f-1),
    education (e-1), supervision office (s-1), archives (x-1); a token for each."""
    from sunflower.container import services

    office = services().office
    org = office.org
    org.add_department(SYSTEM, "区政府", code="gov")
    for code, name in [("general-office", "办公室"), ("housing", "住建局"), ("water", "水务局"), ("finance", "财政局"),
                       ("education", "教育局"), ("supervision-office", "督查室"), ("archives", "档案馆")]:
        org.add_department(SYSTEM, name, code=code, parent_id="gov")
    for ident, department in [("mayor", "gov"), ("go-1", "general-office"), ("h-1", "housing"), ("w-1", "water"),
                              ("f-1", "finance"), ("e-1", "education"), ("s-1", "supervision-office"), ("x-1", "archives")]:
        org.add_staff(SYSTEM, ident, ident, department)
    org.set_leader(SYSTEM, "gov", "mayor")
    tokens = {who: api.token("official", user=who) for who in ("mayor", "go-1", "h-1", "w-1", "f-1", "e-1", "x-1")}
    return tokens | {"auditor": api.token("auditor", user="aud-1"), "admin": api.token("admin", user="admin-1")}


def ok(api, operation: str, variables: dict, token: str, typename: str = "OfficialDocument") -> dict:
    payload = next(iter(api.data(operation, variables, token=token).values()))
    assert payload["__typename"] == typename, payload
    return payload


def refused(api, operation: str, variables: dict, token: str) -> dict:
    payload = next(iter(api.data(operation, variables, token=token).values()))
    assert payload["__typename"].endswith("Error"), payload
    return payload


def draft(api, people, **overrides) -> dict:
    values = {"title": "关于做好防汛工作的通知", "organCode": "平政发", "signerId": "mayor",
              "recipients": ["water", "education"], "countersignDepartments": ["water", "finance"]}
    return ok(api, "DraftOutgoingDocument", {"input": values | overrides}, people["h-1"])


def document(api, token: str, document_id: str) -> dict:
    return api.data("OfficialDocument", {"id": document_id}, token=token)["officialDocument"]


def upload(api, token: str, document_id: str, body: bytes = PDF) -> dict:
    ticket = ok(api, "RequestDocumentAttachmentUpload", {"input": {
        "documentId": document_id, "fileName": "C:\\草稿\\正文 (定稿).pdf", "contentType": "application/pdf",
        "size": len(body)}}, token, "FileUpload")
    headers = {h["name"]: h["value"] for h in ticket["headers"]}
    assert requests.put(ticket["url"], data=body, headers=headers, timeout=10).status_code == 200
    return ticket


# --- outgoing -------------------------------------------------------------------------------------


def test_the_outgoing_flow_countersigned_by_two_departments_in_parallel(api, people):
    created = draft(api, people)
    doc_id = created["id"]
    assert (created["status"], created["number"], created["drafterId"]) == ("DRAFTING", None, "h-1")

    # the drafter attaches the text and submits; the general office reviews
    ticket = upload(api, people["h-1"], doc_id)
    assert ticket["key"].endswith("/正文_定稿.pdf")
    confirmed = ok(api, "ConfirmDocumentAttachment", {"input": {"documentId": doc_id, "attachmentId": ticket["fileId"]}},
                   people["h-1"], "DocumentAttachment")
    assert (confirmed["status"], confirmed["fileName"]) == ("READY", "正文_定稿.pdf")
    ok(api, "SubmitDocumentDraft", {"input": {"documentId": doc_id, "note": "请核稿"}}, people["h-1"])
    reviewed = ok(api, "ReviewDocument", {"input": {"documentId": doc_id, "approved": True}}, people["go-1"])
    assert reviewed["status"] == "COUNTERSIGNING"

    # both departments hold a countersigning task at the same time
    tasks = document(api, people["h-1"], doc_id)["workflow"]["openTasks"]
    assert sorted((t["elementId"][:-2], t["assignees"][0]["id"]) for t in tasks) == [
        ("countersign", "finance"), ("countersign", "water")]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(
            lambda who: api.data("CountersignDocument", {"input": {"documentId": doc_id, "agree": True, "opinion": who}},
                                 token=people[who])["countersignDocument"],
            ["w-1", "f-1"],
        ))
    assert all(r["__typename"] == "OfficialDocument" for r in results), results
    assert document(api, people["h-1"], doc_id)["status"] == "SIGNING"

    # the mayor signs it off: it is numbered; the general office distributes it
    signed = ok(api, "SignOffDocument", {"input": {"documentId": doc_id, "approved": True, "opinion": "同意"}}, people["mayor"])
    year = datetime.now(SHANGHAI).year
    assert (signed["status"], signed["number"]) == ("DISTRIBUTING", f"平政发〔{year}〕1号")
    distributed = ok(api, "DistributeDocument", {"input": {"documentId": doc_id}}, people["go-1"])
    assert [r["departmentId"] for r in distributed["receipts"]] == ["water", "education"]
    for who in ("w-1", "e-1"):
        ok(api, "AcknowledgeDocument", {"input": {"documentId": doc_id}}, people[who])
    again = refused(api, "AcknowledgeDocument", {"input": {"documentId": doc_id}}, people["e-1"])
    assert again["__typename"] == "InvalidStateError"

    done = document(api, people["e-1"], doc_id)  # a recipient reads it now
    assert done["status"] == "COMPLETED"
    history = done["history"]
    assert [h["step"] for h in history] == ["draft", "review", "countersign", "countersign", "sign", "distribute",
                                            "acknowledge", "acknowledge"]
    assert sorted((h["actor"], h["opinion"]) for h in history[2:4]) == [("person:f-1", "f-1"), ("person:w-1", "w-1")]
    register = api.data("DocumentNumberRegister", {"series": "平政发", "year": year}, token=people["go-1"])
    assert [e["node"]["number"] for e in register["documentNumberRegister"]["edges"]] == [f"平政发〔{year}〕1号"]
    listed = api.data("OfficialDocuments", {"kind": "OUTGOING"}, token=people["f-1"])["officialDocuments"]
    assert [e["node"]["id"] for e in listed["edges"]] == [doc_id]

    # the recipient downloads the attachment; a department that took no part is refused
    link = ok(api, "RequestDocumentAttachmentDownload", {"input": {"documentId": doc_id, "attachmentId": ticket["fileId"]}},
              people["e-1"], "FileDownload")
    assert requests.get(link["url"], timeout=10).content == PDF


def test_a_non_participant_is_refused_an_attachment_url(api, people):
    doc_id = draft(api, people)["id"]
    ticket = upload(api, people["h-1"], doc_id)
    ok(api, "ConfirmDocumentAttachment", {"input": {"documentId": doc_id, "attachmentId": ticket["fileId"]}},
       people["h-1"], "DocumentAttachment")
    ref = {"input": {"documentId": doc_id, "attachmentId": ticket["fileId"]}}
    for who in ("x-1", "w-1", "auditor"):
        denied = refused(api, "RequestDocumentAttachmentDownload", ref, people[who])
        assert denied["__typename"] == "PermissionDeniedError", (who, denied)
    upload_refused = refused(api, "RequestDocumentAttachmentUpload", {"input": {
        "documentId": doc_id, "fileName": "a.pdf", "contentType": "application/pdf", "size": 10}}, people["x-1"])
    assert upload_refused["__typename"] == "PermissionDeniedError"
    # a stranger does not see the document at all; an auditor sees the record but not its files
    stranger = api.run("OfficialDocument", {"id": doc_id}, token=people["x-1"])
    assert (stranger["data"]["officialDocument"], stranger["errors"][0]["extensions"]["code"]) == (None, "PERMISSION_DENIED")
    audited = document(api, people["auditor"], doc_id)
    assert (audited["title"], audited["attachments"]) == ("关于做好防汛工作的通知", None)


def test_bad_input_gets_clear_errors_and_changes_nothing(api, people):
    bad = refused(api, "DraftOutgoingDocument", {"input": {
        "title": "", "organCode": "乱发", "signerId": "ghost", "recipients": [], "countersignDepartments": ["nowhere"]}},
        people["h-1"])
    assert bad["__typename"] == "ValidationError"
    assert sorted(f["field"] for f in bad["fields"]) == [
        "countersignDepartments", "organCode", "recipients", "signerId", "title"]
    assert api.data("OfficialDocuments", {"kind": "OUTGOING"}, token=people["auditor"])["officialDocuments"]["edges"] == []

    doc_id = draft(api, people)["id"]
    before = document(api, people["h-1"], doc_id)
    # not the drafter's step; not a document id; an opinion too long; a file type not accepted
    assert refused(api, "SubmitDocumentDraft", {"input": {"documentId": doc_id}}, people["w-1"])["__typename"] == \
        "PermissionDeniedError"
    wrong = refused(api, "SubmitDocumentDraft", {"input": {"documentId": before["workflow"]["id"]}}, people["h-1"])
    assert (wrong["__typename"], wrong["fields"][0]["field"]) == ("ValidationError", "documentId")
    ok(api, "SubmitDocumentDraft", {"input": {"documentId": doc_id}}, people["h-1"])
    long = refused(api, "ReviewDocument", {"input": {"documentId": doc_id, "approved": True, "opinion": "长" * 2001}},
                   people["go-1"])
    assert (long["__typename"], long["fields"][0]["field"]) == ("ValidationError", "opinion")
    exe = refused(api, "RequestDocumentAttachmentUpload", {"input": {
        "documentId": doc_id, "fileName": "run.exe", "contentType": "application/x-msdownload", "size": 10}}, people["h-1"])
    assert [f["field"] for f in exe["fields"]] == ["contentType"]
    after = document(api, people["h-1"], doc_id)
    assert (after["status"], after["workflow"]["openTasks"][0]["elementId"]) == ("IN_REVIEW", "review")
    assert after["attachments"] == []


# --- incoming -------------------------------------------------------------------------------------


def test_an_incoming_document_whose_instruction_becomes_a_supervision_item(api, people):
    today = datetime.now(SHANGHAI).date()
    registered = ok(api, "RegisterIncomingDocument", {"input": {
        "title": "市政府关于老旧小区改造的通知", "sourceOrgan": "市人民政府", "sourceNumber": "市政发〔2026〕8号",
        "receivedOn": today.isoformat()}}, people["go-1"])
    doc_id = registered["id"]
    assert (registered["status"], registered["registrationNumber"]) == ("PROPOSING", f"平政收〔{today.year}〕1号")
    ok(api, "ProposeDocumentHandling", {"input": {"documentId": doc_id, "proposal": "请区长阅示", "leaderId": "mayor",
                                                  "handlingDepartment": "housing"}}, people["go-1"])

    # a deadline in the past refuses the whole instruction, naming the field
    past = refused(api, "InstructDocument", {"input": {"documentId": doc_id, "instruction": "抓紧落实",
                                                       "supervision": {"deadline": (today - timedelta(days=1)).isoformat()}}},
                   people["mayor"])
    assert (past["__typename"], [f["field"] for f in past["fields"]]) == ("ValidationError", ["supervision.deadline"])
    assert document(api, people["go-1"], doc_id)["status"] == "INSTRUCTING"

    deadline = (today + timedelta(days=30)).isoformat()
    instructed = ok(api, "InstructDocument", {"input": {
        "documentId": doc_id, "instruction": "请住建局抓紧落实", "supervision": {"deadline": deadline,
                                                                          "assistingDepartments": ["water"]}}},
        people["mayor"])
    item = instructed["supervisionItem"]
    assert (instructed["status"], item["source"], item["sourceRef"], item["responsibleDepartment"], item["deadline"],
            item["status"]) == ("HANDLING", "LEADER_INSTRUCTION", f"平政收〔{today.year}〕1号", "housing", deadline,
                                "ASSIGNING")
    ok(api, "ReportDocumentHandled", {"input": {"documentId": doc_id, "result": "已制定方案"}}, people["h-1"])
    filed = ok(api, "FileDocument", {"input": {"documentId": doc_id, "retention": "YEARS_30"}}, people["go-1"])
    assert (filed["status"], filed["retention"], filed["instruction"]) == ("FILED", "YEARS_30", "请住建局抓紧落实")


# --- meetings through the same schema ----------------------------------------------------------------


def test_a_meeting_through_the_api_room_double_booking_refused_and_agenda_items_per_attendee(api, people):
    ok(api, "AddMeetingRoom", {"input": {"code": "r301", "name": "301 会议室", "capacity": 10}}, people["admin"], "MeetingRoom")
    start = (datetime.now(SHANGHAI) + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    meeting_input = {"title": "区长办公会", "roomId": "r301", "startsAt": start.isoformat(),
                     "endsAt": (start + timedelta(hours=2)).isoformat(), "attendees": ["h-1", "w-1"]}
    meeting = ok(api, "ScheduleMeeting", {"input": meeting_input}, people["mayor"], "Meeting")
    clash = refused(api, "ScheduleMeeting", {"input": meeting_input | {"title": "冲突"}}, people["go-1"])
    assert clash["__typename"] == "InvalidStateError" and "already booked" in clash["message"]
    item = ok(api, "AddAgendaItem", {"input": {"meetingId": meeting["id"], "title": "预算", "invitees": ["h-1"]}},
              people["mayor"], "AgendaItem")
    ok(api, "AddAgendaItem", {"input": {"meetingId": meeting["id"], "title": "防汛", "invitees": ["w-1"]}},
       people["mayor"], "AgendaItem")
    seen = api.data("Meeting", {"id": meeting["id"]}, token=people["h-1"])["meeting"]
    assert [i["title"] for i in seen["agenda"]] == ["预算"]
    bookings = api.data("MeetingRoomBookings", {"roomId": "r301", "day": start.date().isoformat()},
                        token=people["x-1"])["meetingRoomBookings"]
    assert len(bookings) == 1
    early = refused(api, "RecordMeetingDecision", {"input": {"meetingId": meeting["id"], "text": "决定", "itemId": item["id"]}},
                    people["mayor"])
    assert early["__typename"] == "InvalidStateError"  # it has not begun
    assert api.data("MyMeetings", {}, token=people["w-1"])["myMeetings"]["edges"][0]["node"]["title"] == "区长办公会"
    assert api.run("Meeting", {"id": meeting["id"]}, token=people["x-1"]).get("errors")


def test_an_unsigned_caller_is_refused(api, people):
    result = api.run("OfficialDocuments", {"kind": "OUTGOING"})
    assert (result["data"], result["errors"][0]["extensions"]["code"]) == (None, "UNAUTHENTICATED")
