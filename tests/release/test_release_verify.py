"""``release verify`` against an attacker, decision-log bad input, one simulation per run
directory, and OpenSSF model signing (``release keygen`` / ``sign`` / ``verify --key``).

One real simulation of the micro family (the ``rushed`` scenario: the first stage released,
the second held) is built per module; every test tampers with its own copy.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gpt2guard.cli import main
from gpt2guard.errors import GuardError
from gpt2guard.release.lock import RunLock
from gpt2guard.release.log import DecisionLog, read_log
from gpt2guard.release.manifest import write_manifest
from gpt2guard.release.simulate import simulate

SC = "scenarios/rushed"
FIRST = f"{SC}/stages/01-first"
SECOND = f"{SC}/stages/02-second"
LOG = f"{SC}/decisions.jsonl"


@pytest.fixture(scope="module")
def built_run(plan_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "run"
    simulate(plan_file, out, only=["rushed"], progress=False)
    return out


@pytest.fixture
def run(built_run, tmp_path):
    """A private copy of the module's finished run."""
    copy = tmp_path / "run"
    shutil.copytree(built_run, copy, symlinks=True)
    return copy


def verify(*args):
    return CliRunner().invoke(main, ["release", "verify", *map(str, args)])


def resume(plan_file, run):
    """``release simulate`` again on a run (the module's run has one scenario)."""
    return CliRunner().invoke(main, ["release", "simulate", str(plan_file), "--out", str(run), "--scenario", "rushed"])


def lines(result) -> list[str]:
    return result.output.splitlines()


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def log_lines(run: Path) -> list[str]:
    return (run / LOG).read_text().splitlines()


def write_log(run: Path, rows: list[str]) -> None:
    (run / LOG).write_text("".join(r + "\n" for r in rows))


def regenerate_root_manifest(run: Path) -> None:
    """What an attacker who knows the format does after an edit: list the files anew."""
    write_manifest(run, {"plan": "micro-test"})


# Each way of tampering: (what it does to the run, [(file the line names, words in that line)]).
def _delete_root_manifest(run):
    (run / "MANIFEST.json").unlink()
    (run / FIRST / "card" / "README.md").write_text("an edited card\n")


def _delete_manifest_edit_evaluation(run):
    (run / "MANIFEST.json").unlink()
    edit_json(run / FIRST / "evaluation.json", lambda d: d["stage"].update(decision="hold"))


def _delete_log(run):
    (run / LOG).unlink()


def _truncate_log(run):
    write_log(run, log_lines(run)[:-1])
    regenerate_root_manifest(run)


def _truncate_log_and_delete_manifest(run):
    write_log(run, log_lines(run)[:-2])
    (run / "MANIFEST.json").unlink()


def _edit_evaluation(run):
    edit_json(run / SECOND / "evaluation.json", lambda d: d["stage"].update(decision="release"))
    regenerate_root_manifest(run)


def _edit_card(run):
    with open(run / SECOND / "card" / "README.md", "a") as f:
        f.write("\nAll gates passed.\n")


def _edit_detector(run):
    edit_json(run / FIRST / "detector" / "detector.json", lambda d: d.update(threshold=-1e9))


def _edit_evidence(run):
    edit_json(run / SECOND / "evidence" / "detection.json", lambda d: d.update(summary={}))


def _edit_last_decision(run):
    rows = log_lines(run)
    rows[-1] = rows[-1].replace('"decision": "hold"', '"decision": "release"')
    write_log(run, rows)
    regenerate_root_manifest(run)


def _add_tmp_file(run):
    (run / FIRST / "release" / "model.safetensors.tmp").write_bytes(b"\x00" * 16)


def _add_dotfile(run):
    (run / ".hidden").write_text("x")


def _add_stage_dir(run):
    (run / SC / "stages" / "03-third").mkdir()
    (run / SC / "stages" / "03-third" / "evaluation.json").write_text("{}")
    regenerate_root_manifest(run)


def _rename_file(run):
    (run / FIRST / "report.md").rename(run / FIRST / "report.md.old")


def _edit_nested_manifest(run):
    edit_json(run / FIRST / "release" / "MANIFEST.json", lambda d: d.update(tier="closed"))


def _nested_manifest_follows_an_edit(run):
    release = run / FIRST / "release"
    (release / "README.md").write_text("another card\n")
    write_manifest(release, {"stage": "first"})
    regenerate_root_manifest(run)


