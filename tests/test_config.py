"""YAML config loading into dataclasses, overrides, errors, run folders."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
import yaml

from kinpoly.config import ConfigError, RunDir, load_config


@dataclass
class Inner:
    lr: float = 1e-3
    layers: list[int] = field(default_factory=lambda: [64, 64])


@dataclass
class Outer:
    seed: int = 0
    name: str = "run"
    flag: bool = False
    inner: Inner = field(default_factory=Inner)
    maybe: float | None = None


def test_defaults_file_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"seed": 3, "inner": {"lr": 0.5}}))
    cfg = load_config(Outer, p, ["inner.layers=[8, 8]", "flag=true", "maybe=2"])
    assert cfg.seed == 3 and cfg.inner.lr == 0.5 and cfg.inner.layers == [8, 8] and cfg.flag
    assert cfg.maybe == 2.0 and cfg.name == "run"
    # YAML 1.1 reads exponents without a dot ("1e-4") as strings; a float field takes them
    assert load_config(Outer, None, ["inner.lr=1e-4", "maybe=3E2"]).inner.lr == 1e-4
    assert load_config(Outer, None, ["maybe=3E2"]).maybe == 300.0


@pytest.mark.parametrize("data,match", [
    ({"sede": 1}, "unknown key"), ({"seed": "x"}, "seed: expected an integer"),
    ({"inner": {"lr": "fast"}}, "inner.lr: expected a number"), ({"flag": 1}, "flag: expected true/false"),
    ({"inner": 3}, "inner: expected a mapping"),
])
def test_errors_name_the_key(tmp_path, data, match):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=match):
        load_config(Outer, p)


def test_missing_file_and_bad_override(tmp_path):
    with pytest.raises(ConfigError, match="no such config"):
        load_config(Outer, tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="key=value"):
        load_config(Outer, None, ["seed"])


def test_run_dir_records_config_seed_commit_metrics(tmp_path):
    run = RunDir(tmp_path / "run", Outer(seed=7), seed=7)
    run.write_metrics({"mpjpe_mm": 12.5})
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["seed"] == 7 and info["git_commit"] and "finished" in info
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["seed"] == 7
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == {"mpjpe_mm": 12.5}


def test_run_dir_keeps_earlier_starts_and_names_changed_settings(tmp_path, caplog):
    """A second start in the same folder (a resumed run) keeps the first one's record and says
    which settings changed, instead of overwriting run.json."""
    RunDir(tmp_path, Outer(), seed=1)
    first = json.loads((tmp_path / "run.json").read_text())
    RunDir(tmp_path, Outer(), seed=1)  # resumed as it was: no change, no warning
    assert "changed_since" not in json.loads((tmp_path / "run.json").read_text())["earlier"][0]
    assert not caplog.records
    changed = Outer(name="other")
    changed.inner.lr = 0.5
    RunDir(tmp_path, changed, seed=2)
    info = json.loads((tmp_path / "run.json").read_text())
    assert len(info["earlier"]) == 2 and info["earlier"][0]["started"] == first["started"]
    assert info["earlier"][-1]["changed_since"] == {"name": ["run", "other"], "inner.lr": [1e-3, 0.5],
                                                      "seed": [1, 2]}
    assert "inner.lr" in caplog.text and "name" in caplog.text
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["inner"]["lr"] == 0.5
