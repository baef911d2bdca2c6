"""The generator tests run tiny models: one torch thread is fastest for them, and keeps a
shared machine free for others (``load_model`` would otherwise use every core)."""

from one_thread import one_thread  # noqa: F401 - autouse, for every module here
