"""Placement's over-allocation under concurrent claims, reproduced with placement's own code.

Run with the OpenStack venv's python (it imports placement), never inside hakit's agents:

    OS_PLACEMENT_CONFIG_DIR=DIR python placement_race.py race early|late
    OS_PLACEMENT_CONFIG_DIR=DIR python placement_race.py burst REQUESTS THREADS

`race` drives two claims (A, B: 1 VCPU each on a provider of 10 with 9 used) through
placement's WSGI app in this process, with A paused once inside its transaction until B
has committed: `early` right after A's first usage read, `late` just before A's
generation update. `burst` sends REQUESTS claims of 1 VCPU from THREADS threads to three
providers of 10. Both print JSON: the usages, the capacity and the HTTP statuses.

Why it over-allocates (docs/placement-overallocation.md): on a generation conflict
`replace_all` retries `_set_allocations` inside the caller's transaction, which is
neither rolled back nor restarted. The retry reads usage from the transaction's old
REPEATABLE-READ snapshot (and counts its own failed attempt's rows as existing usage)
but takes a fresh generation, so the generation check passes on a stale capacity check.
`[placement] allocation_conflict_retry_count = 1` removes the in-transaction retry: the
conflict becomes a 409 and nova's report client retries the claim as a new request.
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
from collections.abc import Callable
from typing import Any

CAPACITY = 10
NOVA_ATTEMPTS = 4  # nova's report client sends a claim again on a concurrent-update 409


def main(argv: list[str]) -> int:
    import placement.wsgi  # type: ignore[import-not-found]

    app = placement.wsgi.init_application()
    mode = argv[0] if argv else ""
    if mode == "race" and len(argv) == 2 and argv[1] in ("early", "late"):
        result = race(app, argv[1])
    elif mode == "burst" and len(argv) == 3:
        result = burst(app, int(argv[1]), int(argv[2]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


def call(app: Any, method: str, path: str, body: object = None, version: str = "1.28") -> Any:
    import webob  # type: ignore[import-not-found]

    request = webob.Request.blank(path, method=method)
    request.headers.update(
        {
            "X-Auth-Token": "admin",
            "Accept": "application/json",
            "OpenStack-API-Version": f"placement {version}",
        }
    )
    if body is not None:
        request.body = json.dumps(body).encode()
        request.content_type = "application/json"
    return request.get_response(app)


def provider(app: Any) -> str:
    """A new provider with CAPACITY VCPU (allocation ratio 1.0)."""
    uid = str(uuid.uuid4())
    call(app, "POST", "/resource_providers", {"name": uid, "uuid": uid}, "1.20")
    call(
        app,
        "PUT",
        f"/resource_providers/{uid}/inventories",
        {
            "resource_provider_generation": 0,
            "inventories": {"VCPU": {"total": CAPACITY, "allocation_ratio": 1.0}},
        },
    )
    return uid


def claim(app: Any, rp: str, vcpus: int = 1, attempts: int = 1) -> int:
    """PUT /allocations/{new consumer} as nova's scheduler does; the HTTP status. A
    concurrent-update 409 is sent again up to `attempts` times in all (nova: 4)."""
    body = {
        "allocations": {rp: {"resources": {"VCPU": vcpus}}},
        "project_id": "p",
        "user_id": "u",
        "consumer_generation": None,
    }
    consumer = str(uuid.uuid4())
    for _ in range(attempts):
        answer = call(app, "PUT", f"/allocations/{consumer}", body)
        if answer.status_int != 409 or "placement.concurrent_update" not in answer.text:
            break
    return int(answer.status_int)


def usage(app: Any, rp: str) -> int:
    answer = call(app, "GET", f"/resource_providers/{rp}/usages")
    return int(json.loads(answer.text)["usages"].get("VCPU", 0))


def race(app: Any, when: str) -> dict[str, Any]:
    from placement.objects import allocation, resource_provider  # type: ignore[import-not-found]

    rp = provider(app)
    claim(app, rp, CAPACITY - 1)
    a_inside, b_done = threading.Event(), threading.Event()
    paused: list[bool] = []

    def pause_a() -> None:
        if threading.current_thread().name == "A" and not paused:
            paused.append(True)
            a_inside.set()
            b_done.wait(20)

    def after(real: Callable[..., Any], point: str) -> Callable[..., Any]:
        def hooked(*args: Any, **kwargs: Any) -> Any:
            if point == "before":
                pause_a()
            result = real(*args, **kwargs)
            if point == "after":
                pause_a()
            return result

        return hooked

    if when == "early":  # the first read in A's transaction fixes its snapshot
        allocation._provider_usage_summary = after(allocation._provider_usage_summary, "after")
    else:
        cls = resource_provider.ResourceProvider
        cls.increment_generation = after(cls.increment_generation, "before")
    statuses: dict[str, int] = {}

    def request(name: str) -> None:
        if name == "B":
            a_inside.wait(20)
        statuses[name] = claim(app, rp)
        if name == "B":
            b_done.set()

    threads = [threading.Thread(target=request, args=(n,), name=n) for n in "AB"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return {"when": when, "usage": usage(app, rp), "capacity": CAPACITY, "statuses": statuses}


def burst(app: Any, requests: int, threads: int) -> dict[str, Any]:
    import time
    from concurrent.futures import ThreadPoolExecutor

    providers = [provider(app) for _ in range(3)]
    began = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        statuses = list(
            pool.map(
                lambda n: claim(app, providers[n % 3], attempts=NOVA_ATTEMPTS), range(requests)
            )
        )
    usages = [usage(app, rp) for rp in providers]
    return {
        "usages": usages,
        "capacity": CAPACITY,
        "seconds": round(time.monotonic() - began, 3),
        "over": sum(max(0, u - CAPACITY) for u in usages),
        "statuses": {str(s): statuses.count(s) for s in sorted(set(statuses))},
    }


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
