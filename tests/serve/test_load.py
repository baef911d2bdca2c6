"""Bounded load tests of ``gpt2guard serve`` on a real socket: 64 concurrent clients get
every answer once and each answer is their own; a small queue provokes 503s with
Retry-After and nothing else; SIGTERM drains the requests in flight and exits 0."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import pytest

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
httpx = pytest.importorskip("httpx", reason="httpx drives the load test")

THRESHOLD = 2.0
CLIENTS = 64
URL = re.compile(r"serving on (http://[^\s/]+)")


@contextmanager
def server(*args: str, start_timeout: float = 120.0):
    """``gpt2guard serve`` (micro family, logrank) on a free port; yields (process, url, stderr lines)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.setdefault("OMP_NUM_THREADS", "1")  # the clients share the CPUs with the server
    cmd = [sys.executable, "-c", "from gpt2guard.cli import main; main()", "serve", "--family", "micro",
           "--method", "logrank", "--threshold", str(THRESHOLD), "--host", "127.0.0.1", "--port", "0", *args]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(line.rstrip("\n") for line in proc.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + start_timeout
        url = None
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"the server exited with {proc.returncode}: {lines}"
            url = url or next((m.group(1) for m in map(URL.search, list(lines)) if m), None)
            if url:
                try:
                    if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        else:
            pytest.fail(f"the server was not ready within {start_timeout} s: {lines}")
        yield proc, url, lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(timeout=10)


@pytest.fixture(scope="module")
def corpus():
    """Builtin human documents (the standard library's part) of 200 words or more."""
    from gpt2guard.datasets.builtin import builtin_corpus

    return [d.text for d in builtin_corpus(packages=()) if d.split == "test" and len(d.text.split()) >= 200]


@pytest.fixture(scope="module")
def pool(corpus):
    """40 distinct documents of 20 to 98 words."""
    return [" ".join(text.split()[:20 + 2 * i]) for i, text in enumerate(corpus[:40])]


@pytest.fixture(scope="module")
def default_server(micro_family):
    """A server with the default options, for the load test and then the SIGTERM test (which stops it)."""
    with server() as running:
        yield running


def plan(pool: list[str], n_requests: int, tag: str) -> list[dict]:
    """Requests of one to three documents, each document named with a marker unique to its request."""
    out = []
    for i in range(n_requests):
        k = 1 + i % 3
        idx = [(7 * i + j) % len(pool) for j in range(k)]
        out.append({"texts": [pool[d] for d in idx], "names": [f"{tag}-{i}-{j}" for j in range(k)], "docs": idx})
    return out


def solo_rows(url: str, pool: list[str]) -> list[dict]:
    """Each document scored alone, one request at a time: what a batched answer must equal."""
    with httpx.Client(base_url=url, timeout=60) as c:
        rows = []
        for text in pool:
            r = c.post("/v1/score", json={"texts": [text]})
            assert r.status_code == 200, r.text
            rows.append(r.json()["results"][0])
    return rows


async def run_clients(url: str, requests: list[dict], clients: int = CLIENTS, retry_503: bool = False) -> dict:
    """``clients`` concurrent clients send every request once (a 503 is retried when
    ``retry_503``); returns the answers by request and every status seen."""
    answers: dict[int, list] = {}
    seen: list[tuple[int, dict, dict]] = []  # (status, headers, body) of every response
    todo = iter(range(len(requests)))
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(120.0), limits=limits) as client:

        async def one_client():
            for i in todo:
                body = {"texts": requests[i]["texts"], "names": requests[i]["names"]}
                while True:
                    r = await client.post("/v1/score", json=body)
                    seen.append((r.status_code, dict(r.headers), r.json()))
                    if r.status_code == 503 and retry_503:
                        await asyncio.sleep(0.02)  # Retry-After is advice; a test need not wait a second
                        continue
                    break
                answers.setdefault(i, []).append((r.status_code, r.json()))

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return {"answers": answers, "seen": seen}


def check_answers(requests: list[dict], answers: dict, solo: list[dict]) -> None:
    """Every request answered exactly once with 200, with its own documents' rows in order."""
    assert sorted(answers) == list(range(len(requests))), "a request got no answer"
    for i, req in enumerate(requests):
        assert len(answers[i]) == 1, f"request {i} answered {len(answers[i])} times"
        status, body = answers[i][0]
        assert status == 200, body
        rows = body["results"]
        assert [r["name"] for r in rows] == req["names"]
        assert [r["index"] for r in rows] == list(range(len(req["texts"])))
        for row, d in zip(rows, req["docs"]):
            ref = solo[d]
            for key in ("n_tokens", "n_windows", "decision", "flags"):
                assert row[key] == ref[key], (i, key, row[key], ref[key])
            assert row["score"] == pytest.approx(ref["score"], rel=1e-5, abs=1e-6)


def test_64_clients_every_request_answered_once_with_its_own_rows(default_server, pool):
    proc, url, _ = default_server
    solo = solo_rows(url, pool)
    requests = plan(pool, 640, "load")
    out = asyncio.run(run_clients(url, requests))
    check_answers(requests, out["answers"], solo)
    assert {s for s, _, _ in out["seen"]} == {200}
    assert proc.poll() is None


def test_small_queue_gives_only_503_with_retry_after_and_retries_are_answered(micro_family, pool):
    with server("--queue-size", "3") as (proc, url, _):
        solo = solo_rows(url, pool)
        requests = plan(pool, 128, "queue")
        out = asyncio.run(run_clients(url, requests, retry_503=True))
        check_answers(requests, out["answers"], solo)
        refused = [(h, b) for s, h, b in out["seen"] if s == 503]
        assert {s for s, _, _ in out["seen"]} == {200, 503}, "the small queue provoked no 503"
        for headers, body in refused:
            assert headers.get("retry-after") == "1"
            assert set(body) == {"error"} and "queue" in body["error"] and "\n" not in body["error"]
        assert proc.poll() is None


def test_sigterm_answers_requests_in_flight_then_exits_zero(default_server, corpus):
    proc, url, lines = default_server
    long_docs = corpus[:8]

    async def main():
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(120.0), limits=limits) as client:

            async def post(i):
                r = await client.post("/v1/score", json={"texts": long_docs[i % 4:i % 4 + 4],
                                                         "names": [f"t{i}-{j}" for j in range(4)]})
                return r, time.monotonic()

            tasks = [asyncio.create_task(post(i)) for i in range(32)]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)  # the server is scoring them
            await asyncio.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            stopped_at = time.monotonic()
            return await asyncio.gather(*tasks), stopped_at

    done, stopped_at = asyncio.run(main())
    assert [r.status_code for r, _ in done] == [200] * 32
    for i, (r, _) in enumerate(done):
        assert [row["name"] for row in r.json()["results"]] == [f"t{i}-{j}" for j in range(4)]
    assert any(t > stopped_at for _, t in done), "every request was answered before SIGTERM: nothing drained"
    assert proc.wait(timeout=60) == 0
    deadline = time.monotonic() + 10
    while not any(line.startswith("stopped") for line in lines) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(line.startswith("stopped") and "every request in flight answered" in line for line in lines), lines