def _remove_run_json(run):
    (run / "run.json").unlink()
    regenerate_root_manifest(run)


def _unfinished_run(run):
    write_log(run, log_lines(run)[:-1])  # killed after the stage's files, before its decision
    for name in ("summary.json", "summary.md", "summary.png", "MANIFEST.json"):
        (run / name).unlink()


def _symlink(run):
    (run / FIRST / "release" / "weights.bin").symlink_to("/etc/hostname")


def _extra_scenario(run):
    shutil.copytree(run / SC, run / "scenarios" / "other")
    regenerate_root_manifest(run)


TAMPERING = {
    "delete root manifest": (_delete_root_manifest, [("MANIFEST.json", "missing")]),
    "delete root manifest, edit an evaluation": (_delete_manifest_edit_evaluation,
                                                 [(f"{FIRST}/evaluation.json", "differs from the one decisions.jsonl")]),
    "delete the decision log": (_delete_log, [(LOG, "missing")]),
    "cut the log's last entry": (_truncate_log, [(LOG, "unfinished: stage 'second' has no decision"),
                                                 (SECOND, "without a decision")]),
    "cut the log, delete the manifest": (_truncate_log_and_delete_manifest,
                                         [(LOG, "stage 'first' has no decision"), ("MANIFEST.json", "missing")]),
    "edit an evaluation": (_edit_evaluation, [(f"{SECOND}/evaluation.json", "altered")]),
    "edit a card": (_edit_card, [(f"{SECOND}/card/README.md", "altered")]),
    "edit a detector": (_edit_detector, [(f"{FIRST}/detector/detector.json", "altered")]),
    "edit gate evidence": (_edit_evidence, [(f"{SECOND}/evidence/detection.json", "altered")]),
    "edit the last decision": (_edit_last_decision, [(LOG, "entry 3: content does not match its hash")]),
    "add a *.tmp file": (_add_tmp_file, [(f"{FIRST}/release/model.safetensors.tmp", "unlisted")]),
    "add a dotfile": (_add_dotfile, [(".hidden", "unlisted")]),
    "add a stage": (_add_stage_dir, [(f"{SC}/stages/03-third", "without a decision")]),
    "rename a file": (_rename_file, [(f"{FIRST}/report.md", "missing"), (f"{FIRST}/report.md.old", "unlisted")]),
    "edit a nested manifest": (_edit_nested_manifest, [(f"{FIRST}/release/MANIFEST.json", "altered"),
                                                       (f"{FIRST}/release/MANIFEST.json", "differs from the one")]),
    "regenerate a nested manifest": (_nested_manifest_follows_an_edit,
                                     [(f"{FIRST}/release/MANIFEST.json", "differs from the one")]),
    "remove run.json": (_remove_run_json, [("run.json", "missing")]),
    "unfinished run": (_unfinished_run, [(LOG, "unfinished"), ("summary.json", "unfinished"),
                                         (SECOND, "without a decision"), ("MANIFEST.json", "missing")]),
    "add a symlink": (_symlink, [(f"{FIRST}/release/weights.bin", "not a plain file")]),
    "add a scenario": (_extra_scenario, [("scenarios/other", "not a scenario of run.json")]),
}


@pytest.mark.parametrize("way", list(TAMPERING))
def test_verify_finds_every_tampering(run, way):
    assert verify(run).exit_code == 0  # the untouched copy verifies
    tamper, expected = TAMPERING[way]
    tamper(run)
    result = verify(run)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for name, words in expected:
        path = str(run / name)
        assert any((path + ":" in line or line.endswith(path) or path + " " in line) and words in line
                   for line in lines(result)), (name, words, result.output)


def test_verify_prints_chain_heads_and_counts(run):
    result = verify(run)
    assert result.exit_code == 0, result.output
    entries = read_log(run / LOG)
    assert f"chain head rushed: {entries[-1]['hash']} (3 entries)" in result.output
    assert lines(result)[0].startswith("ok: ") and "decision logs intact and complete" in result.output
    listed = json.loads((run / "MANIFEST.json").read_text())["files"]
    assert any(f["path"] == f"{FIRST}/release/MANIFEST.json" for f in listed)  # nested manifests are covered
    assert any(f["path"] == "simulate.lock" for f in listed)


