"""The sandboxes' fault injector, on a tiny app over real HTTP."""

import httpx
import pytest
from fastapi import FastAPI

from sandboxes import faults
from servers import LiveServer


def tiny_app(initial: faults.Faults | None = None) -> FastAPI:
    app = FastAPI()

    @app.get("/thing")
    def thing() -> dict[str, str]:
        return {"ok": "yes"}

    faults.install(app, error_body=lambda status, message: {"error": {"code": str(status),
                                                                      "message": message}},
                   faults=initial)
    return app


def test_no_faults_by_default() -> None:
    with LiveServer(tiny_app()) as server:
        assert all(httpx.get(f"{server.url}/thing").status_code == 200 for _ in range(20))


def test_rates_are_seeded_and_each_fault_looks_native() -> None:
    with LiveServer(tiny_app()) as server, httpx.Client(base_url=server.url) as client:
        client.put("/_sandbox/faults", json={"failure_rate": 0.3, "throttle_rate": 0.2,
                                             "drop_rate": 0.1, "retry_after": 3, "seed": 7})
        outcomes = {"ok": 0, "failed": 0, "throttled": 0, "dropped": 0}
        for _ in range(200):
            try:
                answer = client.get("/thing")
            except httpx.RemoteProtocolError:
                outcomes["dropped"] += 1
                continue
            if answer.status_code == 429:
                assert answer.headers["retry-after"] == "3"
                outcomes["throttled"] += 1
            elif answer.status_code == 500:
                assert answer.json()["error"]["message"]
                outcomes["failed"] += 1
            else:
                outcomes["ok"] += 1
        counts = client.get("/_sandbox/faults").json()["counts"]
    assert counts == {**{k: outcomes[k] for k in ("failed", "dropped", "throttled")}, "lost": 0}
    assert 40 <= outcomes["failed"] <= 80 and 20 <= outcomes["throttled"] <= 60
    assert 5 <= outcomes["dropped"] <= 40 and outcomes["ok"] >= 50


def test_a_lost_response_still_takes_effect() -> None:
    app = tiny_app()
    calls: list[int] = []

    @app.post("/count")
    def count() -> dict[str, int]:
        calls.append(1)
        return {"n": len(calls)}

    with LiveServer(app) as server, httpx.Client(base_url=server.url) as client:
        client.put("/_sandbox/faults", json={"lost_response_rate": 1.0})
        with pytest.raises(httpx.RemoteProtocolError):
            client.post("/count")
        client.put("/_sandbox/faults", json={})
        assert client.post("/count").json() == {"n": 2}
    assert len(calls) == 2


def test_latency_is_added() -> None:
    with LiveServer(tiny_app(faults.Faults(latency_ms=150))) as server:
        answer = httpx.get(f"{server.url}/thing")
    assert answer.elapsed.total_seconds() >= 0.15


def test_rates_must_be_shares() -> None:
    with pytest.raises(ValueError):
        faults.Faults(failure_rate=1.5)
