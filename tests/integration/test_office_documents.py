"""公文 Official documents on the embedded cloud: outgoing with parallel countersigning, numbers, receipts,
incoming with a leader's instruction that becomes a supervision item, and attachments for participants only."""

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta

import pytest
import requests
from factories import FakeClock

from sunflower.auth.principals import SYSTEM, Principal, Role
from sunflower.aws.clients import client
from sunflower.common.errors import InvalidState, NotFound, PermissionDenied, ValidationFailed
from sunflower.office.documents.models import (
    AttachmentStatus,
    DocumentKind,
    DocumentNumber,
    DocumentStatus,
    Retention,
    SupervisionRequest,
    safe_file_name,
)
from sunflower.office.documents.service import RECEIPT
from sunflower.office.engine.models import InboxFilter
from sunflower.office.supervision.models import SourceKind, SupervisionStatus
from sunflower.office.wiring import build_office

pytestmark = pytest.mark.usefixtures("local_cloud")

ADMIN = Principal("admin-1", roles=frozenset({Role.ADMIN}))
AUDITOR = Principal("audit-1", roles=frozenset({Role.AUDITOR}))
PDF = b"%PDF-1.7\n" + b"0" * 1000


def official(ident: str) -> Principal:
    return Principal(ident, roles=frozenset({Role.OFFICIAL}))


DRAFTER, CLERK, MAYOR = official("h-1"), official("go-1"), official("mayor")
WATER, FINANCE, EDUCATION, OUTSIDER = official("w-1"), official("f-1"), official("e-1"), official("x-1")


def district(y, m, d, h=10, minute=0) -> datetime:
    return datetime(y, m, d, h, minute, tzinfo=UTC) - timedelta(hours=8)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(district(2026, 3, 2))  # a Monday


@pytest.fixture
def office(clock):
    """District government (mayor) > general office (go-1), housing (h-1), water (w-1), finance (f-1),
    education (e-1), supervision office (s-1); x-1 sits in the general office's neighbour, archives."""
    services = build_office(clock=clock)
    org = services.org
    org.add_department(ADMIN, "区政府", code="gov")
    for code, name in [("general-office", "办公室"), ("housing", "住建局"), ("water", "水务局"), ("finance", "财政局"),
                       ("education", "教育局"), ("supervision-office", "督查室"), ("archives", "档案馆")]:
        org.add_department(ADMIN, name, code=code, parent_id="gov")
    for ident, department in [("mayor", "gov"), ("go-1", "general-office"), ("h-1", "housing"), ("w-1", "water"),
                              ("f-1", "finance"), ("e-1", "education"), ("s-1", "supervision-office"), ("x-1", "archives")]:
        org.add_staff(ADMIN, ident, ident, department)
    org.set_leader(ADMIN, "gov", "mayor")
    services.supervision.install(ADMIN)
    services.documents.install(ADMIN)
    return services


def draft(office, **overrides):
    values = {"title": "关于做好防汛工作的通知", "organ_code": "平政发", "signer_id": "mayor",
              "recipients": ["water", "education"], "countersign_departments": ["water", "finance"]}
    return office.documents.draft_outgoing(DRAFTER, **(values | overrides))


def through_review(office, document_id: str):
    office.documents.submit_draft(DRAFTER, document_id, note="请核稿")
    return office.documents.review(CLERK, document_id, approved=True, opinion="格式规范")


def signed(office, document_id: str):
    """Drafted document -> reviewed -> countersigned by water and finance -> signed off."""
    through_review(office, document_id)
    office.documents.countersign(WATER, document_id, agree=True, opinion="同意")
    office.documents.countersign(FINANCE, document_id, agree=True)
    return office.documents.sign_off(MAYOR, document_id, approved=True, opinion="同意印发")


def upload(office, who: Principal, document_id: str, body: bytes = PDF, name: str = "正文.pdf", content_type: str = "application/pdf"):
    ticket = office.documents.request_upload(who, document_id, file_name=name, content_type=content_type, size=len(body))
    response = requests.put(ticket.url, data=body, headers=ticket.headers, timeout=10)
    assert response.status_code == 200, response.text
    return ticket


