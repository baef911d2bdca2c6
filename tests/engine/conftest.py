"""The engine tests run tiny models on one torch thread (fastest for them, and the actors
then run with one thread too: a record made on an actor carries the driver's count)."""

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
