"""The service's API through an in-process client: every route, every error, batched
statistics equal to ``gpt2guard score``'s, auth, and the batcher's coalescing."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from click.testing import CliRunner

pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
from fastapi.testclient import TestClient  # noqa: E402

from gpt2guard.cli import main  # noqa: E402

THRESHOLD = -5.5


@pytest.fixture(scope="module")
def docs():
    """Builtin human documents of varied length, a too-short one, an empty one, markup."""
    from gpt2guard.datasets.builtin import builtin_corpus

    corpus = [d.text for d in builtin_corpus() if d.split == "test"]
    return [" ".join(corpus[0].split()[:80]), " ".join(corpus[1].split()[:25]), "Too short.", "",
            " ".join(corpus[2].split()[:140]) + " <script>alert(1)</script>"]


@pytest.fixture(scope="module")
def service(micro_family):
    from gpt2guard.serve import load_service

    return load_service(method="logrank", family="micro", threshold=THRESHOLD, max_tokens=1500, max_docs=6,
                        detail_tokens=60)


def client(service, **options) -> TestClient:
    from gpt2guard.serve import create_app

    return TestClient(create_app(service, **options))


@pytest.fixture(scope="module")
def api(service):
    with client(service) as c:
        yield c


def cli_rows(tmp_path, docs, *args) -> list[dict]:
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(docs)),
                    encoding="utf-8")
    result = CliRunner().invoke(main, ["score", str(path), "--format", "json", "--no-progress", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


COMPARED = ("decision", "probability", "probability_threshold", "threshold", "n_tokens", "n_windows", "method",
            "scorer", "flags", "repairs", "reason")


def assert_same_verdicts(served: list[dict], scored: list[dict]) -> None:
    assert len(served) == len(scored)
    for a, b in zip(served, scored):
        for key in COMPARED:
            assert a[key] == b[key], (key, a[key], b[key])
        assert (a["score"] is None) == (b["score"] is None)
        if a["score"] is not None:
            assert a["score"] == pytest.approx(b["score"], rel=1e-6, abs=1e-9)


def test_score_gives_what_the_cli_gives(api, docs, tmp_path):
    r = api.post("/v1/score", json={"texts": docs})
    assert r.status_code == 200
    body = r.json()
    assert [row["index"] for row in body["results"]] == list(range(len(docs)))
    assert_same_verdicts(body["results"], cli_rows(tmp_path, docs, "--family", "micro", "--method", "logrank",
                                                   "--threshold", str(THRESHOLD)))
    decisions = [row["decision"] for row in body["results"]]
    assert decisions[2:4] == ["abstain", "abstain"] and set(decisions[:2]) <= {"machine", "human"}
    assert body["results"][3]["probability"] is None and body["results"][3]["reason"].startswith("unscorable")
    assert body["calibration"] == {"threshold": THRESHOLD, "source": "given"}


def test_calibration_at_start_up_is_the_cli_s(micro_family, docs, tmp_path):
    from gpt2guard.serve import load_service

    service = load_service(method="logp", family="micro", fpr=0.1, seed=3)
    cal = service.calibration
    assert cal["target_fpr"] == 0.1 and cal["seed"] == 3 and cal["n_human"] > 100
    assert cal["ci_low"] <= cal["threshold"] <= cal["ci_high"]
    with client(service) as c:
        served = c.post("/v1/score", json={"texts": docs}).json()
    scored = cli_rows(tmp_path, docs, "--family", "micro", "--method", "logp", "--fpr", "0.1", "--seed", "3")
    assert served["results"][0]["threshold"] == scored[0]["threshold"] == cal["threshold"]
    assert_same_verdicts(served["results"], scored)


def test_names_are_echoed_and_details_describe_every_token(api, docs):
    r = api.post("/v1/score", json={"texts": docs[:2], "names": ["a", "b"], "details": True})
    assert r.status_code == 200
    first, second = r.json()["results"]
    assert (first["name"], second["name"]) == ("a", "b")
    d = first["details"]
    assert d["total_tokens"] == first["n_tokens"] and d["shown_tokens"] == min(60, first["n_tokens"])
    assert len(d["tokens"]) == d["shown_tokens"]
    if d["shown_tokens"] == d["total_tokens"]:
        assert "".join(t["text"] for t in d["tokens"]) == docs[0]
    for t in d["tokens"]:
        assert t["bucket"] == ("r10" if t["rank"] < 10 else "r100" if t["rank"] < 100 else
                               "r1000" if t["rank"] < 1000 else "rrest")
        assert 0 < t["p"] <= 1 and len(t["top"]) == 5
        probs = [p for _, p in t["top"]]
        assert probs == sorted(probs, reverse=True)
        if t["rank"] == 0:  # the observed token is the top alternative
            assert t["top"][0][1] == pytest.approx(t["p"], rel=1e-4)
    assert d["spans"] and all(0 <= s["start"] < s["stop"] <= d["shown_tokens"] for s in d["spans"])
    sentences = d["sentences"]
    assert sentences[0]["start"] == 0 and sentences[-1]["stop"] == d["shown_tokens"]
    assert all(a["stop"] == b["start"] for a, b in zip(sentences, sentences[1:]))
    for s in sentences:
        assert s["score"] is not None and s["above_threshold"] == (s["score"] > THRESHOLD)


def test_a_sentence_score_is_the_method_on_its_tokens(service, docs):
    from gpt2guard.detector.methods import get_method
    from gpt2guard.serve.service import slice_stats

    (row,) = service.judge([docs[0]], details=[True])
    stats = service.view.score([docs[0]])[0]
    for s in row["details"]["sentences"]:
        assert s["score"] == pytest.approx(get_method("logrank")(slice_stats(stats, s["start"], s["stop"])))


def test_batched_requests_get_the_statistics_of_single_ones(service, docs):
    """Requests coalesced into one engine call get what each gets alone."""
    from gpt2guard.serve.batcher import Batcher

    alone = [service.judge([t])[0] for t in docs]

    async def together():
        batcher = Batcher(service)
        await batcher.start()
        try:
            rows = await asyncio.gather(*(batcher.submit([t], [False]) for t in docs))
        finally:
            await batcher.stop()
        return rows, batcher.batches

    rows, batches = asyncio.run(together())
    assert batches == 1  # every request waiting when the worker woke went into one call
    assert_same_verdicts([r[0] for r in rows], alone)
    assert all(r[0]["index"] == 0 for r in rows)  # each request numbers its own documents


def test_unbatched_server_scores_one_request_per_call(service, docs):
    from gpt2guard.serve.batcher import Batcher

    async def run():
        batcher = Batcher(service, batching=False)
        await batcher.start()
        try:
            await asyncio.gather(*(batcher.submit([t], [False]) for t in docs[:3]))
        finally:
            await batcher.stop()
        return batcher.batches

    assert asyncio.run(run()) == 3


def test_a_too_long_request_fails_alone_in_its_batch(service, docs):
    from gpt2guard.serve.batcher import Batcher
    from gpt2guard.serve.service import TooLarge

    long = " ".join([docs[0]] * 30)

    async def run():
        batcher = Batcher(service)
        await batcher.start()
        try:
            return await asyncio.gather(batcher.submit([docs[0]], [False]), batcher.submit([long], [False]),
                                        return_exceptions=True)
        finally:
            await batcher.stop()

    ok, failed = asyncio.run(run())
    assert isinstance(failed, TooLarge) and "limit of 1500" in str(failed)
    assert ok[0]["decision"] in ("machine", "human")


@pytest.mark.parametrize("body, status, words", [
    (b'{"texts": ["a"', 400, "malformed JSON"),
    (b'\xff\xfe{"texts": []}', 400, "malformed JSON"),
    (b'{"texts": [1, 2]}', 422, "texts.0"),
    (b'{"texts": "one string"}', 422, "texts"),
    (b'{"texts": []}', 422, "empty"),
    (b'{"texts": ["a"], "detail": true}', 422, "unknown field 'detail'"),
    (b'{"texts": ["a"], "details": "yes"}', 422, "details"),
    (b'{"texts": ["a"], "names": ["x", "y"]}', 422, "names has 2 entries"),
    (b'{}', 422, "missing field 'texts'"),
    (b'[]', 422, "body"),
    (b'null', 422, "body"),
    (b'{"texts": ["a", "b", "c", "d", "e", "f", "g"]}', 413, "limit of 6 per request"),
])
def test_bad_requests_get_one_clear_line(api, body, status, words):
    r = api.post("/v1/score", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status
    assert list(r.json()) == ["error"] and words in r.json()["error"] and "\n" not in r.json()["error"]


def test_binary_and_invalid_text_are_abstentions_not_errors(api):
    body = json.dumps({"texts": ["\x00\x01\x02 binary \x00", "\ud800 lone surrogate " * 10, "   \n "], "details": True})
    r = api.post("/v1/score", content=body.encode("ascii"), headers={"content-type": "application/json"})
    assert r.status_code == 200
    rows = r.json()["results"]
    assert rows[0]["decision"] == "abstain" and "binary" in rows[0]["flags"]
    assert "invalid_utf8" in rows[1]["flags"]
    assert rows[2]["decision"] == "abstain" and rows[2]["probability"] is None


def test_a_long_document_is_scored_in_windows_and_a_longer_one_names_the_limit(service, docs):
    with client(service) as c:
        within = " ".join(docs[0].split()[:60] * 4)  # several micro context windows, under 1500 tokens
        r = c.post("/v1/score", json={"texts": [within]})
        assert r.status_code == 200 and r.json()["results"][0]["n_windows"] > 1
        r = c.post("/v1/score", json={"texts": [docs[0], " ".join([docs[0]] * 30)]})
        assert r.status_code == 413 and "document 1 has" in r.json()["error"] and "limit of 1500" in r.json()["error"]


def test_body_queue_and_timeout_limits(service, docs):
    with client(service, max_body_bytes=200) as c:
        r = c.post("/v1/score", json={"texts": [docs[0]]})
        assert r.status_code == 413 and "200 bytes" in r.json()["error"]
    with client(service, queue_docs=2) as c:
        r = c.post("/v1/score", json={"texts": docs[:3]})
        assert r.status_code == 503 and r.headers["retry-after"] == "1" and "limit 2" in r.json()["error"]
        assert c.post("/v1/score", json={"texts": docs[:2]}).status_code == 200  # still serving
    with client(service, timeout=1e-4) as c:
        r = c.post("/v1/score", json={"texts": [docs[0]] * 4})
        assert r.status_code == 504 and "timeout" in r.json()["error"]
        assert c.get("/readyz").status_code == 200


def test_token_guards_every_route_but_healthz(service, docs):
    with client(service, token="s3cret") as c:
        assert c.get("/healthz").status_code == 200
        for method, path in (("get", "/"), ("get", "/v1/info"), ("get", "/readyz"), ("get", "/docs"),
                             ("get", "/openapi.json"), ("post", "/v1/score")):
            r = getattr(c, method)(path, **({"json": {"texts": ["x"]}} if method == "post" else {}))
            assert r.status_code == 401, path
            assert "token" in r.json()["error"] and r.headers["www-authenticate"]
        assert c.get("/").headers["www-authenticate"].startswith("Basic")
        assert c.get("/v1/info", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/v1/info", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        basic = base64.b64encode(b"reviewer:s3cret").decode()
        assert c.get("/", headers={"Authorization": f"Basic {basic}"}).status_code == 200
        r = c.post("/v1/score", json={"texts": [docs[0]]}, headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200


def test_info_names_the_weights_and_the_calibration(api, service):
    from gpt2guard.family import load_model

    info = api.get("/v1/info").json()
    det = info["detector"]
    assert det["kind"] == "zero-shot" and det["method"] == "logrank" and det["family"] == "micro"
    assert det["weights"] == {det["sizes"][0]: load_model("micro").model_hash}
    assert info["calibration"]["threshold"] == THRESHOLD and info["limits"]["max_tokens"] == 1500
    assert info["version"]


def test_probes_page_and_offline_docs(api):
    assert api.get("/healthz").json() == {"status": "alive"}
    assert api.get("/readyz").json() == {"status": "ready"}
    page = api.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text  # nothing fetched from elsewhere
    docs = api.get("/docs")
    assert docs.status_code == 200 and "cdn." not in docs.text and "/docs-assets/swagger-ui-bundle.js" in docs.text
    assert api.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    schema = api.get("/openapi.json").json()
    assert {"/v1/score", "/v1/info", "/healthz", "/readyz"} <= set(schema["paths"])


def test_readyz_is_503_outside_the_server_s_life(service):
    from gpt2guard.serve import create_app

    app = create_app(service)
    c = TestClient(app)  # not entered: the lifespan has not started the worker
    assert c.get("/readyz").status_code == 503
    assert c.post("/v1/score", json={"texts": ["x"]}).status_code == 503


def test_a_trained_detector_serves_probabilities_and_sentence_probabilities(micro_family, docs, tmp_path):
    from gpt2guard.datasets.builtin import builtin_corpus
    from gpt2guard.detector.estimators import FeatureDetector
    from gpt2guard.detector.trained import TrainedDetector
    from gpt2guard.serve import load_service

    human = [" ".join(d.text.split()[:50]) for d in builtin_corpus() if d.split == "train"][:12]
    machine = [" ".join(t.split()[::-1]) for t in human]  # a stand-in the features separate
    det_dir = tmp_path / "det"
    TrainedDetector(FeatureDetector("logistic"), "micro", ["small"], min_tokens=4).fit(
        human + machine, ["human"] * 12 + ["machine"] * 12).save(det_dir)
    service = load_service(detector=str(det_dir), family="micro")
    with client(service) as c:
        body = c.post("/v1/score", json={"texts": docs[:2], "details": True}).json()
        info = c.get("/v1/info").json()
    assert info["detector"]["kind"] == "features" and info["detector"]["sizes"] == ["small"]
    assert_same_verdicts(body["results"], cli_rows(tmp_path, docs[:2], "--detector", str(det_dir)))
    row = body["results"][0]
    assert row["probability"] is not None and row["probability_threshold"] is not None
    assert all(s["probability"] is not None and 0 <= s["probability"] <= 1 for s in row["details"]["sentences"])


def test_serve_refuses_a_taken_port_in_one_line(micro_family):
    from gpt2guard.serve.server import bind

    taken = bind("127.0.0.1", 0)
    try:
        port = taken.getsockname()[1]
        result = CliRunner().invoke(main, ["serve", "--family", "micro", "--method", "logp", "--threshold", "0",
                                           "--port", str(port)])
    finally:
        taken.close()
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "in use" in lines[0], result.output


def test_serve_refuses_contradictory_options():
    result = CliRunner().invoke(main, ["serve", "--detector", ".", "--method", "logp"])
    assert result.exit_code == 2 and "Error" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["serve", "--token", "  "])
    assert result.exit_code == 2 and "token is empty" in result.output


def test_stopping_answers_every_queued_request(service, docs):
    """Shutdown drains: requests queued when the server stops are all answered, once each."""
    from gpt2guard.serve.batcher import Batcher

    async def run():
        batcher = Batcher(service, max_batch_tokens=1)  # one request per engine call: a real queue forms
        await batcher.start()
        pending = [asyncio.ensure_future(batcher.submit([t], [False], [f"r{i}"])) for i, t in enumerate(docs)]
        await asyncio.sleep(0)  # every request is queued
        await batcher.stop()
        return [p.result() for p in pending], batcher.batches

    rows, batches = asyncio.run(run())
    assert [r[0]["name"] for r in rows] == [f"r{i}" for i in range(len(docs))]
    assert batches == len(docs)
