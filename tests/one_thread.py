"""One torch thread for a test module of tiny models: the fastest setting for them, it
keeps a shared machine free for others (``load_model`` would otherwise use every core),
and Ray actors started by the module inherit it (a record carries its thread count).

A ``conftest.py`` turns it on for its directory with ``from one_thread import one_thread``.
"""

import os

import pytest


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    import torch

    saved_env, saved_threads = os.environ.get("OMP_NUM_THREADS"), torch.get_num_threads()
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    yield
    if saved_env is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = saved_env
    torch.set_num_threads(saved_threads)
