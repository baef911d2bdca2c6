"""The engine tests run tiny models on one torch thread (fastest for them, and the actors
then run with one thread too: a record made on an actor carries the driver's count)."""

from one_thread import one_thread  # noqa: F401 - autouse, for every module here
