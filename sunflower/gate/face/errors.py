"""Why a face check was refused: one stable code per reason, safe to show a resident or a device."""

from enum import StrEnum

from sunflower.common.errors import DomainError


class Reason(StrEnum):
    NOT_AN_IMAGE = "NOT_AN_IMAGE"
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
    TRUNCATED_IMAGE = "TRUNCATED_IMAGE"
    NO_FACE = "NO_FACE"
    MULTIPLE_FACES = "MULTIPLE_FACES"
    FACE_TOO_SMALL = "FACE_TOO_SMALL"
    FACE_CUT_OFF = "FACE_CUT_OFF"
    FACE_BLURRED = "FACE_BLURRED"
    POSE_TOO_WIDE = "POSE_TOO_WIDE"
    SPOOF_SUSPECTED = "SPOOF_SUSPECTED"


class FaceError(DomainError):
    """A photo the pipeline will not match. `code` is a `Reason` and never changes meaning."""

    def __init__(self, code: Reason | str, message: str) -> None:
        super().__init__(message)
        self.code = Reason(code)

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"
