"""Invoke the functions infra/serverless.yml runs on a schedule, as EventBridge rules do."""

import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sunflower.local.catalog import ACCOUNT_ID, Catalog, FunctionSpec
from sunflower.local.lambda_context import LambdaContext
from sunflower.local.pump import Handler, Resolve, import_handler

logger = logging.getLogger(__name__)

_RATE = re.compile(r"^rate\(\s*(?P<value>\d+)\s+(?P<unit>minute|minutes|hour|hours|day|days)\s*\)$")
_UNIT = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
_TICK_S = 1.0  # how often the thread looks for due schedules


def parse_rate(expression: str) -> timedelta:
    """The period of `rate(N unit)`, with EventBridge's rules: N >= 1, singular unit only for 1."""
    text = expression.strip()
    if text.startswith("cron("):
        raise ValueError(
            f"schedule {text!r}: cron expressions are not supported locally yet; use rate(...) "
            "or invoke the function by hand"
        )
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"schedule {text!r} is not rate(N minute[s]|hour[s]|day[s])")
    value, unit = int(match["value"]), match["unit"]
    if value < 1:
        raise ValueError(f"schedule {text!r}: the rate must be at least 1")
    if (value == 1) != (not unit.endswith("s")):
        singular = unit.rstrip("s")
        raise ValueError(
            f"schedule {text!r}: EventBridge wants rate(1 {singular}) for one and "
            f"rate(N {singular}s) for more"
        )
    return value * _UNIT[unit.rstrip("s")]


@dataclass
class Schedule:
    function: FunctionSpec
    expression: str
    period: timedelta
    rule_name: str
    next_due: datetime


class Scheduler:
    """Each rate schedule fires one period after the scheduler starts, then every period.

    Like EventBridge, a schedule missed while the laptop slept fires once, not once per period.
    """

    def __init__(
        self,
        catalog: Catalog,
        resolve: Resolve = import_handler,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.catalog = catalog
        self._resolve = resolve
        self._now = now
        started = now()
        self.schedules = []
        for spec in catalog.functions.values():
            name = catalog.function_name(spec)
            for index, expression in enumerate(spec.schedules, start=1):
                try:
                    period = parse_rate(expression)
                except ValueError as error:
                    raise ValueError(f"function {spec.name}: {error}") from None
                self.schedules.append(
                    Schedule(spec, expression, period, f"{name}-schedule-{index}", started + period)
                )
        self._handlers: dict[str, Handler] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        for schedule in self.schedules:
            self._handler(
                schedule.function
            )  # a handler that cannot be imported fails now, not in 5 minutes
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.warning("scheduler is still running a scheduled function")
            self._thread = None

    def __enter__(self) -> "Scheduler":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stopping.wait(_TICK_S):
            self.run_due(self._now())

    def run_due(self, now: datetime) -> list[Schedule]:
        """Invoke every schedule due at `now`; the schedules that fired."""
        fired = []
        for schedule in self.schedules:
            if schedule.next_due > now:
                continue
            schedule.next_due += schedule.period
            if schedule.next_due <= now:  # periods were missed: fire once and start over from now
                schedule.next_due = now + schedule.period
            self._invoke(schedule, now)
            fired.append(schedule)
        return fired

    def _handler(self, spec: FunctionSpec) -> Handler:
        with self._lock:
            if spec.name not in self._handlers:
                self._handlers[spec.name] = self._resolve(spec)
            return self._handlers[spec.name]

    def _invoke(self, schedule: Schedule, now: datetime) -> None:
        spec = schedule.function
        name = self.catalog.function_name(spec)
        event = scheduled_event(self.catalog.region, schedule.rule_name, now)
        context = LambdaContext.for_invocation(
            name, region=self.catalog.region, timeout_s=spec.timeout_s
        )
        try:
            self._handler(spec)(event, context)
        except Exception:
            # EventBridge invokes asynchronously: the error is logged, the next period runs again.
            logger.exception("scheduled function %s failed (%s)", name, schedule.expression)


def scheduled_event(region: str, rule_name: str, at: datetime) -> dict[str, Any]:
    """EventBridge's "Scheduled Event" for a rule firing at `at`."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{rule_name}"],
        "detail": {},
    }