def test_verify_a_published_stage_directory(run, tmp_path):
    published = tmp_path / "published"
    shutil.copytree(run / FIRST / "release", published)
    assert verify(published).exit_code == 0
    (published / "MANIFEST.json").unlink()
    result = verify(published)
    assert result.exit_code == 1 and f"{published / 'MANIFEST.json'}: missing" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = verify(empty)
    assert result.exit_code == 2 and "nothing to verify" in result.output


BAD_LINES = {
    "invalid UTF-8": (b'{"type": "decision", "note": "caf\xe9"}', "not valid UTF-8"),
    "a list": (b"[1, 2, 3]", "a list where a JSON object"),
    "a string": (b'"release"', "a str where a JSON object"),
    "broken JSON": (b'{"type": "decision",', "not JSON"),
}


@pytest.mark.parametrize("bad", list(BAD_LINES))
def test_bad_decision_log_line_is_one_line_naming_file_and_line(run, plan_file, bad):
    raw, words = BAD_LINES[bad]
    rows = (run / LOG).read_bytes().split(b"\n")
    rows[1] = raw
    (run / LOG).write_bytes(b"\n".join(rows))
    result = verify(run)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert any(line.startswith(f"{run / LOG}:2: ") and words in line for line in lines(result)), result.output
    resumed = resume(plan_file, run)
    assert resumed.exit_code == 2 and "Traceback" not in resumed.output
    assert f"{run / LOG}:2: " in resumed.output and words in resumed.output
    assert (run / LOG).read_bytes() == b"\n".join(rows)  # nothing rewritten


def test_torn_last_append_is_a_finding_and_resume_drops_it(tmp_path):
    path = tmp_path / "decisions.jsonl"
    log = DecisionLog(path)
    log.append({"type": "start"})
    with open(path, "ab") as f:
        f.write(b'{"type": "decis\xc3')  # killed mid-append, in the middle of a character
    from gpt2guard.release.log import verify_log

    assert verify_log(path) == ["line 2: a torn, unfinished entry (the simulation was killed mid-append)"]
    assert len(DecisionLog(path).entries) == 1 and verify_log(path) == []


def test_two_writers_cannot_fork_the_log(tmp_path):
    path = tmp_path / "decisions.jsonl"
    DecisionLog(path).append({"type": "start"})
    a, b = DecisionLog(path), DecisionLog(path)
    a.append({"type": "decision", "stage": "one", "decision": "release"})
    with pytest.raises(GuardError, match="changed on disk since it was read.*refusing to fork"):
        b.append({"type": "decision", "stage": "one", "decision": "hold"})
    entries = read_log(path)
    assert [e.get("decision") for e in entries] == [None, "release"]
    assert DecisionLog(path).head == entries[-1]["hash"]


HOLD = ("import sys; from gpt2guard.release.lock import RunLock; RunLock(sys.argv[1]).acquire(); "
        "print('held', flush=True); sys.stdin.read()")


