"""The page at ``/`` in a real browser: Debian's chromium, driven by Playwright, against a real
``gpt2guard serve`` process on the micro family.

Skips, with the reason, when Playwright or a chromium is missing or the browser does not start
(Playwright's own browser downloads are never used: the system chromium is launched).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

THRESHOLD = -3.5
DETAIL_TOKENS = 80
MAX_TOKENS = 400
TEXT = ("The committee met on Tuesday to discuss the new budget. Members agreed that the school needs more "
        "teachers, and they asked the city for help. The mayor said she would answer next week.")
MARKUP = "<script>alert(1)</script><b>x</b><img src=x onerror=alert(2)>"


def find_chromium() -> str | None:
    """The system chromium (``GPT2GUARD_CHROMIUM`` overrides the search)."""
    for name in (os.environ.get("GPT2GUARD_CHROMIUM"), "chromium", "chromium-browser", "/usr/bin/chromium"):
        if name and (path := shutil.which(name)):
            return path
    return None


@pytest.fixture(scope="module")
def browser():
    """A headless system chromium under Playwright, or a skip saying why not."""
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is not installed (pip install -e '.[test]')")
    exe = find_chromium()
    if exe is None:
        pytest.skip("no chromium found on PATH (Debian: apt-get install chromium)")
    try:
        pw = sync_api.sync_playwright().start()
    except Exception as exc:  # noqa: BLE001 - any failure to start is a reason to skip, printed
        pytest.skip(f"playwright does not start: {str(exc).strip().splitlines()[0]}")
    try:
        b = pw.chromium.launch(executable_path=exe, headless=True,
                               args=["--no-sandbox"] if os.geteuid() == 0 else [])
    except Exception as exc:  # noqa: BLE001
        pw.stop()
        pytest.skip(f"chromium at {exe} does not start under playwright: {str(exc).strip().splitlines()[0]}")
    yield b
    b.close()
    pw.stop()


class Server:
    """A ``gpt2guard serve`` subprocess on a free port."""

    def __init__(self, *options: str):
        import gpt2guard

        root = str(Path(gpt2guard.__file__).resolve().parents[1])  # the gpt2guard under test
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        cmd = [sys.executable, "-c", "from gpt2guard.cli import main; main()", "serve", "--family", "micro",
               "--method", "logrank", "--threshold", str(THRESHOLD), "--port", "0", *options]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines: queue.Queue = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self._wait_url(timeout=180)
        self._wait_ready(timeout=60)

    def _read(self):
        for line in self.proc.stderr:
            self.stderr.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def _wait_url(self, timeout: float) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            if line.startswith("serving on "):
                return line.split()[2]
        self.proc.kill()
        pytest.fail("the server did not start:\n" + "".join(self.stderr))

    def _wait_ready(self, timeout: float):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                with urllib.request.urlopen(self.url + "readyz", timeout=5) as r:
                    if r.status == 200:
                        return
            except urllib.error.HTTPError as exc:
                if exc.code == 401:  # a token server: /readyz needs it, the socket answers
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.proc.kill()
        pytest.fail("the server never became ready:\n" + "".join(self.stderr))

    def score(self, texts: list[str], token: str | None = None) -> dict:
        """What the API answers for ``texts`` with details, asked directly."""
        req = urllib.request.Request(self.url + "v1/score", json.dumps({"texts": texts, "details": True}).encode(),
                                     {"Content-Type": "application/json",
                                      **({"Authorization": f"Bearer {token}"} if token else {})})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.load(r)

    def stop(self) -> int:
        """SIGTERM, and the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@pytest.fixture(scope="module")
def server(browser, micro_family):
    s = Server("--detail-tokens", str(DETAIL_TOKENS), "--max-tokens", str(MAX_TOKENS))
    yield s
    code = s.stop()
    assert code == 0, "".join(s.stderr)
    assert "stopped on SIGTERM: every request in flight answered" in "".join(s.stderr)


class Watched:
    """A page with its dialogs and script errors recorded."""

    def __init__(self, page):
        self.page, self.dialogs, self.errors = page, [], []
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: self.errors.append(str(e)))


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    w = Watched(context.new_page())
    yield w
    context.close()
    assert not w.errors, w.errors
    assert not w.dialogs, w.dialogs


def judge(page, text: str):
    page.fill("#text", text)
    page.click("#submit")
    page.wait_for_selector("#results .doc, #error:not([hidden])")


def token_view(page) -> list[tuple[str, str]]:
    """(text, class) of every token shown."""
    return [tuple(x) for x in page.eval_on_selector_all("#results .tok",
                                                        "els => els.map(e => [e.textContent, e.className])")]