# --- outgoing -------------------------------------------------------------------------------------


def test_an_outgoing_document_is_countersigned_in_parallel_numbered_distributed_and_received(office, clock):
    document = draft(office)
    assert (document.status, document.number) == (DocumentStatus.DRAFTING, None)

    # when the drafter submits and the general office approves the draft
    reviewed = through_review(office, document.id)
    # then water and finance countersign at the same time: both have it in their inbox
    assert reviewed.status is DocumentStatus.COUNTERSIGNING
    open_steps = office.documents.open_steps(SYSTEM, reviewed)
    assert sorted(a.key for t in open_steps for a in t.assignees) == ["department:finance", "department:water"]
    for who in (WATER, FINANCE):
        inbox = office.workflows.inbox(who, InboxFilter(business_key=document.id)).items
        assert [i.task_name for i in inbox] == ["会签 Countersign"]

    # finance before water: the order does not matter, the sign-off waits for both
    after_finance = office.documents.countersign(FINANCE, document.id, agree=False, opinion="经费另行安排")
    assert after_finance.status is DocumentStatus.COUNTERSIGNING
    with pytest.raises(InvalidState):
        office.documents.countersign(FINANCE, document.id, agree=True)  # finance's branch is done
    after_water = office.documents.countersign(WATER, document.id, agree=True, opinion="同意")
    assert after_water.status is DocumentStatus.SIGNING

    # when the mayor signs it off it is numbered at once
    clock.now = district(2026, 3, 3)
    signed_off = office.documents.sign_off(MAYOR, document.id, approved=True, opinion="同意印发")
    assert signed_off.status is DocumentStatus.DISTRIBUTING
    assert signed_off.number == DocumentNumber("平政发", 2026, 1)
    assert str(signed_off.number) == "平政发〔2026〕1号"

    # the general office distributes it: each recipient gets a receipt task
    distributed = office.documents.distribute(CLERK, document.id)
    assert distributed.status is DocumentStatus.DISTRIBUTED
    assert [r.department_id for r in distributed.receipts] == ["water", "education"]
    education_inbox = office.workflows.inbox(EDUCATION, InboxFilter(definition_key=RECEIPT)).items
    assert [i.task_name for i in education_inbox] == ["签收 Acknowledge receipt"]

    # water acknowledges through the service, education by completing its inbox task
    office.documents.acknowledge(WATER, document.id, note="已收到")
    with pytest.raises(InvalidState):
        office.documents.acknowledge(WATER, document.id)
    office.workflows.complete_task(EDUCATION, education_inbox[0].instance_id, education_inbox[0].task_id, {})
    done = office.documents.get(DRAFTER, document.id)
    assert done.status is DocumentStatus.COMPLETED
    assert {r.department_id: r.acknowledged_by for r in done.receipts} == {"water": "person:w-1", "education": "person:e-1"}

    # the history names every step with its opinion, both countersignatures included
    history = office.documents.history(DRAFTER, document.id)
    assert [(o.step, o.actor, o.approved) for o in history] == [
        ("draft", "person:h-1", None), ("review", "person:go-1", True), ("countersign", "person:f-1", False),
        ("countersign", "person:w-1", True), ("sign", "person:mayor", True), ("distribute", "person:go-1", None),
        ("acknowledge", "person:w-1", None), ("acknowledge", "person:e-1", None),
    ]
    assert history[2].opinion == "经费另行安排"


def test_steps_completed_from_the_inbox_have_the_same_effect(office):
    # given a document reviewed and countersigned through the engine's own completeTask
    document = draft(office, countersign_departments=["water"])
    for who, form in [(DRAFTER, {}), (CLERK, {"approved": True}), (WATER, {"agree": True}), (MAYOR, {"approved": True})]:
        task = office.workflows.inbox(who, InboxFilter(business_key=document.id)).items[0]
        office.workflows.complete_task(who, task.instance_id, task.task_id, form)
    # then the sign-off numbered it and the document followed every step
    signed_off = office.documents.get(DRAFTER, document.id)
    assert (signed_off.status, str(signed_off.number)) == (DocumentStatus.DISTRIBUTING, "平政发〔2026〕1号")
    assert {"department:water", "department:general-office", "person:mayor"} <= signed_off.participants
    task = office.workflows.inbox(CLERK, InboxFilter(business_key=document.id)).items[0]
    office.workflows.complete_task(CLERK, task.instance_id, task.task_id, {})
    assert office.documents.get(DRAFTER, document.id).status is DocumentStatus.DISTRIBUTED


