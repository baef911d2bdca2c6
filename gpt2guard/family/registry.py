"""The builtin families and the lookup that turns a name, id or path into a family."""

from __future__ import annotations

from pathlib import Path

from gpt2guard.family.spec import BuildRecipe, FamilySpec, SizeSpec

# The real GPT-2 family: 12/24/36/48 layers, width 768/1024/1280/1600, head size 64.
GPT2 = FamilySpec(
    name="gpt2",
    kind="hub",
    description="OpenAI GPT-2 (Hugging Face checkpoints openai-community/gpt2*)",
    sizes=(
        SizeSpec("small", 12, 768, 12, 124_439_808, hub_id="openai-community/gpt2"),
        SizeSpec("medium", 24, 1024, 16, 354_823_168, hub_id="openai-community/gpt2-medium"),
        SizeSpec("large", 36, 1280, 20, 774_030_080, hub_id="openai-community/gpt2-large"),
        SizeSpec("xl", 48, 1600, 25, 1_557_611_200, hub_id="openai-community/gpt2-xl"),
    ),
)

# nano: GPT-2's progression scaled down. Depth 1/2/3/4 (GPT-2's divided by 12), width
# 96/128/160/200 (GPT-2's divided by 8), head size 8 so the head counts are GPT-2's own.
# Bigger sizes see more tokens, as compute-optimal training would give them.
NANO = FamilySpec(
    name="nano",
    kind="builtin",
    description="builtin scaled-down GPT-2 family trained on the builtin human corpus",
    recipe=BuildRecipe(vocab_size=4096, n_positions=256, block_size=256, batch_size=4,
                       packages=("numpy", "sklearn", "click", "tqdm")),
    sizes=(
        SizeSpec("small", 1, 96, 12, lr=3e-3, train_tokens=250_000),
        SizeSpec("medium", 2, 128, 16, lr=2.5e-3, train_tokens=300_000),
        SizeSpec("large", 3, 160, 20, lr=2e-3, train_tokens=350_000),
        SizeSpec("xl", 4, 200, 25, lr=2e-3, train_tokens=500_000),
    ),
)

# micro: two tiny sizes built in seconds, for tests.
MICRO = FamilySpec(
    name="micro",
    kind="builtin",
    description="two-size test preset of nano, built in seconds",
    recipe=BuildRecipe(vocab_size=512, n_positions=128, block_size=64, batch_size=16,
                       packages=(), max_docs=400, val_tokens=8192),
    sizes=(
        SizeSpec("small", 1, 32, 4, lr=4e-3, train_tokens=60_000),
        SizeSpec("medium", 2, 64, 8, lr=3e-3, train_tokens=80_000),
    ),
)

BUILTIN = {f.name: f for f in (GPT2, NANO, MICRO)}
DEFAULT_FAMILY = "nano"


def list_families() -> list[FamilySpec]:
    """The builtin families in a fixed order, then the registered user families by name (a
    registered family whose file no longer checks out raises GuardError: see
    :func:`~gpt2guard.family.userfile.user_family_files` to list them one by one)."""
    from gpt2guard.family.userfile import parse_family_file, user_family_files

    users = user_family_files()
    return list(BUILTIN.values()) + [parse_family_file(users[n]) for n in sorted(users) if n not in BUILTIN]


def get_family(name: str) -> FamilySpec:
    """A family by name: builtin, registered (``gpt2guard family add``), a family file's
    path (``.toml``, ``.yaml``, ``.yml``, ``.json``), or a one-size family for a local
    directory or hub id.

    A local directory wins over a hub id of the same spelling. Anything else raises
    :class:`~gpt2guard.errors.GuardError` listing the known names.
    """
    from gpt2guard.errors import GuardError
    from gpt2guard.family.userfile import find_user_family, is_family_file, parse_family_file, user_family_files

    if name in BUILTIN:
        return BUILTIN[name]
    if not isinstance(name, str) or not name.strip():
        raise GuardError(f"no family named: use one of {', '.join(BUILTIN)}, a family file or a model directory")
    user = find_user_family(name) if "/" not in name and "\\" not in name else None
    if user is not None:
        return user
    if is_family_file(name):
        return parse_family_file(name)
    path = Path(name).expanduser()
    if path.is_dir():
        return FamilySpec(name=str(path), kind="single", sizes=(SizeSpec("model"),), source=str(path.resolve()),
                          description=f"local model directory {path}")
    if "/" in name and not name.startswith((".", "/")) and name.count("/") == 1:
        return FamilySpec(name=name, kind="single", sizes=(SizeSpec("model", hub_id=name),), source=name,
                          description=f"Hugging Face model {name}")
    known = list(BUILTIN) + sorted(user_family_files())
    raise GuardError(f"unknown family {name!r}: use one of {', '.join(known)}, a family file (.toml/.yaml), "
                     "a local model directory, or a Hugging Face id like owner/name")
