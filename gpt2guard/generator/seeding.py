"""Per-record random numbers: a counter-based stream, a pure function of (seed, stream, step).

Every record owns a seed. The t-th token of a record is drawn with the uniform number
``uniforms(seed, n)[t]``, whatever batch the record was generated in, how long the batch
ran, or which library version drew it: the numbers come from a fixed integer hash
(SplitMix64's finaliser), not from a random generator's state, so they are the same for
the same seed on every machine, and the first n numbers of a longer stream are the n
numbers of a shorter one.

Construction: ``key = mix(mix(seed) ^ mix(stream + C))`` with ``C`` the 64-bit golden
ratio constant, then ``u_t = (mix(key + (t + 1) * C) >> 11) / 2**53``, a float64 in
[0, 1) with 53 random bits. ``mix`` is the SplitMix64 finaliser (Steele, Lea & Flood,
2014), a bijection of 64-bit integers with full avalanche. Stream 0 picks tokens;
stream 1 draws a record's nucleus p (:meth:`~gpt2guard.generator.sampling.SamplingConfig.draw_top_p`).
"""

from __future__ import annotations

from gpt2guard.errors import GuardError

GOLDEN = 0x9E3779B97F4A7C15
MAX_SEED = 2**63 - 1
TOKEN_STREAM = 0
TOP_P_STREAM = 1


def _mix(z):
    """SplitMix64's finaliser on a numpy uint64 array (wrapping arithmetic)."""
    import numpy as np

    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def check_seed(seed) -> int:
    """``seed`` as an int in [0, 2**63), or GuardError."""
    if isinstance(seed, bool) or not isinstance(seed, int) and not (hasattr(seed, "__index__")):
        raise GuardError(f"a seed must be an integer, not {seed!r}")
    seed = int(seed)
    if not 0 <= seed <= MAX_SEED:
        raise GuardError(f"a seed must be in [0, 2**63), not {seed}")
    return seed


def uniforms(seed: int, n: int, stream: int = TOKEN_STREAM):
    """The first ``n`` numbers of a record's stream.

    Parameters
    ----------
    seed : int
        The record's seed, in [0, 2**63).
    n : int
        How many numbers.
    stream : int
        Independent streams of the same seed (0: tokens, 1: nucleus p).

    Returns
    -------
    numpy.ndarray
        Shape (n,), float64 in [0, 1).
    """
    import numpy as np

    seed = check_seed(seed)
    with np.errstate(over="ignore"):
        golden = np.uint64(GOLDEN)
        key = _mix(_mix(np.array([seed], dtype=np.uint64)) ^ _mix(np.array([stream], dtype=np.uint64) + golden))
        steps = np.arange(1, n + 1, dtype=np.uint64)                    # counters 1..n
        bits = _mix(key + steps * golden)                               # (n,) uint64
    return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
