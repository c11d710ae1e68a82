"""Registry figures: bulk import throughput end to end, and the cost of one graph query.

Run: sunflower bench registries [--rows N] [--entities N]
1. Import: a CSV of N persons (default 100,000) is uploaded to the imports bucket of an embedded moto
   server; the S3 notification reaches the queue, the event pump hands it to functions/registry_import.py,
   and the clock stops when the ImportJob says it finished. rows_per_s is end to end.
2. Query: `entities(namePrefix, first: N)` with each entity's legal representative and credit profile,
   as a police officer stating a purpose, through the Mangum handler: DynamoDB requests per query at
   10 and N entities (they must be equal: no N+1), and p50/p99 latency at N.
Ends with one JSON line. Targets (issue 3): 100k rows in under 180 s; requests constant in list length.
"""

import argparse
import csv
import io
import json
import logging
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]


def _persons_csv(rng: random.Random, n: int) -> tuple[bytes, list[str]]:
    from sunflower.registries import synthetic

    numbers = synthetic.unique_id_numbers(rng, n)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["姓名", "身份证号", "手机号码", "现住址社区编码", "户号", "与户主关系"])
    for i, number in enumerate(numbers):
        writer.writerow([synthetic.person_name(rng), number, synthetic.mobile_phone(rng), "pf-youxie-xingfu",
                         f"2301080{i // 3:07d}", "户主" if i % 3 == 0 else "子"])
    return out.getvalue().encode("utf-8-sig"), numbers


def bench_import(rows: int) -> dict:
    import boto3

    from sunflower.auth.principals import SYSTEM
    from sunflower.common.settings import get_settings
    from sunflower.container import services
    from sunflower.local.pump import EventPump

    body, _ = _persons_csv(random.Random(1), rows)
    catalog = _cloud().catalog
    pump = EventPump(catalog)
    key = f"incoming/person/bench/{rows}-persons.csv"
    started = time.perf_counter()
    boto3.client("s3").put_object(Bucket=get_settings().bucket("imports"), Key=key, Body=body)
    pump.drain(timeout_s=3600)
    elapsed = time.perf_counter() - started
    jobs = services().imports.jobs_for_key(SYSTEM, key, limit=1).items
    job = jobs[0] if jobs else None
    assert job is not None and job.status.value == "succeeded", job
    return {
        "rows": rows,
        "import_s": round(elapsed, 1),
        "rows_per_s": round(rows / elapsed, 1),
        "accepted": job.accepted,
        "rejected": job.rejected,
    }


def _graph_query_event(prefix: str, first: int, token: str) -> dict:
    body = json.dumps({
        "query": "query($p: String!, $n: Int) { entities(namePrefix: $p, first: $n) { edges { node { name creditCode "
                 "legalRepresentative { name idNumber } creditProfile { grade blackList } } } } }",
        "variables": {"p": prefix, "n": first},
    })
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": "/graphql", "rawQueryString": "",
        "headers": {"host": "api.example.gov.cn", "content-type": "application/json",
                    "authorization": f"Bearer {token}", "x-purpose": quote("经侦协查 bench")},
        "requestContext": {"accountId": "123456789012", "apiId": "bench", "domainName": "api.example.gov.cn",
                           "domainPrefix": "api", "http": {"method": "POST", "path": "/graphql", "protocol": "HTTP/1.1",
                                                            "sourceIp": "127.0.0.1", "userAgent": "bench"},
                           "requestId": "bench", "routeKey": "$default", "stage": "$default",
                           "time": "24/Nov/2026:06:00:00 +0000", "timeEpoch": 1795500000000},
        "body": body, "isBase64Encoded": False,
    }