def _holder(out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_simulation_is_refused_and_a_dead_holder_does_not_block(run, plan_file):
    proc = _holder(run)
    try:
        result = resume(plan_file, run)
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert f"in use by another simulation (pid {proc.pid})" in result.output
        assert len(result.output.strip().splitlines()) == 1
        found = verify(run)
        assert found.exit_code == 1 and f"a simulation is running in this directory (pid {proc.pid})" in found.output
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # the kernel released the dead holder's lock: a resume proceeds, and the run verifies again
    result = resume(plan_file, run)
    assert result.exit_code == 0, result.output
    assert verify(run).exit_code == 0


def test_the_lock_is_held_at_every_moment_of_a_run(run, plan_file):
    write_log(run, log_lines(run)[:-1])  # the second stage is measured again on resume
    moments = []
    cli = [sys.executable, "-c", "from gpt2guard.cli import main; main()", "release", "simulate",
           str(plan_file), "--out", str(run), "--scenario", "rushed"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    def watch(msg):
        with pytest.raises(GuardError, match=rf"\(pid {os.getpid()}\)"):
            RunLock(run).acquire()
        moments.append(msg)
        if "measuring" in msg:  # a real second process, mid-run
            other = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=300)
            assert other.returncode == 2 and f"(pid {os.getpid()})" in other.stderr, other.stderr

    simulate(plan_file, run, only=["rushed"], progress=False, log=watch)
    assert any("measuring" in m for m in moments) and any("already decided" in m for m in moments)
    with RunLock(run):  # released at the end
        pass
    assert verify(run).exit_code == 0
    assert [e["stage"] for e in read_log(run / LOG) if e["type"] == "decision"] == ["first", "second"]


# --- signing -------------------------------------------------------------------------------

def _needs_model_signing():
    try:
        import model_signing.signing  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"model-signing cannot be imported ({exc}); pip install 'gpt2guard[sign]'")


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("signing or verification tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def keys(tmp_path):
    _needs_model_signing()
    result = CliRunner().invoke(main, ["release", "keygen", "--out", str(tmp_path / "keys")])
    assert result.exit_code == 0, result.output
    return tmp_path / "keys" / "private.pem", tmp_path / "keys" / "public.pem"


def sign(directory, private, *extra):
    return CliRunner().invoke(main, ["release", "sign", str(directory), "--key", str(private), *map(str, extra)])


def test_keygen_writes_a_private_key_only_its_owner_reads(keys, tmp_path):
    private, public = keys
    assert private.stat().st_mode & 0o777 == 0o600
    assert private.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    assert public.read_text().startswith("-----BEGIN PUBLIC KEY-----")
    before = private.read_bytes()
    again = CliRunner().invoke(main, ["release", "keygen", "--out", str(tmp_path / "keys")])
    assert again.exit_code == 2 and "exists" in again.output and private.read_bytes() == before


@pytest.mark.parametrize("what", ["stage", "run"])
def test_sign_and_verify_round_trip_offline(run, keys, offline, tmp_path, what):
    private, public = keys
    target = run if what == "run" else tmp_path / "published"
    if what == "stage":
        shutil.copytree(run / FIRST / "release", target)
    signed = sign(target, private)
    assert signed.exit_code == 0, signed.output
    bundle = json.loads((target / "model.sig").read_text())
    assert bundle["mediaType"].startswith("application/vnd.dev.sigstore.bundle") and "dsseEnvelope" in bundle
    ok = verify(target, "--key", public)
    assert ok.exit_code == 0, ok.output
    assert "signature verifies" in ok.output
    third_party = subprocess.run([sys.executable, "-m", "model_signing", "verify", "key", str(target), "--signature",
                                  str(target / "model.sig"), "--public_key", str(public), "--no-ignore-git-paths"],
                                 capture_output=True, text=True, timeout=300)
    assert third_party.returncode == 0, third_party.stdout + third_party.stderr  # the standard's own CLI agrees
    # a tampered file, then the manifests regenerated so that only the signature can tell
    card = target / "README.md" if what == "stage" else target / FIRST / "card" / "README.md"
    card.write_text("a card that says something else\n")
    write_manifest(target, {"stage": "first"} if what == "stage" else {"plan": "micro-test"})
    assert verify(target).exit_code == 0  # without the key nothing else covers this edit
    bad = verify(target, "--key", public)
    assert bad.exit_code == 1
    assert any(line.startswith("altered") and str(card) in line for line in lines(bad)), bad.output


def test_signature_findings(run, keys, offline, tmp_path):
    private, public = keys
    assert sign(run, private).exit_code == 0
    other = CliRunner().invoke(main, ["release", "keygen", "--out", str(tmp_path / "other")])
    assert other.exit_code == 0
    wrong = verify(run, "--key", tmp_path / "other" / "public.pem")
    assert wrong.exit_code == 1 and f"{run / 'model.sig'}: does not verify with" in wrong.output
    (run / "added.txt").write_text("x")
    added = verify(run, "--key", public)
    assert added.exit_code == 1
    assert any(line.startswith("unlisted") and "added.txt" in line and "not signed" in line for line in lines(added))
    (run / "added.txt").unlink()
    (run / "model.sig").unlink()
    missing = verify(run, "--key", public)
    assert missing.exit_code == 1 and f"{run / 'model.sig'}: missing" in missing.output
    (run / "model.sig").write_text("not a bundle")
    damaged = verify(run, "--key", public)
    assert damaged.exit_code == 1 and "not a signature bundle" in damaged.output
    (run / FIRST / "report.md").write_text("edited\n")  # a directory that does not verify is not signed
    refused = sign(run, private)
    assert refused.exit_code == 2 and "refusing to sign" in refused.output


def test_without_the_sign_extra_one_line_says_how_to_install(run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "model_signing", None)
    key = tmp_path / "k.pem"
    key.write_text("x")
    for result in (sign(run, key), verify(run, "--key", key)):
        assert result.exit_code == 2 and "pip install 'gpt2guard[sign]'" in result.output
        assert len(result.output.strip().splitlines()) == 1
