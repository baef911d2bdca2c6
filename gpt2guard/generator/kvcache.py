"""A key/value cache preallocated to the length a batch will reach.

transformers' ``DynamicCache`` grows by ``torch.cat`` at every step, copying each layer's
whole cache once per generated token: O(T^2) memory traffic over a sequence, which at
1024 tokens costs more than the attention itself. This cache allocates each layer's
``(B, H, capacity, D)`` buffers once, writes each step's keys and values in place and
hands attention a view of the filled prefix, so a step costs what its new tokens cost.
It plugs into a model's forward through transformers' ``Cache`` container, exactly where
a ``DynamicCache`` would go (``past_key_values=``).
"""

from __future__ import annotations


def preallocated_cache(n_layers: int, capacity: int):
    """A transformers ``Cache`` whose layers are :class:`PreallocatedLayer`.

    Parameters
    ----------
    n_layers : int
        Attention layers of the model.
    capacity : int
        Most tokens any row will hold (prompt width plus new tokens).

    Returns
    -------
    transformers.Cache
    """
    from transformers.cache_utils import Cache

    return Cache(layers=[_layer_class()(capacity) for _ in range(n_layers)])


def select_rows(cache, rows) -> None:
    """Keep only ``rows`` (int64 indices) of every layer of ``cache``, in that order."""
    for layer in cache.layers:
        layer.select_rows(rows)


_CLASS = None


def _layer_class():
    """The layer class, defined on first use so that importing this module stays free of torch."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    import torch
    from transformers.cache_utils import CacheLayerMixin

    class PreallocatedLayer(CacheLayerMixin):
        """One layer's keys and values in buffers of fixed capacity, filled left to right."""

        is_sliding = False
        is_compileable = False

        def __init__(self, capacity: int):
            super().__init__()
            self.capacity = capacity
            self.length = 0

        def lazy_initialization(self, key_states, value_states) -> None:
            B, H, _, D = key_states.shape
            self.dtype, self.device = key_states.dtype, key_states.device
            self.keys = torch.empty((B, H, self.capacity, D), dtype=self.dtype, device=self.device)
            self.values = torch.empty((B, H, self.capacity, value_states.shape[-1]), dtype=self.dtype,
                                      device=self.device)
            self.is_initialized = True

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            end = self.length + key_states.shape[-2]
            if end > self.capacity:
                raise RuntimeError(f"KV cache capacity {self.capacity} exceeded ({end} tokens)")
            self.keys[:, :, self.length:end] = key_states          # (B, H, n, D) written in place
            self.values[:, :, self.length:end] = value_states
            self.length = end
            return self.keys[:, :, :end], self.values[:, :, :end]  # views of the filled prefix, no copy

        def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
            return self.length + query_length, 0

        def get_seq_length(self) -> int:
            return self.length

        def get_max_length(self) -> int:
            return self.capacity

        def reset(self) -> None:
            self.length = 0

        def select_rows(self, rows) -> None:
            if not self.is_initialized:
                return
            n = self.length
            for name in ("keys", "values"):
                old = getattr(self, name)
                new = torch.empty((len(rows),) + tuple(old.shape[1:]), dtype=old.dtype, device=old.device)
                new[:, :, :n] = old[:, :, :n].index_select(0, rows)  # copy only the filled prefix
                setattr(self, name, new)

        def reorder_cache(self, beam_idx) -> None:
            self.select_rows(beam_idx.to(self.device))

    _CLASS = PreallocatedLayer
    return _CLASS
