"""Held-out split of a clip folder: a seeded shuffle stratified by dataset (the folder a clip
was imported from), the same fraction of every dataset held out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import resolve_path
from ..motion.clip import ClipFolder


def dataset_of(entry: dict) -> str:
    src = entry.get("source") or ""
    return Path(src).parent.name or "unknown"


def make_split(motions: str, fraction: float = 0.15, seed: int = 0) -> list[str]:
    """Names of the held-out clips: round(fraction * n) of each dataset (at least 1)."""
    groups: dict[str, list[str]] = {}
    for e in ClipFolder(motions).entries():
        groups.setdefault(dataset_of(e), []).append(e["name"])
    rng = np.random.default_rng(seed)
    held = []
    for ds in sorted(groups):
        names = sorted(groups[ds])
        k = max(1, int(round(fraction * len(names))))
        held += sorted(rng.permutation(names)[:k].tolist())
    return held


def read_split(path: str) -> list[str]:
    """Clip names listed in a split file (``configs/splits/...`` also from any directory)."""
    text = resolve_path(path).read_text()
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