def test_page_shows_server_verdict_tokens_and_tooltips(server, page):
    p = page.page
    p.goto(server.url)
    p.wait_for_function("document.getElementById('info').textContent.startsWith('Server runs')")
    info = p.text_content("#info")
    assert "logrank (zero-shot) on micro:small" in info and f"threshold {THRESHOLD:g}" in info

    judge(p, TEXT)
    want = server.score([TEXT])["results"][0]
    details = want["details"]
    verdict = p.text_content("#results .verdict")
    words = {"machine": "Likely machine-written", "human": "Likely human-written"}[want["decision"]]
    assert verdict.startswith(f"{words}: score ") and f"the threshold {THRESHOLD:g} (set with --threshold)" in verdict

    # every shown token, in order, with its text and rank colour; the rest counted
    assert details["shown_tokens"] == DETAIL_TOKENS < details["total_tokens"] == want["n_tokens"]
    assert token_view(p) == [(t["text"], f"tok {t['bucket']}") for t in details["tokens"]]
    assert f"Showing the first {DETAIL_TOKENS} of {want['n_tokens']} tokens" in p.text_content("#results .doc")
    hot = p.eval_on_selector_all("#results .hot", "els => els.map(e => e.querySelectorAll('.tok').length)")
    assert hot == [min(s["stop"], DETAIL_TOKENS) - s["start"] for s in details["spans"]] and hot
    summary = p.text_content("#results details.sentences summary")
    assert summary.startswith(f"Sentence scores: {len(details['sentences'])} sentences")
    p.click("#results details.sentences summary")
    first = details["sentences"][0]
    p.hover("#results details.sentences li")
    assert p.locator("#results .tok.sent").count() == min(first["stop"], DETAIL_TOKENS) - first["start"]

    # hover: probability, rank and the scorer's likeliest tokens at that position
    j = 7
    tok = details["tokens"][j]
    p.hover(f"#results .tok[data-i='{j}']")
    tip = p.locator("#tip")
    assert tip.is_visible()
    text = tip.text_content()
    assert f"rank {tok['rank']}" in text
    for alt, _ in tok["top"]:
        assert json.dumps(alt, ensure_ascii=False) in text  # the page quotes tokens as JSON.stringify does
    # keyboard: focus a token and move with the arrow keys
    p.mouse.move(0, 0)
    assert not tip.is_visible()
    p.focus("#results .tok[data-i='0']")
    p.keyboard.press("ArrowRight")
    assert p.evaluate("document.activeElement.dataset.i") == "1"
    assert tip.is_visible() and f"rank {details['tokens'][1]['rank']}" in tip.text_content()


def test_markup_in_a_document_is_shown_as_text(server, page):
    p = page.page
    p.goto(server.url)
    judge(p, MARKUP)
    assert "".join(t for t, _ in token_view(p)) == MARKUP
    # text nodes only: no element of the document's markup exists, no script ran (no dialog)
    assert set(p.eval_on_selector_all("#results .tokens *", "els => els.map(e => e.tagName)")) == {"SPAN"}
    assert p.evaluate("[document.scripts.length, document.images.length, document.querySelectorAll('b').length]") \
        == [1, 0, 0]


def test_files_and_abstentions_and_bad_lines(server, page):
    p = page.page
    p.goto(server.url)
    lines = [json.dumps({"id": "<i>first</i>", "text": TEXT}), "{not json", json.dumps({"id": 3, "body": "x"}),
             json.dumps({"text": "Too short."}), json.dumps({"id": "blank", "text": "   "})]
    p.set_input_files("#files", [
        {"name": "docs.jsonl", "mimeType": "application/jsonl", "buffer": "\n".join(lines).encode()},
        {"name": "note.txt", "mimeType": "text/plain", "buffer": MARKUP.encode()},
        {"name": "photo.png", "mimeType": "image/png", "buffer": b"\x89PNG"},
    ])
    problems = p.locator("#problems")
    problems.wait_for()
    said = problems.text_content()
    assert "docs.jsonl line 2: not JSON" in said and 'docs.jsonl line 3: no "text" string field' in said
    assert "photo.png: not a .txt or .jsonl file" in said
    p.click("#submit")
    p.wait_for_selector("#results .doc")
    names = p.eval_on_selector_all("#results .doc h2", "els => els.map(e => e.textContent)")
    assert names == ["<i>first</i>", "docs.jsonl:4", "blank", "note.txt"]
    assert p.evaluate("[document.scripts.length, document.images.length, document.querySelectorAll('i').length]") \
        == [1, 0, 0]
    short = server.score(["Too short."])["results"][0]["n_tokens"]
    verdicts = p.eval_on_selector_all("#results .verdict", "els => els.map(e => e.textContent)")
    assert verdicts[1] == f"Too short to judge: {short} tokens, at least 16 needed."
    assert verdicts[2] == "Cannot judge: empty."


def test_api_errors_are_shown_as_their_line(server, page):
    p = page.page
    p.goto(server.url)
    judge(p, " word" * (MAX_TOKENS + 50))
    error = p.text_content("#error")
    assert error.startswith("Error 413: document 0 has ") and f"limit of {MAX_TOKENS} (--max-tokens)" in error
    assert p.locator("#results .doc").count() == 0


def test_token_server_through_the_browsers_password(browser, micro_family):
    s = Server("--token", "s3cret")
    try:
        anonymous = browser.new_context()
        refused = anonymous.request.get(s.url)  # the challenge that makes a browser ask for a password
        assert refused.status == 401 and refused.headers["www-authenticate"].startswith("Basic ")
        anonymous.close()
        context = browser.new_context(http_credentials={"username": "reviewer", "password": "s3cret"})
        w = Watched(context.new_page())
        w.page.goto(s.url)
        judge(w.page, TEXT)
        want = s.score([TEXT], token="s3cret")["results"][0]
        assert len(token_view(w.page)) == want["n_tokens"]
        assert not w.page.is_visible("#error") and not w.errors
        context.close()
    finally:
        code = s.stop()
    assert code == 0, "".join(s.stderr)
