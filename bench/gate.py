"""Gate face check figures (the machine-learning part): latency, 1:N search, throughput, accuracy.

Run: sunflower bench gate [--repeat N] [--no-augment]     (or python bench/gate.py)
Needs the models and photos: python -m sunflower.gate.modelstore fetch --photos

On one core (the process is pinned to one CPU; onnxruntime and BLAS use one thread):
- check latency p50/p99, decode to decision, over the real photos, with galleries of 1k, 10k and
  100k residents (synthetic unit-vector templates plus the real ones);
- per-stage medians (decode, detect, landmarks, align+quality, liveness, embed);
- 1:N search time alone at 1k/10k/100k, two-stage (default) and exact, and how often the two agree;
- checks per second per process at 10k;
- accuracy on real photos (bench/gate_accuracy.py).
Targets (issue 4): p99 < 150 ms at 10k residents, search < 5 ms at 100k, zero false accepts.
Ends with one JSON line. The endpoint's end-to-end latency (signature, DynamoDB, EventBridge) is
measured by the endpoint's own benchmark, not here.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy loads BLAS

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable
from importlib.metadata import packages_distributions
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import gate_accuracy

from sunflower.gate.face import FaceError, FacePipeline, Gallery

SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000}


def pin_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        cpu = max(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"pinned to CPU {cpu}"
    return "not pinned (no sched_setaffinity); one thread per library"


def opencv_modules() -> set[str]:
    """Top-level module names that OpenCV's distributions (if installed) provide."""
    return {module for module, dists in packages_distributions().items()
            if any(d.lower().startswith("opencv") for d in dists)}


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values), q))


def synthetic_gallery(n: int, real: list[tuple[str, np.ndarray]], dim: int, rng) -> Gallery:
    random = rng.standard_normal((n - len(real), dim)).astype(np.float32)
    random /= np.linalg.norm(random, axis=1, keepdims=True)
    templates = np.concatenate([random, np.stack([e for _, e in real])])
    ids = [f"resident-{i}" for i in range(len(random))] + [p for p, _ in real]
    return Gallery(templates, ids).warm()


def round_robin_search(gallery: Gallery, queries: list[np.ndarray], **kwargs) -> Callable[[], object]:
    """A no-argument call that searches the gallery for the next query, in turn."""
    counter = itertools.count()
    return lambda: gallery.search(queries[next(counter) % len(queries)], **kwargs)


