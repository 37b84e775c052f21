"""The `kinpoly` command with bad input: a one-line error or a recorded rejection, never a
traceback; default configs found from any working directory."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from kinpoly.cli import main
from kinpoly.config import ConfigError, load_config
from kinpoly.demo import SAMPLE_CLIPS, SAMPLE_TAKES
from kinpoly.motion.clip import ClipFolder, MotionClip


def test_bad_setting_is_a_one_line_error(tmp_path):
    res = CliRunner().invoke(main, ["uhc", "eval", "--motions", str(SAMPLE_CLIPS), "--json",
                                    str(tmp_path / "m.json"), "-o", "env.bogus=1"])
    assert res.exit_code == 1
    # click's own exit, not the ConfigError escaping as a traceback
    assert isinstance(res.exception, SystemExit), res.exception
    assert "Error: env: unknown key(s) bogus" in res.output
    assert not (tmp_path / "m.json").exists()


@pytest.mark.parametrize("module, group, args, message", [
    ("kinpoly.motion.commands", "motion", ["mirror", "{tmp}/bad.npz", "--out", "{tmp}/m"], "not a kinpoly clip"),
    ("kinpoly.egocentric.commands", "ego", ["build", "--motions", "{tmp}", "--out", "{tmp}/ego", "--set", "bogus=1"],
     "unknown key(s) bogus"),
    ("kinpoly.policy.commands", "train", ["kinematic", "--set", "bogus=1"], "unknown key(s) bogus"),
    ("kinpoly.policy.commands", "train", ["loop-controller", "--out", "{tmp}/run", "-o", "data={tmp}/none"],
     "{tmp}/none"),
    ("kinpoly.visualization.commands", "render", ["{tmp}/none.npz"], "none.npz"),
    ("kinpoly.simulation.commands", "uhc", ["eval", "--motions", str(SAMPLE_CLIPS), "--json", "{tmp}/m.json",
                                            "--checkpoint", "{tmp}/bad.npz"], "bad.npz: not a controller checkpoint"),
    ("kinpoly.policy.commands", "estimate_command", ["--take", str(SAMPLE_TAKES), "--out", "{tmp}/est",
                                                     "--checkpoint", "{tmp}/bad.npz"],
     "bad.npz: not a kinematic-policy checkpoint"),
])
def test_each_stage_reports_bad_input_in_one_line(tmp_path, module, group, args, message):
    """Every stage's own command (also invoked without the `kinpoly` group around it) ends
    with ``Error: ...`` and status 1 on bad input."""
    import importlib

    cmd = getattr(importlib.import_module(module), group)
    (tmp_path / "bad.npz").write_text("not a clip")
    res = CliRunner().invoke(cmd, [a.format(tmp=tmp_path) for a in args])
    assert res.exit_code == 1, res.output
    assert isinstance(res.exception, SystemExit), res.exception
    assert res.output.startswith("Error: ") and message.format(tmp=tmp_path) in res.output, res.output


def test_train_export_refuses_another_kind_of_checkpoint(tmp_path):
    """A readable torch file that is not a kinematic-policy checkpoint: one error line, no file."""
    import torch

    from kinpoly.policy.commands import train

    torch.save({"state_dict": {}, "hidden": [8]}, tmp_path / "controller.pt")
    res = CliRunner().invoke(train, ["export", str(tmp_path / "controller.pt"), str(tmp_path / "out.pt")])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
    assert res.output.startswith("Error: ") and "controller.pt: not a kinematic-policy checkpoint" in res.output
    assert not (tmp_path / "out.pt").exists()


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


def test_uhc_eval_tracks_mocap_files_as_they_are(tmp_path):
    """`uhc eval --motions` takes mocap too (a file or a folder of them), imported for the run
    as `motion import` would: a user's BVH is tracked without a clip folder first; a file that
    cannot be imported is named, the others are tracked. A command that needs a clip file
    (render) says how to make one from a mocap file."""
    from kinpoly.motion.export import export_bvh

    walk = ClipFolder(SAMPLE_CLIPS).load("walk_02_01").slice(0, 12, name="walk")
    (tmp_path / "mocap").mkdir()
    export_bvh(walk, tmp_path / "mocap" / "walk.bvh")
    (tmp_path / "mocap" / "broken.bvh").write_text("HIERARCHY\nROOT Hips\n")
    for motions in (tmp_path / "mocap", tmp_path / "mocap" / "walk.bvh"):
        res = CliRunner().invoke(main, ["uhc", "eval", "--motions", str(motions), "--json", str(tmp_path / "m.json"),
                                        "--no-video"])
        assert res.exit_code == 0, res.output
        m = json.loads((tmp_path / "m.json").read_text())
        assert set(m["per_clip"]) == {"walk"} and m["overall"]["success_rate"] == 1.0
        assert ("broken.bvh" in res.output) == motions.is_dir()
    res = CliRunner().invoke(main, ["render", str(tmp_path / "mocap" / "walk.bvh"), "--out", str(tmp_path / "w.mp4")])
    assert res.exit_code == 1 and "a mocap file, not a kinpoly clip: import it first" in res.output, res.output


def test_uhc_eval_writes_the_simulated_motion(tmp_path):
    """--out: the physically tracked version of each clip, as a clip folder and BVH, which
    `kinpoly eval` scores against the clips it came from."""
    walk = ClipFolder(SAMPLE_CLIPS).load("walk_02_01").slice(0, 20, name="walk")
    folder = ClipFolder(tmp_path / "clips", create=True)
    folder.add(walk)
    res = CliRunner().invoke(main, ["uhc", "eval", "--motions", str(folder.root), "--json", str(tmp_path / "m.json"),
                                    "--no-video", "--out", str(tmp_path / "sim")])
    assert res.exit_code == 0, res.output
    sim = ClipFolder(tmp_path / "sim" / "clips").load("walk")
    assert sim.num_frames == 20 and sim.meta["simulated"] and not np.array_equal(sim.qpos, walk.qpos)
    assert (tmp_path / "sim" / "bvh" / "walk.bvh").read_text().startswith("HIERARCHY")
    m = json.loads((tmp_path / "m.json").read_text())
    res = CliRunner().invoke(main, ["eval", "--pred", str(tmp_path / "sim" / "clips"), "--gt", str(folder.root),
                                    "--json", str(tmp_path / "scores.json")])
    assert res.exit_code == 0, res.output
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert abs(scores["mpjpe_global_mm"] - m["per_clip"]["walk"]["mpjpe_global_mm"]) < 1.0


def test_default_configs_are_found_from_any_directory(tmp_path, monkeypatch):
    from kinpoly.config import PACKAGE_DIR
    from kinpoly.simulation.ppo import UHCConfig
    from kinpoly.simulation.split import read_split

    here = load_config(UHCConfig, PACKAGE_DIR / "configs" / "uhc.yaml")
    monkeypatch.chdir(tmp_path)
    assert load_config(UHCConfig, "configs/uhc.yaml") == here
    assert len(read_split("configs/splits/uhc_test.txt")) == 30
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "uhc.yaml").write_text("seed: 7\n")  # the working directory's wins
    assert load_config(UHCConfig, "configs/uhc.yaml").seed == 7
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(UHCConfig, "configs/nope.yaml")


def test_the_wheel_carries_what_the_commands_need(tmp_path):
    """A plain `pip install` (no checkout) gets the shipped checkpoints, default configs, split
    and sample takes, so `kinpoly demo` and `kinpoly estimate` work from any directory."""
    import subprocess
    import sys
    import zipfile

    from kinpoly.config import PACKAGE_DIR

    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path),
                    str(PACKAGE_DIR.parent)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("kinpoly-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for need in ("kinpoly/checkpoints/kinematic/policy.pt", "kinpoly/checkpoints/uhc/policy.pt",
                 "kinpoly/checkpoints/uhc_mocap_global/policy.pt",
                 "kinpoly/checkpoints/flow_encoder/flow_encoder.pt", "kinpoly/configs/uhc.yaml",
                 "kinpoly/configs/kinematic.yaml", "kinpoly/configs/splits/uhc_test.txt",
                 "kinpoly/assets/takes/manifest.json"):
        assert need in names, need
