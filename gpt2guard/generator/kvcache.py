"""Key/value cache: one preallocated buffer per layer, in which every row fills its own columns.

transformers' ``DynamicCache`` grows by ``torch.cat`` at every step, copying each layer's
whole cache once per generated token: O(T^2) memory traffic over a sequence, which at
1024 tokens costs more than the attention itself. Here each layer's keys and values live
in ``(B, H, capacity, D)`` buffers allocated once per batch; a step writes its new
columns in place and attention reads views of the filled columns.

No row is padded on the left: row ``b`` keeps its prompt in columns ``[0, L_b)`` and
writes its t-th new token to column ``L_b + t``, so its cache holds, column for column,
what it would hold alone, whatever the lengths of its neighbours (see
:mod:`gpt2guard.generator.forward`).
"""

from __future__ import annotations


class RowCache:
    """Keys and values of every layer of a batch.

    Parameters
    ----------
    n_layers, batch, heads, head_dim : int
        Shapes of the model and batch.
    capacity : int
        Columns per row: the longest prompt plus the most new tokens.
    dtype, device
        Of the model's activations.
    """

    def __init__(self, n_layers: int, batch: int, heads: int, head_dim: int, capacity: int, dtype, device):
        import torch

        shape = (batch, heads, capacity, head_dim)
        # never read before written: each row attends only to its own filled columns
        self.keys = [torch.empty(shape, dtype=dtype, device=device) for _ in range(n_layers)]
        self.values = [torch.empty(shape, dtype=dtype, device=device) for _ in range(n_layers)]
        self.capacity = capacity

    def write(self, layer: int, k, v, columns=None):
        """Store new keys and values, return the layer's whole buffers.

        Parameters
        ----------
        layer : int
        k, v : torch.Tensor
            ``(B, H, T, D)`` for T new tokens per row.
        columns : torch.Tensor or int, optional
            ``(B,)`` column of each row's new token (T must be 1), or one int when every
            row writes the same column; None writes columns ``[0, T)`` of every row (a
            prompt).

        Returns
        -------
        tuple of torch.Tensor
            The layer's key and value buffers, ``(B, H, capacity, D)``.
        """
        import torch

        K, V = self.keys[layer], self.values[layer]
        if columns is None:
            T = k.shape[2]
            K[:, :, :T] = k
            V[:, :, :T] = v
        elif isinstance(columns, int):
            K[:, :, columns] = k[:, :, 0]                     # (B, H, D) into one column
            V[:, :, columns] = v[:, :, 0]
        else:
            rows = torch.arange(k.shape[0], device=k.device)
            K[rows, :, columns] = k[:, :, 0]                  # (B, H, D) into each row's own column
            V[rows, :, columns] = v[:, :, 0]
        return K, V

    def select_rows(self, rows, used: int) -> None:
        """Keep only batch rows ``rows`` (int64 indices, in that order); copy the first
        ``used`` columns, the only ones any kept row has written."""
        import torch

        for buffers in (self.keys, self.values):
            for i, old in enumerate(buffers):
                new = torch.empty((len(rows),) + tuple(old.shape[1:]), dtype=old.dtype, device=old.device)
                new[:, :, :used] = old[:, :, :used].index_select(0, rows)
                buffers[i] = new