def test_a_late_follow_up_of_an_older_change_does_not_move_the_document_back(office):
    document = draft(office)
    through_review(office, document.id)
    office.documents.countersign(WATER, document.id, agree=True)
    older = office.workflows.instance(SYSTEM, document.instance_id)  # finance still countersigning
    office.documents.countersign(FINANCE, document.id, agree=True)
    # when the follow-up of water's change arrives after finance's (parallel requests)
    office.documents._follow(older, older)
    # then the document stays where the newer change put it
    assert office.documents.get(DRAFTER, document.id).status is DocumentStatus.SIGNING


def test_without_countersigning_departments_the_review_goes_straight_to_sign_off(office):
    document = draft(office, countersign_departments=[])
    assert through_review(office, document.id).status is DocumentStatus.SIGNING


def test_a_rejected_sign_off_goes_back_to_the_drafter_and_round_again_without_a_number(office):
    document = draft(office)
    through_review(office, document.id)
    office.documents.countersign(WATER, document.id, agree=True)
    office.documents.countersign(FINANCE, document.id, agree=True)
    back = office.documents.sign_off(MAYOR, document.id, approved=False, opinion="补充责任分工")
    assert (back.status, back.number) == (DocumentStatus.DRAFTING, None)
    # the second round countersigns again, in parallel as before
    assert through_review(office, document.id).status is DocumentStatus.COUNTERSIGNING
    office.documents.countersign(WATER, document.id, agree=True)
    office.documents.countersign(FINANCE, document.id, agree=True)
    assert office.documents.sign_off(MAYOR, document.id, approved=True).number == DocumentNumber("平政发", 2026, 1)


def test_steps_are_refused_to_those_not_holding_them_and_bad_input_changes_nothing(office):
    document = draft(office)
    with pytest.raises(PermissionDenied):
        office.documents.submit_draft(WATER, document.id)
    with pytest.raises(InvalidState):
        office.documents.review(CLERK, document.id, approved=True)  # not submitted yet
    through_review(office, document.id)
    with pytest.raises(PermissionDenied):
        office.documents.countersign(EDUCATION, document.id, agree=True)
    with pytest.raises(InvalidState):
        office.documents.sign_off(MAYOR, document.id, approved=True)  # the countersigning is not done
    before = office.workflows.instance(SYSTEM, document.instance_id)
    with pytest.raises(ValidationFailed) as caught:
        office.documents.countersign(WATER, document.id, agree=True, opinion="意" * 2001)
    assert [p.field for p in caught.value.problems] == ["opinion"]
    assert office.workflows.instance(SYSTEM, document.instance_id).version == before.version
    assert office.documents.get(DRAFTER, document.id).status is DocumentStatus.COUNTERSIGNING


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"title": " "}, "title"),
        ({"organ_code": "平政乱发"}, "organCode"),
        ({"recipients": []}, "recipients"),
        ({"recipients": ["nowhere"]}, "recipients"),
        ({"countersign_departments": ["water", "finance", "housing", "education", "gov", "archives", "general-office"]},
         "countersignDepartments"),
        ({"countersign_departments": ["nowhere"]}, "countersignDepartments"),
        ({"signer_id": "ghost"}, "signerId"),
    ],
)
def test_a_bad_draft_is_refused_naming_the_field_and_starts_nothing(office, overrides, field):
    with pytest.raises(ValidationFailed) as caught:
        draft(office, **overrides)
    assert field in [p.field for p in caught.value.problems]
    assert office.workflows.inbox(DRAFTER).items == []
    assert office.documents.documents(AUDITOR, DocumentKind.OUTGOING).items == []


# --- numbering -----------------------------------------------------------------------------------


