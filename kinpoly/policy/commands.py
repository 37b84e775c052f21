"""``kinpoly train ...``: train the kinematic policy."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np

from ..config import ConfigError, RunDir, load_config


@click.group()
def train() -> None:
    """Train the kinematic policy (supervised; dynamics-regulated to come)."""


@train.command("kinematic")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="YAML config (see configs/kinematic.yaml).")
@click.option("--data", type=click.Path(path_type=Path), default=None, help="Take folder (overrides config).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Run folder (overrides config).")
@click.option("--set", "overrides", multiple=True, help="Override a config key, e.g. --set lr=3e-4.")
@click.option("--no-progress", is_flag=True)
def kinematic_command(config_path, data, out, overrides, no_progress) -> None:
    """Supervised training on the egocentric takes' train split; resumes from OUT/checkpoint.pt."""
    from ..egocentric.take import EgoDataError, EgoDataset
    from ..visualization.plots import plot_curves
    from .data import take_tensors
    from .supervised import SupervisedConfig, SupervisedTrainer

    try:
        cfg = load_config(SupervisedConfig, config_path, list(overrides))
    except ConfigError as e:
        raise click.ClickException(str(e)) from None
    cfg.data, cfg.out = str(data or cfg.data), str(out or cfg.out)
    try:
        ds = EgoDataset(cfg.data, split="train")
    except EgoDataError as e:
        raise click.ClickException(str(e)) from None
    takes = [take_tensors(t, cfg.use_image_features) for t in ds]
    if not takes:
        raise click.ClickException(f"{cfg.data}: no training takes")
    run = RunDir(cfg.out, cfg, cfg.seed)
    trainer = SupervisedTrainer(cfg, takes, cfg.out)
    curves = trainer.train(progress=not no_progress)
    it = np.array([c["iteration"] for c in curves])
    plot_curves({k: (it, np.array([c[k] for c in curves])) for k in ("total", "root_pos", "pose", "end_effector")},
                Path(cfg.out) / "training_curve.png", title="kinematic policy (supervised)",
                xlabel="iteration", ylabel="loss", logy=True)
    final = {k: float(np.mean([c[k] for c in curves[-20:]])) for k in curves[-1] if k != "iteration"}
    run.write_metrics({"iterations": len(curves), "final_losses": final})
    click.echo(json.dumps(final, indent=1))
