"""The workflow engine's service: deploy definitions, start instances, complete tasks, inboxes, timers.

Callers: the GraphQL layer (with the signed-in principal) and the scheduled function that calls
`wake_due` (with SYSTEM). Every method re-checks what the principal may do.
"""

import hashlib
import itertools
import logging
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from threading import Lock
from typing import Any, Protocol

from sunflower.auth.principals import Principal, PrincipalKind, Role
from sunflower.common.clock import Clock, to_iso
from sunflower.common.cursors import Page
from sunflower.common.errors import (
    FieldProblem,
    InvalidState,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from sunflower.common.ids import new_id
from sunflower.office.engine import bpmn
from sunflower.office.engine.bpmn import CompiledDefinition, FiredTimer, Step, WorkflowError
from sunflower.office.engine.models import (
    Assignee,
    AssigneeKind,
    BoundaryAction,
    Definition,
    EscalationMode,
    InboxFilter,
    InboxItem,
    Instance,
    InstanceStatus,
    Notification,
    OpenTask,
    TaskDefinition,
    TimelineEntry,
    TimelineKind,
    WakeReport,
)
from sunflower.office.engine.repository import (
    DUE_SHARDS,
    Change,
    EngineRepository,
    Hint,
    InstanceConflict,
    Outbox,
    StoredInstance,
)

logger = logging.getLogger(__name__)

MAX_COMMENT = 2000
MAX_KEY = 64
_SAVE_ATTEMPTS = 3
_READERS = (Role.OFFICIAL, Role.ADMIN, Role.AUDITOR)


class Directory(Protocol):
    """What the engine needs from the organisation chart."""

    def keys_of(self, principal: Principal) -> tuple[Assignee, ...]:
        """Every assignee key that reaches this principal: person, department(s), role(s)."""

    def leaders_above(self, assignees: Sequence[Assignee]) -> list[str]:
        """Person ids of the leaders above where these assignees sit, nearest first."""


class TokenDirectory:
    """A directory from the token alone (no organisation chart): for tests and tools."""

    def keys_of(self, principal: Principal) -> tuple[Assignee, ...]:
        keys = [Assignee(AssigneeKind.PERSON, principal.id)]
        if principal.department:
            keys.append(Assignee(AssigneeKind.DEPARTMENT, principal.department))
        keys += [Assignee(AssigneeKind.ROLE, r.value) for r in sorted(principal.roles)]
        return tuple(keys)

    def leaders_above(self, assignees: Sequence[Assignee]) -> list[str]:
        return []


@dataclass(frozen=True)
class TaskView:
    """An open task with what a form needs to render it."""

    instance: Instance
    task: OpenTask
    definition: TaskDefinition


class WorkflowService:
    def __init__(
        self,
        repository: EngineRepository,
        directory: Directory,
        clock: Clock,
        *,
        zone: str = "Asia/Shanghai",
        compiled_cache: int = 64,
        workers: int = 8,
    ) -> None:
        self._repo = repository
        self._directory = directory
        self._clock = clock
        self._cache: OrderedDict[tuple[str, int], tuple[Definition, CompiledDefinition]] = OrderedDict()
        self._cache_size = compiled_cache
        self._cache_lock = Lock()
        self._workers = workers
        self._executor: ThreadPoolExecutor | None = None
        self._listeners: dict[str, list[Callable[[Instance | None, Instance], None]]] = {}
        bpmn.set_district_zone(zone)

    # --- definitions ---------------------------------------------------------------------------

    def deploy(
        self,
        actor: Principal,
        bpmn_xml: str | bytes,
        *,
        dmn: Sequence[str | bytes] = (),
        process_id: str | None = None,
    ) -> Definition:
        """Check a diagram and store it as the next version of its process (the key is the process id)."""
        if not (actor.kind is PrincipalKind.SYSTEM or actor.has_any(Role.ADMIN)):
            raise PermissionDenied("only administrators deploy workflow definitions")
        compiled = bpmn.compile_definition(bpmn_xml, dmn, process_id=process_id)
        key = compiled.process_id
        if len(key) > MAX_KEY:
            raise ValidationFailed.on("processId", f"must be at most {MAX_KEY} characters")
        raw_bpmn = bpmn_xml.encode() if isinstance(bpmn_xml, str) else bpmn_xml
        raw_dmn = [d.encode() if isinstance(d, str) else d for d in dmn]
        tasks = tuple(
            TaskDefinition(t.element_id, t.name, t.form_schema, t.instructions) for t in compiled.user_tasks.values()
        )
        for _ in range(_SAVE_ATTEMPTS):
            version = self._repo.latest_version(key) + 1
            definition = Definition(
                key=key,
                version=version,
                name=compiled.name,
                deployed_by=actor.audit_name,
                deployed_at=self._clock(),
                tasks=tasks,
                start_schema=compiled.start_schema,
                starters=compiled.starters,
                bpmn_sha256=hashlib.sha256(raw_bpmn).hexdigest(),
            )
            if self._repo.add_definition(definition, raw_bpmn, raw_dmn):
                self._remember(definition, compiled)
                return definition
        raise InvalidState(f"{key} is being deployed by someone else right now; try again")

    def definition(self, viewer: Principal, key: str, version: int | None = None) -> Definition:
        _require_reader(viewer)
        version = version or self._repo.latest_version(key)
        if not version:
            raise NotFound(f"no workflow definition {key}")
        return self._compiled(key, version)[0]

    def definitions(self, viewer: Principal, *, limit: int, start: dict | None) -> Page[Definition]:
        """Every version of every definition, by key then version."""
        _require_reader(viewer)
        return self._repo.definitions(limit=limit, start=start)

    def _remember(self, definition: Definition, compiled: CompiledDefinition) -> None:
        with self._cache_lock:
            self._cache[(definition.key, definition.version)] = (definition, compiled)
            self._cache.move_to_end((definition.key, definition.version))
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _compiled(self, key: str, version: int) -> tuple[Definition, CompiledDefinition]:
        with self._cache_lock:
            hit = self._cache.get((key, version))
        if hit:
            return hit
        definition, raw_bpmn, raw_dmn = self._repo.definition(key, version)
        compiled = bpmn.compile_definition(raw_bpmn, raw_dmn, process_id=key)
        self._remember(definition, compiled)
        return definition, compiled

    # --- instances ------------------------------------------------------------------------------

    def start(
        self, actor: Principal, key: str, data: Mapping[str, Any] | None = None, *, business_key: str | None = None
    ) -> Instance:
        """Start an instance of the latest version of `key`."""
        return self.start_many(actor, key, [(data or {}, business_key)])[0]

    def start_many(
        self, actor: Principal, key: str, starts: Sequence[tuple[Mapping[str, Any], str | None]]
    ) -> list[Instance]:
        """Start several instances of the latest version of `key` in batched writes (imports, benchmarks).

        Every start is checked before anything is written: one bad row and none starts.
        """
        version = self._repo.latest_version(key)
        if not version:
            raise NotFound(f"no workflow definition {key}")
        definition, compiled = self._compiled(key, version)
        if actor.kind is not PrincipalKind.SYSTEM and not any(r.value in definition.starters for r in actor.roles):
            raise PermissionDenied(f"starting {key} needs one of the roles {', '.join(definition.starters)}")
        now = self._clock()
        created: list[tuple[Instance, bytes, Outbox]] = []
        for data, business_key in starts:
            data = dict(data)
            _check_data_keys(data)
            problems = bpmn.form_problems(definition.start_schema, data)
            if problems:
                raise ValidationFailed(_summary(problems), problems=problems)
            blank = Instance(new_id(), key, version, InstanceStatus.RUNNING, business_key, data, (), actor.audit_name,
                             now, now, None, None, 0)
            try:
                step = compiled.start(data, now)
                instance, outbox = self._advance(blank, compiled, step, actor, now)
            except WorkflowError as exc:
                raise InvalidState(f"the workflow cannot start with this data: {exc}") from None
            outbox.timeline.insert(0, self._entry(instance, now, actor.audit_name, TimelineKind.STARTED, instance.version,
                                                  token=_token(), data=data))
            created.append((instance, compiled.dump(step.workflow), outbox))
        self._repo.create(created)
        self._apply_listeners_only([i for i, _, _ in created])
        return [instance for instance, _, _ in created]

    def _apply_listeners_only(self, instances: list[Instance]) -> None:
        for instance in instances:
            for listener in self._listeners.get(instance.definition_key, ()):
                try:
                    listener(None, instance)
                except Exception:
                    logger.exception("listener for %s failed on %s", instance.definition_key, instance.id)

    def instance(self, viewer: Principal, instance_id: str) -> Instance:
        instance = self._repo.get(instance_id).instance
        self._require_viewer(viewer, instance)
        return instance

    def instances(self, viewer: Principal, instance_ids: Iterable[str]) -> dict[str, Instance]:
        """For dataloaders: the ones the viewer may see, by id (one batch read)."""
        found = self._repo.get_many(instance_ids)
        return {i: inst for i, inst in found.items() if self._may_view(viewer, inst)}

    def task(self, viewer: Principal, instance_id: str, task_id: str) -> TaskView:
        instance = self.instance(viewer, instance_id)
        task = instance.task(task_id)
        if task is None:
            raise NotFound(f"task {task_id} is not open in instance {instance_id}")
        definition = self._compiled(instance.definition_key, instance.definition_version)[0]
        return TaskView(instance, task, definition.task(task.element_id) or TaskDefinition(task.element_id, task.name, None, ""))

    def complete_task(
        self,
        actor: Principal,
        instance_id: str,
        task_id: str,
        data: Mapping[str, Any] | None = None,
        comment: str | None = None,
        *,
        expected_version: int | None = None,
    ) -> Instance:
        """Complete an open task assigned to the actor; the instance moves on to its next tasks or ends.

        With `expected_version` (the instance version the form was shown at) any change since is refused.
        """
        data = dict(data or {})
        _check_data_keys(data)
        if comment is not None and len(comment) > MAX_COMMENT:
            raise ValidationFailed.on("comment", f"must be at most {MAX_COMMENT} characters")
        conflicted = False
        for _ in range(_SAVE_ATTEMPTS):
            stored = self._repo.get(instance_id)
            before = stored.instance
            if expected_version is not None and before.version != expected_version:
                self._require_viewer(actor, before)
                raise InvalidState(
                    f"instance {instance_id} changed since you read it (version {expected_version}, now "
                    f"{before.version}); reload it and try again"
                )
            task = before.task(task_id)
            if task is None:
                if conflicted:
                    raise InvalidState(f"task {task_id} was completed or closed by someone else meanwhile")
                if before.status is not InstanceStatus.RUNNING:
                    raise InvalidState(f"instance {instance_id} is {before.status.value}; its tasks are closed")
                raise InvalidState(f"task {task_id} is not open (already completed or closed)")
            if not self._assigned(actor, task):
                raise PermissionDenied(
                    f"task '{task.name}' is assigned to {', '.join(a.key for a in task.assignees)}, not to you"
                )
            definition, compiled = self._compiled(before.definition_key, before.definition_version)
            info = compiled.user_tasks.get(task.element_id)
            problems = bpmn.form_problems(info.form_schema if info else None, data)
            if problems:
                raise ValidationFailed(_summary(problems), problems=problems)
            now = self._clock()
            try:
                step = compiled.complete(compiled.load(stored.state), task_id, data, now)
                instance, outbox = self._advance(before, compiled, step, actor, now, completed=(task, data, comment))
            except WorkflowError as exc:
                raise InvalidState(f"the workflow cannot go on with this data: {exc}") from None
            state = compiled.dump(step.workflow)
            (repair,) = self._repo.prepare([(before, instance, outbox)], now)
            try:
                self._repo.save(instance, state, outbox, previous_version=before.version)
            except InstanceConflict:
                conflicted = True
                continue
            self._apply([Change(instance, outbox, _drops(before, repair))], [before])
            return instance
        raise InvalidState(f"instance {instance_id} is changing too often right now; try again")

    def annotate(
        self,
        actor: Principal,
        instance_id: str,
        *,
        data: Mapping[str, Any] | None = None,
        comment: str | None = None,
        author: str | None = None,
        task_id: str | None = None,
    ) -> TimelineEntry:
        """Append a note (e.g. a progress report) to an instance's timeline without moving it on.

        `author` (an audit name such as person:p1) is for domain services acting as SYSTEM on
        behalf of someone whose right to write they have checked. With `task_id` the note is about
        that open task.
        """
        if author is not None and actor.kind is not PrincipalKind.SYSTEM:
            raise PermissionDenied("only Sunflower's own services write notes on someone's behalf")
        instance = self.instance(actor, instance_id)
        if comment is not None and len(comment) > MAX_COMMENT:
            raise ValidationFailed.on("comment", f"must be at most {MAX_COMMENT} characters")
        task = instance.task(task_id) if task_id is not None else None
        if task_id is not None and task is None:
            raise InvalidState(f"task {task_id} is not open in instance {instance_id}")
        now = self._clock()
        entry = TimelineEntry(
            id=f"{to_iso(now)}#{instance.version:08d}#n{new_id()}", instance_id=instance.id, at=now,
            actor=author or actor.audit_name, kind=TimelineKind.NOTE, data=_jsonable(dict(data or {})), comment=comment,
            task_id=task.id if task else None, element_id=task.element_id if task else None,
            task_name=task.name if task else None,
        )
        self._repo.append_timeline([entry])
        return entry

    def timeline(
        self, viewer: Principal, instance_id: str, *, limit: int, start: dict | None, newest_first: bool = False
    ) -> Page[TimelineEntry]:
        self.instance(viewer, instance_id)
        return self._repo.timeline(instance_id, limit=limit, start=start, newest_first=newest_first)

    # --- inbox and notifications ----------------------------------------------------------------

    def inbox(
        self, viewer: Principal, filter: InboxFilter | None = None, *, limit: int = 20, start: dict | None = None
    ) -> Page[InboxItem]:
        """Open tasks that reach the viewer through their person id, department(s) or roles; newest first."""
        filter = filter or InboxFilter()
        keys = [k for k in self._directory.keys_of(viewer) if not filter.through or k.kind in filter.through]
        low = to_iso(filter.opened_after) if filter.opened_after else "0"
        high = f"{to_iso(filter.opened_before)}" if filter.opened_before else "~"

        def fetch(key: Assignee, resume: dict | None, n: int):
            return self._repo.inbox_partition(
                key, limit=n, start=resume, low=low, high=high,
                definition_key=filter.definition_key, business_key=filter.business_key,
            )

        return _merged(keys, fetch, limit, start, identity=lambda i: (i.instance_id, i.task_id))

    def notifications(self, viewer: Principal, *, limit: int = 20, start: dict | None = None) -> Page[Notification]:
        keys = list(self._directory.keys_of(viewer))

        def fetch(key: Assignee, resume: dict | None, n: int):
            return self._repo.notifications(key, limit=n, start=resume)

        return _merged(keys, fetch, limit, start, identity=lambda n: n.id)

    # --- timers ---------------------------------------------------------------------------------

    def wake_due(
        self, actor: Principal, *, now: datetime | None = None, limit: int = 5000, shards: Sequence[int] | None = None
    ) -> WakeReport:
        """Advance instances whose timers are due (and finish changes whose writer died half-way).

        Call it again while the report says `more`. Instances are written with a condition each, in
        transactions of up to a hundred; reads, hints and what follows go in shared batches. Several
        schedulers may share the work by taking disjoint `shards` (0..DUE_SHARDS-1) each.
        """
        if not (actor.kind is PrincipalKind.SYSTEM or actor.has_any(Role.ADMIN)):
            raise PermissionDenied("only the scheduler wakes due timers")
        now = now or self._clock()
        hints = self._repo.due(now, limit + 1, shards)
        more = len(hints) > limit
        by_instance: dict[str, list[datetime]] = {}
        for hint in hints[:limit]:
            by_instance.setdefault(hint.instance_id, []).append(hint.due)
        stored = self._repo.get_stored_many(by_instance)
        gone = [Hint(i, due) for i, dues in by_instance.items() if i not in stored for due in dues]
        if gone:
            self._repo.drop_hints(gone)
        due_now, leftovers = [], []
        for s in stored.values():
            inst = s.instance
            if inst.status is InstanceStatus.RUNNING and inst.next_due and inst.next_due <= now:
                due_now.append(s)
            else:  # a stale or repair hint: apply the latest outbox again, keep the real hint
                leftovers.append(Change(inst, s.outbox, by_instance[inst.id]))
        advanced = [a for a in self._pool().map(lambda s: self._advance_on_timer(s, actor, now), due_now) if a]
        failed = len(due_now) - len(advanced)
        repairs = self._repo.prepare([(s.instance, inst, outbox) for s, inst, outbox, _ in advanced], now)
        saved = self._repo.save_many([(inst, state, outbox, s.instance.version) for s, inst, outbox, state in advanced])
        changes: list[Change] = [
            Change(inst, outbox, by_instance[inst.id] + _drops(s.instance, repair))
            for (s, inst, outbox, _), repair, ok in zip(advanced, repairs, saved, strict=True) if ok
        ]
        if leftovers:
            self._repo.ensure_hint([c.instance for c in leftovers])
        if changes or leftovers:
            self._apply(leftovers + changes, [s.instance for s, *_ in advanced])
        woken = sum(saved)
        return WakeReport(woken, len(advanced) - woken, failed, more)

    @property
    def due_shards(self) -> int:
        """How many shards `wake_due(shards=...)` can split the timers into."""
        return DUE_SHARDS

    def _advance_on_timer(self, stored: StoredInstance, actor: Principal, now: datetime):
        before = stored.instance
        try:
            _, compiled = self._compiled(before.definition_key, before.definition_version)
            step = compiled.wake(compiled.load(stored.state), now)
            instance, outbox = self._advance(before, compiled, step, actor, now)
            return stored, instance, outbox, compiled.dump(step.workflow)
        except WorkflowError as exc:
            logger.warning("instance %s could not advance on its timer: %s", before.id, exc)
            return None

    def _pool(self) -> ThreadPoolExecutor:
        with self._cache_lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="wake")
            return self._executor

    # --- the heart: what a step of the engine means for the instance ---------------------------

    def _advance(
        self,
        before: Instance,
        compiled: CompiledDefinition,
        step: Step,
        actor: Principal,
        now: datetime,
        *,
        completed: tuple[OpenTask, dict, str | None] | None = None,
    ) -> tuple[Instance, Outbox]:
        version = before.version + 1
        outbox = Outbox()
        seq = itertools.count(1)
        token = _token()  # two writers racing to the same version never share an entry id
        current: dict[str, OpenTask] = {t.id: t for t in before.open_tasks}

        def entry(kind: TimelineKind, task: OpenTask | None = None, **kw: Any) -> None:
            outbox.timeline.append(self._entry(before, now, kw.pop("actor", actor.audit_name), kind, version,
                                               token=token, seq=next(seq), task=task, **kw))

        if completed:
            task, data, comment = completed
            entry(TimelineKind.TASK_COMPLETED, task, data=data, comment=comment)
            outbox.closed += [(task, a) for a in task.assignees]
            current.pop(task.id, None)

        for fired in step.fired:
            self._on_timer(fired, current, before, now, f"{version:08d}#{token}", outbox, entry, seq)

        ready = {r.id: r for r in step.ready}
        open_tasks: list[OpenTask] = []
        for task_id, task in current.items():
            if task_id in ready:
                open_tasks.append(task)
            else:
                entry(TimelineKind.TASK_CLOSED, task)
                outbox.closed += [(task, a) for a in task.assignees]
        for task_id, r in ready.items():
            if task_id in current:
                continue
            info = compiled.user_tasks.get(r.element_id)
            if info is None:
                raise WorkflowError(f"{r.element_id}: not a user task of this definition")
            try:
                assignees = bpmn.resolve_assignees(info.assignees, r.data)
            except Exception as exc:  # an expression over the data failed
                raise WorkflowError(f"{r.element_id}: cannot work out who it goes to ({exc})") from None
            if not assignees:
                raise WorkflowError(f"{r.element_id} '{info.name}' would be assigned to nobody ({', '.join(info.assignees)})")
            task = OpenTask(task_id, r.element_id, info.name, assignees, now)
            open_tasks.append(task)
            entry(TimelineKind.TASK_OPENED, task, actor="system:sunflower", data={"assignees": [a.key for a in assignees]})
            outbox.opened += [(task, a) for a in assignees]

        status = InstanceStatus.COMPLETED if step.completed else before.status
        if step.completed and before.status is InstanceStatus.RUNNING:
            entry(TimelineKind.COMPLETED, actor="system:sunflower")
        instance = replace(
            before,
            status=status,
            data=_jsonable(step.data),
            open_tasks=tuple(open_tasks),
            updated_at=now,
            completed_at=now if step.completed else before.completed_at,
            next_due=step.next_due if not step.completed else None,
            version=version,
        )
        return instance, outbox

    def _on_timer(self, fired: FiredTimer, current: dict[str, OpenTask], before: Instance, now: datetime,
                  change: str, outbox: Outbox, entry: Callable[..., None], seq) -> None:
        boundary = fired.boundary
        task = current.get(fired.attached_task_id) if fired.attached_task_id else None
        if task is None:
            task = next((t for t in before.open_tasks if t.id == fired.attached_task_id), None)
        if boundary is None or boundary.action is None or task is None:
            entry(TimelineKind.TIMER_FIRED, task, actor="system:sunflower", data={"timer": fired.element_id})
            return
        extra = bpmn.resolve_assignees([f"person:{v}" for v in boundary.notify], before.data) if boundary.notify else ()
        if boundary.action is BoundaryAction.REMIND:
            recipients = _unique(task.assignees + extra)
            entry(TimelineKind.REMINDED, task, actor="system:sunflower",
                  data={"timer": fired.element_id, "recipients": [a.key for a in recipients]})
            self._notify(outbox, recipients, before, task, TimelineKind.REMINDED, now, change, seq,
                         f"Reminder: '{task.name}' is waiting for you")
            return
        level = task.escalation_level + 1
        chain = self._directory.leaders_above(task.assignees)
        if boundary.escalation is EscalationMode.REASSIGN:
            leader = chain[0] if chain else None  # one step up from whoever holds it now
        else:  # the holder stays: each level notifies the next leader up (the top one from then on)
            leader = chain[min(level, len(chain)) - 1] if chain else None
        target = (Assignee(AssigneeKind.PERSON, leader),) if leader else ()
        escalated = replace(task, escalation_level=level)
        if boundary.escalation is EscalationMode.REASSIGN and target and target != task.assignees:
            escalated = replace(escalated, assignees=target)
            outbox.closed += [(task, a) for a in task.assignees]
            outbox.opened += [(escalated, a) for a in target]
            entry(TimelineKind.REASSIGNED, escalated, actor="system:sunflower",
                  data={"timer": fired.element_id, "level": level, "from": [a.key for a in task.assignees],
                        "to": [a.key for a in target]})
        recipients = _unique(target + extra)
        entry(TimelineKind.ESCALATED, escalated, actor="system:sunflower",
              data={"timer": fired.element_id, "level": level, "mode": boundary.escalation.value,
                    "recipients": [a.key for a in recipients],
                    **({} if target else {"note": "no leader above the assignees in the organisation chart"})})
        self._notify(outbox, recipients, before, task, TimelineKind.ESCALATED, now, change, seq,
                     f"Escalated (level {level}): '{task.name}' is overdue")
        if task.id in current:
            current[task.id] = escalated

    def _notify(self, outbox: Outbox, recipients: Iterable[Assignee], instance: Instance, task: OpenTask,
                kind: TimelineKind, now: datetime, change: str, seq, message: str) -> None:
        for recipient in recipients:
            outbox.notifications.append(Notification(
                id=f"{to_iso(now)}#{instance.id}#{change}#{next(seq):03d}", recipient=recipient, at=now,
                kind=kind, instance_id=instance.id, task_id=task.id, task_name=task.name, message=message,
            ))

    @staticmethod
    def _entry(instance: Instance, now: datetime, actor: str, kind: TimelineKind, version: int, *, token: str,
               seq: int = 0, task: OpenTask | None = None, data: Mapping[str, Any] | None = None,
               comment: str | None = None) -> TimelineEntry:
        return TimelineEntry(
            id=f"{to_iso(now)}#{version:08d}#{seq:03d}#{token}", instance_id=instance.id, at=now, actor=actor, kind=kind,
            task_id=task.id if task else None, element_id=task.element_id if task else None,
            task_name=task.name if task else None, data=_jsonable(dict(data or {})), comment=comment,
        )

    def _apply(self, changes: list[Change], before: Iterable[Instance] = ()) -> None:
        """The changes are committed; what follows from them is repaired by wake_due if this fails."""
        try:
            self._repo.apply(changes)
        except Exception:
            logger.exception("applying the outbox of %s failed; wake_due will retry", [c.instance.id for c in changes])
        previous = {i.id: i for i in before}
        for change in changes:
            for listener in self._listeners.get(change.instance.definition_key, ()):
                old = previous.get(change.instance.id)
                if old is not None and old.version == change.instance.version:
                    continue  # a repair: nothing changed
                try:
                    listener(old, change.instance)
                except Exception:
                    logger.exception("listener for %s failed on %s", change.instance.definition_key, change.instance.id)

    def on_change(self, definition_key: str, listener: Callable[[Instance | None, Instance], None]) -> None:
        """Call `listener(before, after)` after every committed change of an instance of `definition_key`."""
        self._listeners.setdefault(definition_key, []).append(listener)

    # --- permissions ----------------------------------------------------------------------------

    def _assigned(self, actor: Principal, task: OpenTask) -> bool:
        if actor.kind is PrincipalKind.SYSTEM:
            return True
        return not set(self._directory.keys_of(actor)).isdisjoint(task.assignees)

    def _may_view(self, viewer: Principal, instance: Instance) -> bool:
        if viewer.kind is PrincipalKind.SYSTEM or viewer.has_any(*_READERS):
            return True
        if instance.started_by == viewer.audit_name:
            return True
        keys = set(self._directory.keys_of(viewer))
        return any(not keys.isdisjoint(t.assignees) for t in instance.open_tasks)

    def _require_viewer(self, viewer: Principal, instance: Instance) -> None:
        if not self._may_view(viewer, instance):
            raise PermissionDenied(f"you take no part in workflow instance {instance.id}")


