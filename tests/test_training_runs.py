"""What the training commands promise: bad input ends with a one-line error (never a traceback,
never a hang, no run folder left behind), the same seed gives the same curves and weights, a
run resumed from its last checkpoint ends where an uninterrupted one does, and every run folder
records its config, seed and git commit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from kinpoly.cli import main
from kinpoly.config import CHECKPOINTS, PACKAGE_DIR, load_config

CLIPS = PACKAGE_DIR / "assets" / "clips"
TAKES = PACKAGE_DIR / "assets" / "takes"
KINEMATIC = CHECKPOINTS / "kinematic" / "policy.pt"
CONTROLLER = CHECKPOINTS / "uhc" / "policy.pt"
TIMING = {"wall_s", "samples_per_s", "sim_fraction", "seconds"}  # clock readings, not results


def _no_train_takes(tmp_path: Path) -> Path:
    """The bundled takes with every take moved to the test split."""
    folder = tmp_path / "no_train"
    folder.mkdir()
    (folder / "takes").symlink_to(TAKES / "takes")
    m = json.loads((TAKES / "manifest.json").read_text())
    m["split"] = {"train": [], "test": m["split"]["train"]}
    (folder / "manifest.json").write_text(json.dumps(m))
    return folder


def _one_line_error(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    return lines[0]


# --- bad input: one line, in process ----------------------------------------------------------
def _fake_uhc_run(out: Path) -> None:
    out.mkdir()
    torch.save({"policy": {}, "optimizer": {}, "iteration": 1, "curves": [], "hidden": [32, 32],
                "config": {}, "extra": {}}, out / "last.pt")


def _fake_kinematic_run(out: Path) -> None:
    out.mkdir()
    torch.save({"policy": {}, "context": {}, "optimizer": {}, "iteration": 1, "rng": {}, "curves": [],
                "torch_rng": torch.get_rng_state(),
                "policy_config": {"feature_dim": 512, "hidden": 512, "mlp": [512, 256], "context_frames": 30,
                                  "joint_step": 0.2, "height_step": 0.05}}, out / "checkpoint.pt")


UHC = ["uhc", "train", "--motions", str(CLIPS), "--out", "{out}"]
KIN = ["train", "kinematic", "--config", "configs/kinematic.yaml", "--data", str(TAKES), "--out", "{out}",
       "--no-progress"]
DYN = ["train", "dynamics", "--config", "configs/dynamics.yaml", "--data", str(TAKES), "--out", "{out}",
       "--init", str(KINEMATIC), "--no-progress"]


@pytest.mark.parametrize("args,match,prepare", [
    (UHC + ["-o", "foo=1"], "unknown key(s) foo", None),
    (UHC + ["--set", "ppo.iteratons=3"], "ppo: unknown key(s) iteratons", None),  # --set as in `train`
    (UHC + ["-o", "ppo.hidden=[1"], "invalid value", None),  # was a YAML traceback
    (UHC + ["-o", "=3"], "empty key", None),
    (UHC + ["-o", "ppo.iterations=abc"], "expected an integer", None),
    (UHC + ["--config", "{tmp}/missing.yaml"], "no such config file", None),
    (UHC + ["--init", str(KINEMATIC)], "not a controller checkpoint", None),
    (UHC + ["-o", "ppo.hidden=[64,64]"], "hidden layers [32, 32]", _fake_uhc_run),  # was a traceback
    (KIN + ["--set", "weights.root_poss=1"], "weights: unknown key(s) root_poss", None),
    (KIN + ["--set", "foo"], "expected key=value", None),
    (KIN + ["--init", str(CONTROLLER)], "not a kinematic-policy checkpoint", None),
    (KIN + ["--set", "policy.hidden=64"], "differs from the config in hidden", _fake_kinematic_run),
    (KIN + ["--data", "{tmp}/nowhere"], "no manifest", None),
    (KIN + ["--data", "{tmp}/no_train"], "no training takes", None),
    (DYN + ["--init", str(CONTROLLER)], "not a kinematic-policy checkpoint", None),  # was a KeyError
    (DYN + ["--init", "{tmp}/missing.pt"], "no supervised kinematic-policy checkpoint", None),
    (DYN + ["--data", "{tmp}/no_train"], "no training takes", None),  # was a traceback
    (DYN + ["--set", "feedforward=maybe"], "one of ['off', 'static', 'full']", None),
    (["ego", "train-flow", "{tmp}/no_train", "--out", "{out}"], "no train takes", None),  # was a traceback
])
def test_bad_input_is_one_line(tmp_path, args, match, prepare):
    _no_train_takes(tmp_path)
    out = tmp_path / "run"
    if prepare:
        prepare(out)
    before = sorted(p.name for p in out.iterdir()) if out.exists() else None
    res = CliRunner().invoke(main, [a.format(out=out, tmp=tmp_path) for a in args])
    assert isinstance(res.exception, SystemExit) and res.exit_code == 1, (res.output, res.exception)
    assert match in _one_line_error(res.output)
    # nothing recorded for a run that never started (a resumable run's record is left as it was)
    assert (sorted(p.name for p in out.iterdir()) if out.exists() else None) == before


def test_invalid_yaml_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: 0\nppo:\n  iterations: [1\n")
    res = CliRunner().invoke(main, ["uhc", "train", "--config", str(bad), "--motions", str(CLIPS),
                                    "--out", str(tmp_path / "run")])
    assert res.exit_code == 1 and "invalid YAML" in _one_line_error(res.output)


# --- bad input found in a rollout worker: reported, not a hang (subprocesses) ------------------
@pytest.mark.parametrize("args,match", [
    (["uhc", "train", "--motions", "{tmp}/empty", "--out", "{tmp}/run", "-o", "ppo.num_workers=1"],
     "no clips to train on"),
    (DYN + ["--set", "controller={tmp}/missing.pt", "--set", "workers=1"], "no such controller checkpoint"),
    (["train", "loop-controller", "--out", "{tmp}/run", "--no-progress", "-o", f"data={TAKES}",
      "-o", "ppo.num_workers=1", "-o", f"kinematic={CONTROLLER}"], "not a kinematic-policy checkpoint"),
])
def test_worker_errors_end_the_run(tmp_path, args, match):
    (tmp_path / "empty").mkdir()
    cmd = [sys.executable, "-m", "kinpoly.cli"] + [a.format(out=tmp_path / "run", tmp=tmp_path) for a in args]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=60, cwd=PACKAGE_DIR.parent,
                             env={**os.environ, "MUJOCO_GL": "egl"})
    except subprocess.TimeoutExpired:
        pytest.fail(f"hung: {' '.join(args)}")
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr and match in _one_line_error(res.stderr)
    assert not (tmp_path / "run").exists()


# --- same seed, same result; exact resume; run record ------------------------------------------
def _results(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def _assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _assert_run_record(folder: Path, seed: int) -> None:
    info = json.loads((folder / "run.json").read_text())
    assert info["seed"] == seed and info["git_commit"] and "started" in info
    assert yaml.safe_load((folder / "config.yaml").read_text())["seed"] == seed


def test_uhc_train_same_seed_and_exact_resume(tmp_path):
    from kinpoly.simulation.ppo import UHCConfig, train

    cfg = load_config(UHCConfig, None, ["split=null", "seed=3", "ppo.iterations=3", "ppo.num_workers=1",
                                        "ppo.envs_per_worker=2", "ppo.steps_per_env=16", "ppo.minibatch=32",
                                        "ppo.torch_threads=1", "ppo.hidden=[32,32]", "ppo.hard_clip_weight=4"])
    full = train(cfg, str(CLIPS), tmp_path / "full", inline=True, progress=False)
    # the same seed again, stopped after a checkpoint (as a killed run) and started again
    assert len(train(cfg, str(CLIPS), tmp_path / "resumed", inline=True, progress=False, max_iterations=2)) == 2
    resumed = train(cfg, str(CLIPS), tmp_path / "resumed", inline=True, progress=False)
    assert len(full) == 3 and _results(resumed) == _results(full)
    a, b = (torch.load(tmp_path / d / "last.pt", weights_only=False) for d in ("full", "resumed"))
    _assert_same_weights(a["policy"], b["policy"])
    assert a["extra"] == b["extra"]  # the clips' failure rates (hard-clip sampling)
    _assert_run_record(tmp_path / "resumed", 3)
    assert json.loads((tmp_path / "full" / "metrics.json").read_text())["final"]["iteration"] == 3


def test_kinematic_same_seed_and_exact_resume(tmp_path):
    from kinpoly.egocentric.take import EgoDataset
    from kinpoly.policy.data import take_tensors
    from kinpoly.policy.supervised import SupervisedConfig, SupervisedTrainer

    def run(out, iterations):
        cfg = load_config(SupervisedConfig, "configs/kinematic.yaml",
                          [f"iterations={iterations}", "batch=2", "window=8", "checkpoint_every=2", "threads=1",
                           "policy.hidden=32", "policy.mlp=[32]", "seed=5"])
        takes = [take_tensors(t, True) for t in EgoDataset(TAKES, split="train")]
        return SupervisedTrainer(cfg, takes, out).train(progress=False)

    full = run(tmp_path / "full", 6)
    run(tmp_path / "resumed", 4)
    resumed = run(tmp_path / "resumed", 6)
    assert len(full) == 6 and resumed == full
    assert (tmp_path / "full" / "curves.csv").read_bytes() == (tmp_path / "resumed" / "curves.csv").read_bytes()
    a, b = (torch.load(tmp_path / d / "checkpoint.pt", weights_only=False) for d in ("full", "resumed"))
    _assert_same_weights(a["policy"], b["policy"])
    _assert_same_weights(a["context"], b["context"])


def test_dynamics_same_seed_and_exact_resume(tmp_path, monkeypatch):
    from kinpoly.policy.dynamics import DynamicsConfig, DynamicsTrainer

    monkeypatch.chdir(tmp_path)  # the config's controller, checkpoints/uhc/policy.pt, from any directory

    cfg = load_config(DynamicsConfig, "configs/dynamics.yaml",
                      [f"data={TAKES}", f"init={KINEMATIC}", "iterations=2", "steps_per_iteration=24",
                       "episode_length=12", "workers=1", "minibatch=12", "epochs=1", "threads=1", "seed=2"])
    full = DynamicsTrainer(cfg, tmp_path / "full", inline=True).train(progress=False)
    DynamicsTrainer(cfg, tmp_path / "resumed", inline=True).train(progress=False, max_iterations=1)
    resumed = DynamicsTrainer(cfg, tmp_path / "resumed", inline=True).train(progress=False)
    assert len(full) == 2 and _results(resumed) == _results(full)
    a, b = (torch.load(tmp_path / d / "checkpoint.pt", weights_only=False) for d in ("full", "resumed"))
    _assert_same_weights(a["policy"], b["policy"])
    _assert_same_weights(a["critic"], b["critic"])


def test_flow_training_records_its_run(tmp_path):
    from kinpoly.egocentric.flow import TrainConfig, train_flow_encoder
    from kinpoly.errors import InputError

    rng = np.random.default_rng(0)
    flows, vel = rng.normal(size=(40, 2, 8, 8)).astype(np.float32), rng.normal(size=(40, 6))
    cfg = TrainConfig(epochs=1, batch=16, feature_dim=8, width=4, seed=4)
    metrics = train_flow_encoder(flows[:32], vel[:32], flows[32:], vel[32:], tmp_path / "enc", cfg, log=lambda s: None)
    _assert_run_record(tmp_path / "enc", 4)
    assert json.loads((tmp_path / "enc" / "metrics.json").read_text())["test"] == metrics["test"]
    with pytest.raises(InputError, match="training frame pairs"):  # fewer pairs than a batch: nothing to learn
        train_flow_encoder(flows[:8], vel[:8], flows[32:], vel[32:], tmp_path / "none", cfg, log=lambda s: None)


def test_held_out_split_applies_from_any_directory(tmp_path, monkeypatch):
    from kinpoly.errors import InputError
    from kinpoly.humanoid.mjcf import rest_qpos
    from kinpoly.motion.clip import ClipFolder, MotionClip
    from kinpoly.simulation.ppo import train_clip_names
    from kinpoly.simulation.split import read_split

    held = read_split("configs/splits/uhc_test.txt")[0]
    folder = ClipFolder(tmp_path / "m", create=True)
    for name in (held, "other"):
        folder.add(MotionClip(name, np.tile(rest_qpos(), (5, 1))))
    monkeypatch.chdir(tmp_path)  # outside the checkout: the split is the package's (it was skipped)
    assert train_clip_names("m", "configs/splits/uhc_test.txt") == ["other"]
    with pytest.raises(InputError, match="no such split file"):  # not silently trained on every clip
        train_clip_names("m", "splits/missing.txt")