def timed(fn, n: int, warmup: int = 5, clock=time.perf_counter) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = clock()
        fn()
        out.append((clock() - t) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="passes over the photos per gallery size")
    parser.add_argument("--searches", type=int, default=300, help="timed searches per gallery size")
    parser.add_argument("--no-augment", action="store_true", help="accuracy on the photos only")
    args = parser.parse_args(argv)

    pinned = pin_one_core()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    t = time.perf_counter()
    pipeline = FacePipeline.from_manifest()
    load_ms = (time.perf_counter() - t) * 1000
    photos = gate_accuracy.load_photos(pipeline.manifest)
    probes = [p for p in photos if p.person]  # what a gate sees: photos with a person in them
    rng = np.random.default_rng(0)
    print(f"gate bench: {pinned}; models loaded in {load_ms:.0f} ms; {len(probes)} real photos "
          f"({', '.join(sorted({p.name for p in probes}))})")

    # Real enrolment: one template per photo that passes the pipeline.
    enrolled: list[tuple[str, np.ndarray]] = []
    for photo in probes:
        try:
            enrolled.append((photo.person, pipeline.analyse(photo.data).embedding))
        except FaceError:
            pass

    figures: dict[str, float | int | str | None] = {"model_load_ms": round(load_ms, 1)}
    stage_laps: dict[str, list[float]] = {}
    print("\ncheck latency, decode -> decision (one core):")
    for label, n in SIZES.items():
        gallery = synthetic_gallery(n, enrolled, pipeline.embedding_size, rng)
        latencies, cpu, refused = [], [], 0
        for _ in range(args.repeat):
            for photo in probes:
                analysis = None
                started, started_cpu = time.perf_counter(), time.process_time()
                try:
                    analysis = pipeline.analyse(photo.data)
                    pipeline.decide(analysis.embedding, gallery)
                except FaceError:
                    refused += 1  # a refusal is a complete check too, usually a faster one
                latencies.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - started_cpu) * 1000)
                if label == "10k" and analysis is not None:
                    for stage, ms in analysis.timings_ms.items():
                        stage_laps.setdefault(stage, []).append(ms)
        p50, p99 = pct(latencies, 50), pct(latencies, 99)
        figures[f"p50_ms_{label}"] = round(p50, 2)
        figures[f"p99_ms_{label}"] = round(p99, 2)
        # CPU time is what the check costs when nothing else wants the core; wall time above
        # also counts the moments other processes on this machine had it.
        figures[f"p50_cpu_ms_{label}"] = round(pct(cpu, 50), 2)
        figures[f"p99_cpu_ms_{label}"] = round(pct(cpu, 99), 2)
        if label == "10k":
            figures["checks_per_s_per_process_10k"] = round(1000 / float(np.mean(latencies)), 1)
        print(f"  {label:>4} residents: p50 {p50:6.1f} ms  p99 {p99:6.1f} ms  (CPU time p50 {pct(cpu, 50):5.1f} ms "
              f"p99 {pct(cpu, 99):5.1f} ms; {len(latencies)} checks, {refused} refused by quality gates)")
    print(f"  checks per second per process (10k): {figures['checks_per_s_per_process_10k']}")
    print("  stage medians at 10k: " + ", ".join(f"{k} {np.median(v):.1f} ms" for k, v in stage_laps.items()))
    for stage, values in stage_laps.items():
        figures[f"stage_{stage}_p50_ms"] = round(float(np.median(values)), 2)

    print("\n1:N search alone (one core):")
    queries = [e for _, e in enrolled]
    for label, n in SIZES.items():
        gallery = synthetic_gallery(n, enrolled, pipeline.embedding_size, rng)
        # probes: the real embeddings and near-copies (as a new photo of a resident would be)
        qs = [q + rng.normal(0, 0.03, q.shape).astype(np.float32) for q in queries for _ in range(4)]
        fast = timed(round_robin_search(gallery, qs), args.searches)
        fast_cpu = timed(round_robin_search(gallery, qs), args.searches, clock=time.process_time)
        exact = timed(round_robin_search(gallery, qs, exact=True), max(args.searches // 5, 20))
        same_person = same_runner = 0
        for q in qs:
            a, b = gallery.search(q), gallery.search(q, exact=True)
            same_person += a.person_id == b.person_id and abs(a.score - b.score) < 1e-6
            same_runner += a.runner_up_id == b.runner_up_id
        mode = "exact" if n <= Gallery.EXACT_UP_TO else f"two-stage ({gallery.candidates} candidates)"
        figures[f"search_p50_ms_{label}"] = round(pct(fast, 50), 3)
        figures[f"search_p90_ms_{label}"] = round(pct(fast, 90), 3)
        figures[f"search_p99_ms_{label}"] = round(pct(fast, 99), 3)
        figures[f"search_p99_cpu_ms_{label}"] = round(pct(fast_cpu, 99), 3)
        figures[f"search_exact_p50_ms_{label}"] = round(pct(exact, 50), 3)
        figures[f"search_agreement_ratio_{label}"] = round(same_person / len(qs), 4)
        print(f"  {label:>4}: {mode:28s} p50 {pct(fast, 50):6.3f} ms  p90 {pct(fast, 90):6.3f} ms  "
              f"p99 {pct(fast, 99):6.3f} ms (CPU p99 {pct(fast_cpu, 99):6.3f}) | exact p50 "
              f"{pct(exact, 50):7.3f} ms | same best person+score {same_person}/{len(qs)}, "
              f"same runner-up {same_runner}/{len(qs)}")

    print()
    t = time.perf_counter()
    report = gate_accuracy.evaluate(pipeline, augment=not args.no_augment)
    print(gate_accuracy.format_report(report))
    print(f"  (accuracy run {time.perf_counter() - t:.1f} s)")
    figures.update(gate_accuracy.figures(report))

    print()
    table = gate_accuracy.liveness_table(pipeline, photos)
    print(gate_accuracy.format_liveness(table, pipeline.liveness.threshold if pipeline.liveness else 0.5))
    figures["liveness_enabled"] = pipeline.liveness is not None
    figures["liveness_enforced"] = bool(pipeline.liveness and pipeline.liveness.enforce)
    if table:
        real = [row["real"] for row in table.values() if isinstance(row["real"], float)]
        attacks = [v for row in table.values() for k, v in row.items() if k != "real" and isinstance(v, float)]
        threshold = pipeline.liveness.threshold
        figures["liveness_real_min_score"] = round(min(real), 4)
        figures["liveness_real_below_threshold"] = sum(v < threshold for v in real)
        figures["liveness_simulated_attacks_caught"] = sum(v < threshold for v in attacks)
        figures["liveness_simulated_attacks"] = len(attacks)

    def verdict(ok: bool) -> str:
        return "yes" if ok else "NO"

    print("\ntargets: check p99 at 10k < 150 ms: {} (wall {:.1f} ms, CPU {:.1f} ms); search p99 at 100k < 5 ms: {} "
          "(p50 {:.2f} ms, p99 {:.2f} ms, CPU p99 {:.2f} ms); zero false accepts: {}".format(
              verdict(figures["p99_ms_10k"] < 150), figures["p99_ms_10k"], figures["p99_cpu_ms_10k"],
              verdict(figures["search_p99_ms_100k"] < 5), figures["search_p50_ms_100k"],
              figures["search_p99_ms_100k"], figures["search_p99_cpu_ms_100k"],
              verdict(figures["false_accepts_pairs"] == 0 and figures["open_set_false_accepts"] == 0)))
    if load_before is not None:
        # Other processes on the machine preempt this one: the p99s carry that noise.
        figures["load_average_1m_at_start"] = round(load_before, 2)
        figures["cpus"] = os.cpu_count()
        print(f"(1-minute load average at start {load_before:.2f} on {os.cpu_count()} CPUs: p99s include "
              "preemption by other processes)")
    # The pipeline is numpy + Pillow + onnxruntime only (OpenCV does not fit a Lambda layer): prove it.
    figures["opencv_imported"] = bool(opencv_modules() & set(sys.modules))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
