"""What can be wrong with traffic input. Each one leaves the corridor's current plan in force."""

from sunflower.common.errors import FieldProblem, InvalidState, ValidationFailed


class TrafficInputError(ValidationFailed):
    """A sensor batch that cannot be accepted; nothing of it was taken."""

    code = "TRAFFIC_INPUT_INVALID"

    @classmethod
    def at(cls, field: str, message: str) -> "TrafficInputError":
        return cls(f"{field}: {message}", problems=(FieldProblem(field, message),))


class MalformedBatch(TrafficInputError):
    code = "MALFORMED_BATCH"


class WrongCorridor(TrafficInputError):
    code = "WRONG_CORRIDOR"


class UnknownDetector(TrafficInputError):
    code = "UNKNOWN_DETECTOR"


class ImpossibleReading(TrafficInputError):
    """Negative counts, more vehicles than a lane can carry, occupancy outside 0..1 and the like."""

    code = "IMPOSSIBLE_READING"


class OverlappingInterval(TrafficInputError):
    code = "OVERLAPPING_INTERVAL"


class FutureInterval(TrafficInputError):
    code = "FUTURE_INTERVAL"


class DuplicateBatch(InvalidState):
    """This batch id was ingested before. With at-least-once delivery this is a harmless repeat."""

    code = "DUPLICATE_BATCH"


class InvalidCorridor(ValidationFailed):
    code = "INVALID_CORRIDOR"


class NoFeasibleCycle(InvalidState):
    """The corridor's minimum greens and clearances cannot fit any cycle its bounds allow."""

    code = "NO_FEASIBLE_CYCLE"
