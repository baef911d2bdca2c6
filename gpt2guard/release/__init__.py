"""Staged, size-by-size release: plans, gates with evidence, simulations, model cards, manifests."""
