"""onnxruntime sessions built the same way everywhere: CPU, one thread per session, built once."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort


def session(path: Path | str, *, threads: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    # One request is one image: intra-op threads only add scheduling noise on a 1-2 vCPU Lambda,
    # and one thread per process makes "checks per second per core" honest.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