def test_concurrent_sign_offs_take_consecutive_numbers_without_gaps_or_repeats(office):
    documents = [draft(office, countersign_departments=[]) for _ in range(12)]
    for d in documents:
        through_review(office, d.id)
    barrier = threading.Barrier(len(documents))

    def sign(document_id: str):
        barrier.wait()
        return office.documents.sign_off(MAYOR, document_id, approved=True)

    with ThreadPoolExecutor(len(documents)) as pool:
        numbers = [d.number for d in pool.map(sign, [d.id for d in documents])]
    assert sorted(n.seq for n in numbers) == list(range(1, 13))
    register = office.documents.register(CLERK, "平政发", 2026, limit=100).items
    assert register == sorted((n.seq, d.id) for n, d in zip(numbers, documents, strict=True))


def test_numbering_the_same_document_again_never_takes_a_second_number(office):
    documents = [draft(office, countersign_departments=[]) for _ in range(3)]
    numbering = office.documents.numbering
    for d in documents:
        office.documents.submit_draft(DRAFTER, d.id)

    def number(document_id: str):
        return numbering.assign(document_id, "平政发")

    # every document asked for three times at once (retries, listeners and callers racing)
    with ThreadPoolExecutor(9) as pool:
        results = list(pool.map(number, [d.id for d in documents for _ in range(3)]))
    assert sorted(r.seq for r in results if r is not None) == [1, 2, 3]
    assert sorted(office.documents.get(DRAFTER, d.id).number.seq for d in documents) == [1, 2, 3]
    assert [seq for seq, _ in office.documents.register(CLERK, "平政发", 2026, limit=100).items] == [1, 2, 3]


def test_the_year_of_a_number_is_the_districts_and_each_year_starts_again_at_one(office, clock):
    first, second, third = (draft(office, countersign_departments=[]) for _ in range(3))
    for d in (first, second, third):
        through_review(office, d.id)
    clock.now = district(2026, 12, 31, 23, 50)
    assert office.documents.sign_off(MAYOR, first.id, approved=True).number.text == "平政发〔2026〕1号"
    # 00:10 on 1 January in the district is still 31 December in UTC
    clock.now = district(2027, 1, 1, 0, 10)
    assert clock.now.year == 2026
    assert office.documents.sign_off(MAYOR, second.id, approved=True).number.text == "平政发〔2027〕1号"
    assert office.documents.sign_off(MAYOR, third.id, approved=True).number.text == "平政发〔2027〕2号"


def test_each_issuing_organ_has_its_own_sequence(office):
    a = draft(office, countersign_departments=[], organ_code="平政办发")
    b = draft(office, countersign_departments=[])
    for d in (a, b):
        through_review(office, d.id)
    assert office.documents.sign_off(MAYOR, a.id, approved=True).number.text == "平政办发〔2026〕1号"
    assert office.documents.sign_off(MAYOR, b.id, approved=True).number.text == "平政发〔2026〕1号"


# --- attachments ---------------------------------------------------------------------------------


def test_participants_download_attachments_and_everyone_else_is_refused(office):
    document = draft(office)
    ticket = upload(office, DRAFTER, document.id)
    assert ticket.key == f"documents/{document.id}/{ticket.attachment_id}/正文.pdf"
    # not downloadable until confirmed
    with pytest.raises(InvalidState):
        office.documents.download(DRAFTER, document.id, ticket.attachment_id)
    confirmed = office.documents.confirm_upload(DRAFTER, document.id, ticket.attachment_id)
    assert confirmed.status is AttachmentStatus.READY

    link = office.documents.download(DRAFTER, document.id, ticket.attachment_id)
    assert requests.get(link.url, timeout=10).content == PDF
    # water is no participant until its countersigning task opens
    with pytest.raises(PermissionDenied):
        office.documents.download(WATER, document.id, ticket.attachment_id)
    through_review(office, document.id)
    assert office.documents.download(WATER, document.id, ticket.attachment_id).file_name == "正文.pdf"
    # the reviewer took part in the past and still may; an outsider and an auditor may not
    assert office.documents.download(CLERK, document.id, ticket.attachment_id)
    for stranger in (OUTSIDER, AUDITOR, Principal("r-1", roles=frozenset({Role.RESIDENT}))):
        with pytest.raises(PermissionDenied):
            office.documents.download(stranger, document.id, ticket.attachment_id)
        with pytest.raises(PermissionDenied):
            office.documents.request_upload(stranger, document.id, file_name="a.pdf", content_type="application/pdf", size=10)
    # recipients once it is distributed
    with pytest.raises(PermissionDenied):
        office.documents.download(EDUCATION, document.id, ticket.attachment_id)
    office.documents.countersign(WATER, document.id, agree=True)
    office.documents.countersign(FINANCE, document.id, agree=True)
    office.documents.sign_off(MAYOR, document.id, approved=True)
    office.documents.distribute(CLERK, document.id)
    assert office.documents.download(EDUCATION, document.id, ticket.attachment_id)


