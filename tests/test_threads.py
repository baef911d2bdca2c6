"""The thread policy: OpenMP threads wait passively unless the user says otherwise, and torch
uses the CPUs other processes leave free."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from gpt2guard.family import load


def test_env_defaults_fill_in_and_never_override_the_user():
    env = {"OMP_WAIT_POLICY": "ACTIVE"}
    added = load.thread_env_defaults(env)
    assert env["OMP_WAIT_POLICY"] == "ACTIVE"                   # the user's choice stands
    assert added == {"KMP_BLOCKTIME": "0"} and env["KMP_BLOCKTIME"] == "0"
    empty: dict = {}
    load.thread_env_defaults(empty)
    assert empty == {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}


def test_the_cli_sets_the_defaults_before_commands_run(monkeypatch):
    from gpt2guard.cli import main

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.setenv("KMP_BLOCKTIME", "200")
    result = CliRunner().invoke(main, ["family", "list"])
    assert result.exit_code == 0, result.output
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE" and os.environ["KMP_BLOCKTIME"] == "200"


@pytest.mark.parametrize("loadavg, busy", [
    ("0.10 0.20 0.30 1/150 999", 0),        # only the reader runs
    ("3.00 2.00 1.00 3/150 999", 2),        # two others running, load agrees
    ("0.20 0.10 0.10 4/150 999", 1),        # a momentary burst: capped by the load average
    ("9.50 9.00 8.00 12/150 999", 10),
])
def test_busy_cpus_reads_running_tasks_capped_by_the_load(tmp_path, loadavg, busy):
    f = tmp_path / "loadavg"
    f.write_text(loadavg + "\n")
    assert load.busy_cpus(str(f)) == busy
    assert load.busy_cpus(str(tmp_path / "missing")) == 0


def test_threads_are_the_cpus_others_leave_free(monkeypatch):
    torch = pytest.importorskip("torch")
    n = len(os.sched_getaffinity(0))
    for busy, want in ((0, n), (n - 1, 1), (n + 5, 1)):
        monkeypatch.setattr(load, "busy_cpus", lambda busy=busy: busy)
        assert load.pick_threads() == want
    before = torch.get_num_threads()
    try:
        monkeypatch.setattr(load, "busy_cpus", lambda: n + 5)
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert load.set_threads() == 1 == torch.get_num_threads()
        torch.set_num_threads(n)
        monkeypatch.setenv("OMP_NUM_THREADS", str(n))             # the user's count is kept
        assert load.set_threads() == n
    finally:
        torch.set_num_threads(before)


def test_a_family_build_uses_a_fixed_thread_count_whatever_the_load(monkeypatch):
    """A build's weights depend on its thread count, so the load must not choose it."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(load, "busy_cpus", lambda: 1000)
    try:
        assert load.set_threads() == 1                               # a busy machine: one thread
        with load.build_threads() as n:
            assert n == torch.get_num_threads() == load.build_thread_count() == len(os.sched_getaffinity(0))
        assert torch.get_num_threads() == 1                           # restored afterwards
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert load.build_thread_count() == 1
    finally:
        torch.set_num_threads(before)
