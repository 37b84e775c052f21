"""The `kinpoly` command with bad input: a one-line error or a recorded rejection, never a
traceback; default configs found from any working directory."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from kinpoly.cli import main
from kinpoly.config import ConfigError, load_config
from kinpoly.demo import SAMPLE_CLIPS
from kinpoly.motion.clip import ClipFolder, MotionClip


def test_bad_setting_is_a_one_line_error(tmp_path):
    res = CliRunner().invoke(main, ["uhc", "eval", "--motions", str(SAMPLE_CLIPS), "--json",
                                    str(tmp_path / "m.json"), "-o", "env.bogus=1"])
    assert res.exit_code == 1
    # click's own exit, not the ConfigError escaping as a traceback
    assert isinstance(res.exception, SystemExit), res.exception
    assert "Error: env: unknown key(s) bogus" in res.output
    assert not (tmp_path / "m.json").exists()


def test_uhc_eval_records_the_clips_it_cannot_track(tmp_path):
    walk = ClipFolder(SAMPLE_CLIPS).load("walk_02_01").slice(0, 12, name="walk")
    folder = ClipFolder(tmp_path / "clips", create=True)
    folder.add(walk)
    folder.add(MotionClip(name="walk_120fps", qpos=walk.qpos, fps=120.0, body=walk.body))
    out = tmp_path / "m.json"
    res = CliRunner().invoke(main, ["uhc", "eval", "--motions", str(folder.root), "--json", str(out),
                                    "--no-video"])
    assert res.exit_code == 0, res.output
    m = json.loads(out.read_text())
    assert set(m["per_clip"]) == {"walk"}
    assert "120 fps" in m["rejected"]["walk_120fps"]
    assert "rejected walk_120fps" in res.output

    only_bad = ClipFolder(tmp_path / "bad", create=True)
    only_bad.add(MotionClip(name="walk_120fps", qpos=walk.qpos, fps=120.0, body=walk.body))
    res = CliRunner().invoke(main, ["uhc", "eval", "--motions", str(only_bad.root), "--json", str(out)])
    assert res.exit_code == 1 and "none of the 1 clip(s) can be tracked" in res.output


def test_default_configs_are_found_from_any_directory(tmp_path, monkeypatch):
    from kinpoly.config import PROJECT_ROOT
    from kinpoly.simulation.ppo import UHCConfig

    here = load_config(UHCConfig, PROJECT_ROOT / "configs" / "uhc.yaml")
    monkeypatch.chdir(tmp_path)
    assert load_config(UHCConfig, "configs/uhc.yaml") == here
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "uhc.yaml").write_text("seed: 7\n")  # the working directory's wins
    assert load_config(UHCConfig, "configs/uhc.yaml").seed == 7
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(UHCConfig, "configs/nope.yaml")
