"""The `context` a handler gets from the Lambda Python runtime, for invoking handlers locally."""

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sunflower.local.catalog import ACCOUNT_ID


@dataclass
class LambdaContext:
    """What the Python runtime's context offers (awslambdaric's LambdaContext).

    As in the runtime, `memory_limit_in_mb` is a string, and every invocation has its own
    `aws_request_id` and deadline: build one context per invocation with `for_invocation`.
    """

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: str
    log_group_name: str
    log_stream_name: str
    deadline_ms: int  # epoch milliseconds at which the runtime would stop the invocation
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    identity: object | None = None  # Cognito identity: only for mobile SDK invocations
    client_context: object | None = None
    tenant_id: str | None = None

    @classmethod
    def for_invocation(
        cls, function_name: str, *, region: str, timeout_s: float, memory_mb: int = 1024
    ) -> "LambdaContext":
        return cls(
            function_name=function_name,
            invoked_function_arn=f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}",
            memory_limit_in_mb=str(memory_mb),
            log_group_name=f"/aws/lambda/{function_name}",
            log_stream_name=f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}",
            deadline_ms=int((time.time() + timeout_s) * 1000),
        )

    def get_remaining_time_in_millis(self) -> int:
        return max(self.deadline_ms - int(time.time() * 1000), 0)

    def log(self, message: str) -> None:
        print(message, end="", flush=True)