def test_uploads_are_limited_in_type_and_size_and_checked_when_confirmed(office):
    document = draft(office)
    for name, content_type, size, field in [
        ("run.exe", "application/x-msdownload", 10, "contentType"),
        ("正文.docx", "application/pdf", 10, "fileName"),
        ("正文.pdf", "application/pdf", 60 * 1024 * 1024, "size"),
        ("正文.pdf", "application/pdf", 0, "size"),
    ]:
        with pytest.raises(ValidationFailed) as caught:
            office.documents.request_upload(DRAFTER, document.id, file_name=name, content_type=content_type, size=size)
        assert field in [p.field for p in caught.value.problems]
    # a file that is not what was declared is deleted when confirmed
    ticket = office.documents.request_upload(DRAFTER, document.id, file_name="a.pdf", content_type="application/pdf", size=10)
    with pytest.raises(InvalidState):
        office.documents.confirm_upload(DRAFTER, document.id, ticket.attachment_id)  # nothing uploaded yet
    client("s3").put_object(Bucket=office.documents._files.bucket, Key=ticket.key, Body=b"x" * 99, ContentType="application/pdf")
    with pytest.raises(InvalidState):
        office.documents.confirm_upload(DRAFTER, document.id, ticket.attachment_id)
    assert office.documents._files.head(ticket.key) is None
    assert office.documents.attachments(DRAFTER, document.id)[0].status is AttachmentStatus.PENDING


def test_file_names_are_made_safe_for_object_keys():
    assert safe_file_name("../../etc/passwd") == "passwd"
    assert safe_file_name("C:\\文件\\通知 (定稿).PDF") == "通知_定稿.PDF"
    assert safe_file_name("a\u202egpj.exe") == "agpj.exe"
    assert safe_file_name("..") == ""


# --- incoming ------------------------------------------------------------------------------------


def register(office, **overrides):
    values = {"title": "市政府关于老旧小区改造的通知", "source_organ": "市人民政府",
              "source_number": "市政发〔2026〕8号", "received_on": date(2026, 3, 2)}
    return office.documents.register_incoming(CLERK, **(values | overrides))


def test_an_incoming_document_with_an_instruction_that_becomes_a_supervision_item(office):
    document = register(office)
    assert (document.status, document.registration_number.text) == (DocumentStatus.PROPOSING, "平政收〔2026〕1号")
    office.documents.propose(CLERK, document.id, proposal="请区长阅示，建议住建局牵头办理", leader_id="mayor",
                             handling_department="housing")
    assert office.documents.get(CLERK, document.id).status is DocumentStatus.INSTRUCTING

    # the mayor instructs, and supervises it in the same step
    instructed = office.documents.instruct(
        MAYOR, document.id, instruction="请住建局抓紧落实，水务局配合",
        supervise=SupervisionRequest(deadline=date(2026, 4, 30), assisting_departments=("water",)),
    )
    assert instructed.status is DocumentStatus.HANDLING
    item = office.supervision.get(CLERK, instructed.supervision_item_id)
    assert (item.source, item.source_ref, item.leader_id, item.responsible_department, item.assisting_departments) == (
        SourceKind.LEADER_INSTRUCTION, "平政收〔2026〕1号", "mayor", "housing", ("water",))
    assert item.status is SupervisionStatus.ASSIGNING
    assert item.detail == "请住建局抓紧落实，水务局配合"

    office.documents.handle(DRAFTER, document.id, result="已制定改造方案")
    filed = office.documents.file(CLERK, document.id, retention=Retention.YEARS_30, archive_ref="2026-WS-001")
    assert (filed.status, filed.retention, filed.result, filed.instruction) == (
        DocumentStatus.FILED, Retention.YEARS_30, "已制定改造方案", "请住建局抓紧落实，水务局配合")
    assert [o.step for o in office.documents.history(CLERK, document.id)] == ["propose", "instruct", "handle", "file"]


