"""API function figures: cold import, warm trivial-query latency through Mangum, package size.

Run: sunflower bench api [--requests N]
Prints a table, then one JSON line. Targets (issue 2): cold import < 1 s, warm trivial query
p99 < 5 ms, API package (function + its layers, unzipped) < 50 MB. The /healthz route through the
same handler is the in-process baseline: the ratio is what GraphQL adds on top of Mangum+Starlette.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COLD_IMPORT = (
    "import time; t = time.perf_counter(); import functions.graphql_api; "
    "print((time.perf_counter() - t) * 1000)"
)


def cold_import_ms(runs: int) -> list[float]:
    """Each run is a fresh interpreter, as a new Lambda container would be."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    subprocess.run([sys.executable, "-c", "import functions.graphql_api"], cwd=ROOT, env=env, check=True)  # warm .pyc
    return [
        float(subprocess.run([sys.executable, "-c", COLD_IMPORT], cwd=ROOT, env=env, check=True,
                             capture_output=True, text=True).stdout)
        for _ in range(runs)
    ]


def _event(path: str, method: str, body: str | None, headers: dict[str, str]) -> dict:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "api.example.gov.cn", "content-type": "application/json", **headers},
        "requestContext": {
            "accountId": "123456789012", "apiId": "bench", "domainName": "api.example.gov.cn", "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "bench"},
            "requestId": "bench", "routeKey": "$default", "stage": "$default",
            "time": "24/Nov/2026:06:00:00 +0000", "timeEpoch": 1795500000000,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def latencies_ms(handler, event: dict, context, n: int) -> list[float]:
    for _ in range(max(n // 10, 20)):  # warm up
        handler(event, context)
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        response = handler(event, context)
        samples.append((time.perf_counter() - started) * 1000)
        assert response["statusCode"] == 200, response
    return sorted(samples)


def pct(samples: list[float], q: float) -> float:
    return samples[min(len(samples) - 1, int(round(q * (len(samples) - 1))))]


def package_mb() -> float:
    """The api function as deployed: its code and every layer infra/serverless.yml gives it."""
    from sunflower import build

    zips = [ROOT / ".build" / name for name in build.FUNCTIONS["api"]]
    if not all(z.exists() for z in zips):
        build.main([])
    return build.unzipped_size_mb(*zips)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--cold-runs", type=int, default=5)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))

    cold = cold_import_ms(args.cold_runs)

    import logging

    logging.disable(logging.INFO)
    from sunflower.local import cloud

    local = cloud.start()
    local.build()
    from functions import graphql_api
    from sunflower.auth.principals import Role
    from sunflower.local.identity import issue_token
    from sunflower.local.lambda_context import LambdaContext

    context = LambdaContext.for_invocation("api", region=local.catalog.region, timeout_s=900)
    token = issue_token(local.identity.user_pool_id, local.identity.client_id, user="bench", roles=[Role.OFFICIAL])
    trivial = latencies_ms(graphql_api.handler, _event("/graphql", "POST", '{"query":"{ __typename }"}', {}), context, args.requests)
    health = latencies_ms(graphql_api.handler, _event("/healthz", "GET", None, {}), context, args.requests)
    me = latencies_ms(
        graphql_api.handler,
        _event("/graphql", "POST", '{"query":"{ me { id roles } }"}', {"authorization": f"Bearer {token}"}),
        context,
        args.requests,
    )
    local.stop()
    size = package_mb()

    rows = [
        ("cold import of functions/graphql_api (median of %d)" % len(cold), f"{statistics.median(cold):8.1f} ms", "< 1000 ms"),
        ("warm { __typename } p50", f"{pct(trivial, .5):8.2f} ms", ""),
        ("warm { __typename } p99", f"{pct(trivial, .99):8.2f} ms", "< 5 ms"),
        ("warm /healthz p50 (baseline, same handler)", f"{pct(health, .5):8.2f} ms", ""),
        ("warm /healthz p99 (baseline)", f"{pct(health, .99):8.2f} ms", ""),
        ("warm { me } with JWT p50 / p99", f"{pct(me, .5):5.2f} / {pct(me, .99):.2f} ms", ""),
        ("API package unzipped (function + deps and office layers)", f"{size:8.1f} MB", "< 50 MB"),
    ]
    for name, value, target in rows:
        print(f"{name:52} {value:>18}  {target}")
    print(json.dumps({
        "cold_import_ms": round(statistics.median(cold), 1),
        "cold_import_max_ms": round(max(cold), 1),
        "p50_ms": round(pct(trivial, .5), 3),
        "p99_ms": round(pct(trivial, .99), 3),
        "healthz_p50_ms": round(pct(health, .5), 3),
        "healthz_p99_ms": round(pct(health, .99), 3),
        "graphql_over_healthz_p50_ratio": round(pct(trivial, .5) / pct(health, .5), 2),
        "me_jwt_p50_ms": round(pct(me, .5), 3),
        "me_jwt_p99_ms": round(pct(me, .99), 3),
        "requests": args.requests,
        "package_mb": round(size, 1),
    }))


if __name__ == "__main__":
    main()