def bench_query(entities: int, runs: int) -> dict:
    from pynamodb.connection.base import Connection

    from functions import graphql_api
    from sunflower.auth.principals import SYSTEM, Role
    from sunflower.container import services
    from sunflower.local.identity import issue_token
    from sunflower.local.lambda_context import LambdaContext
    from sunflower.registries import synthetic
    from sunflower.registries.service import ImportKind, Row

    rng = random.Random(2)
    ids, codes = synthetic.unique_id_numbers(rng, entities), synthetic.unique_credit_codes(rng, entities)
    registries = services().registries
    registries.import_rows(SYSTEM, ImportKind.PERSON, [Row(i, {"name": synthetic.person_name(rng), "id_number": n})
                                                       for i, n in enumerate(ids)], "bench")
    registries.import_rows(SYSTEM, ImportKind.ENTITY, [
        Row(i, {"name": f"哈尔滨平房测试{i:03d}有限公司", "credit_code": c, "legal_rep_id_number": ids[i]})
        for i, c in enumerate(codes)], "bench")
    registries.import_rows(SYSTEM, ImportKind.CREDIT, [
        Row(i, {"subject": c, "category": "行政处罚", "decided_on": "2026-01-05", "department": "平房区市场监督管理局",
                "decision_number": f"平市监罚〔2026〕{i}号"}) for i, c in enumerate(codes[::3])], "bench")

    local = _cloud()
    token = issue_token(local.identity.user_pool_id, local.identity.client_id, user="bench-police", roles=[Role.POLICE])
    context = LambdaContext.for_invocation("api", region=local.catalog.region, timeout_s=900)
    calls: list[str] = []
    original = Connection._make_api_call

    def counting(self, operation_name, operation_kwargs, *args, **kwargs):
        calls.append(operation_name)
        return original(self, operation_name, operation_kwargs, *args, **kwargs)

    Connection._make_api_call = counting
    try:
        requests = {}
        for n in (10, entities):
            calls.clear()
            response = graphql_api.handler(_graph_query_event("哈尔滨平房测试", n, token), context)
            edges = json.loads(response["body"])["data"]["entities"]["edges"]
            assert len(edges) == n and all(e["node"]["legalRepresentative"] for e in edges), response["body"][:300]
            requests[n] = len(calls)
        samples = []
        event = _graph_query_event("哈尔滨平房测试", entities, token)
        for _ in range(runs):
            started = time.perf_counter()
            graphql_api.handler(event, context)
            samples.append((time.perf_counter() - started) * 1000)
    finally:
        Connection._make_api_call = original
    samples.sort()
    return {
        "entities": entities,
        "dynamodb_requests_10": requests[10],
        f"dynamodb_requests_{entities}": requests[entities],
        "requests_constant": requests[10] == requests[entities],
        "p50_ms": round(statistics.median(samples), 1),
        "p99_ms": round(samples[min(len(samples) - 1, int(0.99 * len(samples)))], 1),
    }


_LOCAL = None


def _cloud():
    global _LOCAL
    if _LOCAL is None:
        from sunflower.local import cloud

        _LOCAL = cloud.start()
        _LOCAL.build()
    return _LOCAL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--entities", type=int, default=50)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    logging.disable(logging.WARNING)
    _cloud()

    query = bench_query(args.entities, args.runs)
    imported = bench_import(args.rows)
    rows = [
        (f"import of {imported['rows']} persons, S3 -> queue -> function", f"{imported['import_s']} s", "< 180 s"),
        ("  throughput", f"{imported['rows_per_s']} rows/s", ""),
        (f"DynamoDB requests, entities query of 10 / {args.entities}",
         f"{query['dynamodb_requests_10']} / {query[f'dynamodb_requests_{args.entities}']}", "equal"),
        (f"entities query of {args.entities} p50 / p99", f"{query['p50_ms']} / {query['p99_ms']} ms", ""),
    ]
    for name, value, target in rows:
        print(f"{name:58} {value:>16}  {target}")
    print(json.dumps({
        "rows": imported["rows"], "import_s": imported["import_s"], "rows_per_s": imported["rows_per_s"],
        "rows_accepted": imported["accepted"], "rows_rejected": imported["rejected"],
        "query_entities": args.entities,
        "dynamodb_requests_10": query["dynamodb_requests_10"],
        f"dynamodb_requests_{args.entities}": query[f"dynamodb_requests_{args.entities}"],
        "dynamodb_requests_constant": query["requests_constant"],
        "query_p50_ms": query["p50_ms"], "query_p99_ms": query["p99_ms"],
    }))


if __name__ == "__main__":
    main()
