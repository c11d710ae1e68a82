"""Face check core: decode, detect, quality, align, embed, 1:N search, decide. Pure: no AWS.

    pipeline = FacePipeline.from_manifest()            # once per process
    analysis = pipeline.analyse(image_bytes)           # raises FaceError(code, message)
    decision = pipeline.decide(analysis.embedding, gallery)
"""

from sunflower.gate.face.errors import FaceError, Reason
from sunflower.gate.face.gallery import Gallery, Match
from sunflower.gate.face.liveness import Liveness
from sunflower.gate.face.pipeline import Decision, FaceAnalysis, FacePipeline, decide
from sunflower.gate.face.quality import Quality, QualityLimits

__all__ = [
    "Decision", "FaceAnalysis", "FaceError", "FacePipeline", "Gallery", "Liveness", "Match", "Quality",
    "QualityLimits", "Reason", "decide",
]