def _require_reader(viewer: Principal) -> None:
    if not (viewer.kind is PrincipalKind.SYSTEM or viewer.has_any(*_READERS)):
        raise PermissionDenied("only officials, administrators and auditors read workflow definitions")


def _check_data_keys(data: Mapping[str, Any]) -> None:
    bad = [k for k in data if not isinstance(k, str) or k.startswith("_") or not k]
    if bad:
        raise ValidationFailed(
            "data: field names may not be empty or start with an underscore",
            problems=tuple(FieldProblem(f"data.{k}", "field names may not be empty or start with an underscore") for k in bad),
        )


def _drops(before: Instance, repair: datetime | None) -> list[datetime]:
    """Hints a committed change leaves behind: the old timer's, then its own repair hint."""
    return [d for d in (before.next_due, repair) if d]


def _token() -> str:
    return secrets.token_hex(3)


def _summary(problems: tuple[FieldProblem, ...]) -> str:
    return "; ".join(f"{p.field}: {p.message}" for p in problems[:5])


def _unique(assignees: Iterable[Assignee]) -> tuple[Assignee, ...]:
    return tuple(dict.fromkeys(assignees))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return to_iso(value)
    return value


def _merged(keys: Sequence[Assignee], fetch, limit: int, start: dict | None, *, identity) -> Page:
    """Merge several newest-first partitions (one per assignee key) into one page and one cursor.

    The cursor maps each key to where its partition resumes (absent: from the start; None: done).
    """
    state: dict[str, dict | None] = dict((start or {}).get("k", {}))
    heads: dict[str, list[tuple[Any, str, dict]]] = {}
    after: dict[str, dict | None] = {}
    for key in keys:
        if key.key in state and state[key.key] is None:
            continue
        rows, nxt = fetch(key, state.get(key.key), limit)
        while len(rows) < limit and nxt:  # a filter can leave a page short
            more, nxt = fetch(key, nxt, limit - len(rows))
            rows += more
        heads[key.key], after[key.key] = rows, nxt
    ordered = sorted(((sk, key, i) for key, rows in heads.items() for i, (_, sk, _) in enumerate(rows)), reverse=True)
    items, item_keys, seen, consumed = [], [], set(), {k: 0 for k in heads}
    for sk, key, i in ordered:
        if len(items) >= limit:
            break
        consumed[key] = i + 1
        item = heads[key][i][0]
        if identity(item) in seen:
            continue
        seen.add(identity(item))
        items.append(item)
        item_keys.append(_cursor_state(state, heads, after, consumed))
    final = _cursor_state(state, heads, after, consumed)
    done = all(v is None for v in final["k"].values()) and all(k.key in final["k"] for k in keys)
    return Page(items, None if done else final, item_keys)


def _cursor_state(state, heads, after, consumed) -> dict:
    out = dict(state)
    for key, rows in heads.items():
        n = consumed[key]
        if n < len(rows):
            out[key] = rows[n - 1][2] if n else state.get(key)
            if n == 0 and key not in state:
                out.pop(key, None)
        else:
            out[key] = after[key]
    return {"k": out}
