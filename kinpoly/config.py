"""YAML configuration validated into dataclasses, and run folders that record what ran.

Every stage describes its settings as a (nested) dataclass with defaults. :func:`load_config`
reads a YAML file, applies ``key.sub=value`` overrides, rejects unknown keys and values of the
wrong type with a message naming the key, and returns the dataclass. :class:`RunDir` writes the
resolved config, the seed, the git commit and the command next to a run's outputs, and its
metrics at the end, so every number can be traced back to how it was made.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
import platform
import random
import subprocess
import sys
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import yaml

from .errors import InputError

T = TypeVar("T")

# The shipped checkpoints and the default configs are package data (kinpoly/checkpoints,
# kinpoly/configs; the checkout links them at its top level as checkpoints/ and configs/), so
# every install, editable or from a wheel, has them and the commands find them from any
# working directory.
PACKAGE_DIR = Path(__file__).resolve().parent
CHECKPOINTS = PACKAGE_DIR / "checkpoints"


def resolve_path(path: str | os.PathLike) -> Path:
    """``path`` itself where it exists or is absolute; else a relative default such as
    ``configs/uhc.yaml`` looked up in the package; else ``path`` unchanged (for the caller's
    "no such file" error)."""
    p = Path(path)
    if p.exists() or p.is_absolute() or not (PACKAGE_DIR / p).exists():
        return p
    return PACKAGE_DIR / p


def read_checkpoint(path: str | os.PathLike, what: str, weights_only: bool = False) -> dict:
    """The dict a torch checkpoint file holds. A missing file raises ``FileNotFoundError``, one
    that is not a checkpoint (unreadable, truncated, another format, not a dict) an
    :class:`InputError`; both name the file and ``what`` it should be."""
    import pickle

    import torch

    path = resolve_path(path)  # a shipped default such as checkpoints/uhc/policy.pt from any directory
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=weights_only)
    except (pickle.UnpicklingError, EOFError, RuntimeError, ValueError, AttributeError, ImportError,
            KeyError, IndexError, TypeError) as e:  # a text or other file: torch's loader fails in many ways
        raise InputError(f"{path}: not a {what} ({type(e).__name__}: {e})") from None
    if not isinstance(blob, dict):
        raise InputError(f"{path}: not a {what} (it holds a {type(blob).__name__})")
    return blob


class ConfigError(InputError):
    """A configuration file or override is invalid; the message names the key."""


def _expected(tp: Any) -> str:
    """What a value of type ``tp`` looks like, for error messages."""
    if typing.get_origin(tp) is typing.Literal:
        return f"one of {list(typing.get_args(tp))}"
    if dataclasses.is_dataclass(tp) or typing.get_origin(tp) is dict:
        return "a mapping"
    if typing.get_origin(tp) in (list, tuple):
        return "a list"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        if len(errors) > 1:  # e.g. ``bool | Literal["off", "full"]``: name every accepted form
            wanted = [_expected(a) for a in args if a is not type(None)]
            raise ConfigError(f"{key}: expected {' or '.join(wanted)}, got {value!r}")
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__}")
        return from_dict(tp, value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_convert(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        kt, vt = args or (Any, Any)
        return {_convert(k, kt, key): _convert(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-4" (no dot) as a string
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{key}: must be one of {list(args)}, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: dict, prefix: str = "") -> T:
    """Validate a plain mapping (e.g. a config saved in a checkpoint) into ``cls``."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{prefix or cls.__name__}: unknown key(s) {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(names))}")
    kwargs = {k: _convert(v, hints[k], f"{prefix}.{k}" if prefix else k) for k, v in data.items()}
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{prefix or cls.__name__}: {e}") from None
    return obj