def test_a_bad_supervision_request_refuses_the_instruction_and_changes_nothing(office, clock):
    document = register(office)
    office.documents.propose(CLERK, document.id, proposal="拟请区长批示", leader_id="mayor", handling_department="housing")
    before = office.workflows.instance(SYSTEM, document.instance_id)
    with pytest.raises(ValidationFailed) as caught:
        office.documents.instruct(MAYOR, document.id, instruction="落实",
                                  supervise=SupervisionRequest(deadline=date(2026, 3, 1)))
    assert [p.field for p in caught.value.problems] == ["supervision.deadline"]
    assert office.workflows.instance(SYSTEM, document.instance_id).version == before.version
    assert office.supervision.items(CLERK).items == []
    assert office.documents.get(CLERK, document.id).status is DocumentStatus.INSTRUCTING
    # an instruction without supervision goes on
    assert office.documents.instruct(MAYOR, document.id, instruction="阅").supervision_item_id is None


def test_incoming_registration_is_for_the_secretariat_and_checks_its_input(office, clock):
    with pytest.raises(PermissionDenied):
        office.documents.register_incoming(DRAFTER, title="x", source_organ="y", received_on=date(2026, 3, 2))
    with pytest.raises(ValidationFailed) as caught:
        register(office, received_on=date(2026, 3, 3), source_organ="")
    assert sorted(p.field for p in caught.value.problems) == ["receivedOn", "sourceOrgan"]
    document = register(office)
    with pytest.raises(ValidationFailed):
        office.documents.propose(CLERK, document.id, proposal="x", leader_id="ghost", handling_department="housing")
    with pytest.raises(PermissionDenied):
        office.documents.propose(DRAFTER, document.id, proposal="x", leader_id="mayor", handling_department="housing")


# --- reading -------------------------------------------------------------------------------------


def test_people_list_the_documents_they_take_part_in(office, clock):
    mine = draft(office, countersign_departments=[])
    clock.now += timedelta(minutes=1)
    other = office.documents.draft_outgoing(WATER, title="水务通知", organ_code="平政函", signer_id="mayor",
                                            recipients=["housing"])
    assert [d.id for d in office.documents.documents(DRAFTER, DocumentKind.OUTGOING).items] == [mine.id]
    assert [d.id for d in office.documents.documents(WATER, DocumentKind.OUTGOING).items] == [other.id]
    assert office.documents.documents(CLERK, DocumentKind.OUTGOING).items == []
    # the general office reviews both: it has both now, newest first, a page at a time
    through_review(office, mine.id)
    office.documents.submit_draft(WATER, other.id)
    office.documents.review(CLERK, other.id, approved=True)
    first = office.documents.documents(CLERK, DocumentKind.OUTGOING, limit=1)
    assert [d.id for d in first.items] == [other.id] and first.next_key
    rest = office.documents.documents(CLERK, DocumentKind.OUTGOING, limit=1, start=first.next_key)
    assert [d.id for d in rest.items] == [mine.id] and rest.next_key is None
    assert {d.id for d in office.documents.documents(AUDITOR, DocumentKind.OUTGOING).items} == {mine.id, other.id}
    with pytest.raises(PermissionDenied):
        office.documents.get(OUTSIDER, mine.id)
    with pytest.raises(NotFound):
        office.documents.get(DRAFTER, "01ARZ3NDEKTSV4RRFFQ69G5FAV")
