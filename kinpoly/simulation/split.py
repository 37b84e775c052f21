"""Held-out split of a clip folder: a seeded shuffle stratified by dataset (the folder a clip
was imported from), the same fraction of every dataset held out; optionally also the source
clips of an egocentric dataset's test takes, which a controller used for estimation must not
train on (``kinpoly uhc split``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import resolve_path
from ..errors import InputError
from ..motion.clip import ClipFolder


def dataset_of(entry: dict) -> str:
    src = entry.get("source") or ""
    return Path(src).parent.name or "unknown"


def make_split(motions: str, fraction: float = 0.15, seed: int = 0) -> list[str]:
    """Names of the held-out clips: round(fraction * n) of each dataset (at least 1)."""
    groups: dict[str, list[str]] = {}
    entries = ClipFolder(motions).entries()
    if not entries:
        raise InputError(f"{motions}: no clips to split (a clip folder of `kinpoly motion import`)")
    for e in entries:
        groups.setdefault(dataset_of(e), []).append(e["name"])
    rng = np.random.default_rng(seed)
    held = []
    for ds in sorted(groups):
        names = sorted(groups[ds])
        k = max(1, int(round(fraction * len(names))))
        held += sorted(rng.permutation(names)[:k].tolist())
    return held


def ego_test_sources(dataset: str, split: str = "test") -> list[str]:
    """Names of the clips the takes of an egocentric dataset's ``split`` (its ``manifest.json``,
    ``kinpoly ego build``) were rendered from."""
    from ..egocentric.take import EgoDataError, read_manifest

    m = read_manifest(dataset)
    if split not in m.get("split", {}):
        raise EgoDataError(f"{dataset}: no split {split!r} in its manifest")
    names = set(m["split"][split])
    return sorted({t.get("source_clip") or t["name"] for t in m["takes"] if t["name"] in names})


def write_split(path: str, names: list[str], comment: str) -> None:
    """A split file: ``comment`` lines (``# ``-prefixed) then one clip name per line."""
    from ..motion.clip import atomic_write_text

    lines = [f"# {ln}" for ln in comment.splitlines()] + sorted(set(names))
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_split(path: str) -> list[str]:
    """Clip names listed in a split file (``configs/splits/...`` also from any directory)."""
    p = resolve_path(path)
    if not p.is_file():
        raise InputError(f"{path}: no such split file (one clip name a line; `kinpoly uhc split` writes one)")
    text = p.read_text()
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
