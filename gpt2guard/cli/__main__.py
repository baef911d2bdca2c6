"""``python -m gpt2guard.cli``: the command line, as ``gpt2guard``."""

from gpt2guard.cli import main

main(prog_name="gpt2guard")