def _yaml_problem(e: yaml.YAMLError) -> str:
    """A YAML error in one line: what is wrong and where (line, column)."""
    mark = getattr(e, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{getattr(e, 'problem', None) or type(e).__name__}{where}"


def _parse_scalar(text: str) -> Any:
    return yaml.safe_load(text)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``["ppo.lr=3e-4", "seed=2"]`` -> nested dict updates (values parsed as YAML)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
        key, text = item.split("=", 1)
        node = data
        parts = [part.strip() for part in key.split(".")]
        if not all(parts):
            raise ConfigError(f"override {item!r}: empty key")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p} is not a section")
        try:
            node[parts[-1]] = _parse_scalar(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: invalid value ({_yaml_problem(e)})") from None
    return data


def load_config(cls: type[T], path: str | os.PathLike | None = None, overrides: list[str] | None = None) -> T:
    """Defaults of ``cls``, updated by the YAML file at ``path`` and by ``overrides``. A
    relative ``path`` that is not in the working directory is looked up in the package
    (:func:`resolve_path`)."""
    data: dict = {}
    if path is not None:
        p = resolve_path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: no such config file")
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: invalid YAML ({_yaml_problem(e)})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{p}: the top level must be a mapping")
        data = loaded
    data = apply_overrides(data, overrides or [])
    return from_dict(cls, data)


def to_dict(cfg: Any) -> dict:
    """A config dataclass (or a plain dict of settings) as JSON-safe nested dicts."""
    return json.loads(json.dumps(cfg if isinstance(cfg, dict) else dataclasses.asdict(cfg), default=str))


def git_commit(cwd: str | os.PathLike | None = None) -> str:
    """Current commit hash (+ "-dirty" with uncommitted changes), or "unknown"."""
    cwd = cwd or PACKAGE_DIR
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                              timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head + ("-dirty" if dirty else "")) if head else "unknown"


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and (if imported) PyTorch; return a NumPy generator for the run."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)
    return np.random.default_rng(seed)


def config_changes(old: Any, new: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (old, new)}`` for every setting that differs between two config dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: dict[str, tuple[Any, Any]] = {}
        for k in list(old) + [k for k in new if k not in old]:
            out.update(config_changes(old.get(k), new.get(k), f"{prefix}{k}."))
        return out
    return {} if old == new else {prefix.rstrip("."): (old, new)}


class RunDir:
    """A run's output folder: ``config.yaml``, ``run.json`` (seed, commit, command, times) and
    ``metrics.json``, each written atomically.

    A folder that already holds a run (a resumed training run, an estimate run again into the
    same folder) keeps its record: ``run.json``'s ``earlier`` lists the previous starts (seed,
    commit, command, time) with the settings that changed since (also logged as a warning,
    since a resumed run then continues with other settings than it began with)."""

    def __init__(self, path: str | os.PathLike, config: Any = None, seed: int | None = None):
        import logging

        from .motion.clip import atomic_write_text

        self._write = atomic_write_text
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.info = {"seed": seed, "git_commit": git_commit(), "command": " ".join(sys.argv),
                     "python": platform.python_version(), "host_cpus": os.cpu_count(),
                     "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        resolved = to_dict(config) if config is not None else None
        earlier = self._earlier(resolved, seed)
        if earlier:
            self.info["earlier"] = earlier
            if changed := earlier[-1].get("changed_since"):
                logging.getLogger(__name__).warning(
                    "%s holds a run started with other settings: %s", self.path,
                    "; ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items()))
        if resolved is not None:
            self._write(self.path / "config.yaml", yaml.safe_dump(resolved, sort_keys=False))
        self._write(self.path / "run.json", json.dumps(self.info, indent=1, default=str))

    def _earlier(self, resolved: dict | None, seed: int | None) -> list[dict]:
        """The previous starts recorded in this folder (unreadable records are dropped)."""
        try:
            prev = json.loads((self.path / "run.json").read_text())
            old_cfg = yaml.safe_load((self.path / "config.yaml").read_text()) if resolved is not None else None
        except (OSError, ValueError, yaml.YAMLError):
            return []
        if not isinstance(prev, dict):
            return []
        history = prev.pop("earlier", [])
        prev = {k: prev[k] for k in ("seed", "git_commit", "command", "started", "finished") if k in prev}
        changed = config_changes(old_cfg, resolved) if isinstance(old_cfg, dict) else {}
        if prev.get("seed") != seed:
            changed["seed"] = (prev.get("seed"), seed)
        if changed:
            prev["changed_since"] = changed
        return [*history, prev] if isinstance(history, list) else [prev]

    def write_metrics(self, metrics: dict, name: str = "metrics.json") -> Path:
        out = self.path / name
        self.info["finished"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        self._write(self.path / "run.json", json.dumps(self.info, indent=1))
        self._write(out, json.dumps(metrics, indent=1, default=float))
        return out
