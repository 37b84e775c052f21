"""``kinpoly uhc``: train, evaluate and benchmark the universal humanoid controller."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
import numpy as np

from ..errors import Group, check_output


@click.group(cls=Group)
def uhc() -> None:
    """Universal humanoid controller: physics-based tracking of reference motions."""


@uhc.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default="configs/uhc.yaml",
              show_default=True, help="YAML of kinpoly.simulation.ppo.UHCConfig.")
@click.option("--motions", required=True, type=click.Path(exists=True, file_okay=False),
              help="Clip folder (kinpoly motion import output).")
@click.option("--out", default="runs/uhc", show_default=True, help="Run folder (checkpoints, curves).")
@click.option("-o", "--override", "--set", multiple=True, help="key=value config override, e.g. ppo.iterations=10.")
@click.option("--ray", "ray_address", default=None, help="Ray cluster address ('local' starts one) for rollout workers.")
@click.option("--no-resume", is_flag=True, help="Start over even if OUT has a checkpoint.")
@click.option("--iterations", type=int, default=None, help="Stop after this many more iterations.")
@click.option("--time-limit", type=float, default=None, help="Stop after this many seconds (checkpoint kept).")
@click.option("--init", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A shipped controller (policy.pt) to continue training from when OUT has no checkpoint.")
def train(config_path, motions, out, override, ray_address, no_resume, iterations, time_limit, init) -> None:
    """PPO training with rollout workers on every core; resumes from OUT/last.pt."""
    from ..config import load_config
    from .ppo import UHCConfig, train as run_train

    cfg = load_config(UHCConfig, config_path, list(override))
    curves = run_train(cfg, motions, out, ray_address=ray_address, resume=not no_resume,
                       max_iterations=iterations, time_limit_s=time_limit, init=init)
    if curves:
        click.echo(json.dumps(curves[-1], indent=1))


@uhc.command()
@click.option("--teacher", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Trained controller (.pt) to imitate.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default="configs/uhc.yaml",
              show_default=True, help="The student's settings (YAML of UHCConfig).")
@click.option("--motions", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, help="Run folder; `kinpoly uhc train --out` the same folder fine-tunes it.")
@click.option("-o", "--override", "--set", multiple=True,
              help="key=value override of the student's settings, e.g. env.controller.feedforward=false.")
@click.option("--rounds", type=int, default=None, help="DAgger rounds (default: DistillConfig's, 30).")
@click.option("--steps", type=int, default=None, help="Steps per environment and round (default 512).")
@click.option("--init-from-teacher", is_flag=True,
              help="Start the student as a copy of the teacher (same network), e.g. to teach it degraded references.")
def distill(teacher, config_path, motions, out, override, rounds, steps, init_from_teacher) -> None:
    """Distil a controller into one with other settings (DAgger), e.g. without feed-forward, or
    with degraded reference legs (env.reference_legs) under a teacher that reads the true clip."""
    from ..config import load_config
    from .distill import DistillConfig, distill as run_distill
    from .ppo import UHCConfig

    cfg = load_config(UHCConfig, config_path, list(override))
    d = DistillConfig()
    d.rounds, d.steps_per_env = rounds or d.rounds, steps or d.steps_per_env
    d.init_from_teacher = init_from_teacher
    rows = run_distill(cfg, teacher, motions, out, d)
    click.echo(json.dumps(rows[-1], indent=1))


@uhc.command("split")
@click.option("--motions", required=True, type=click.Path(exists=True, file_okay=False),
              help="Clip folder (kinpoly motion import output).")
@click.option("--fraction", type=click.FloatRange(0, 1, min_open=True), default=0.15, show_default=True,
              help="Share of every dataset held out.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--ego", "ego_data", type=click.Path(exists=True, file_okay=False), default=None,
              help="Also hold out the clips this egocentric dataset's test takes were rendered from "
                   "(for a controller used by kinpoly estimate).")
@click.option("--out", required=True, help="Split file to write (read by the config's `split`, uhc eval --split).")
def split_command(motions, fraction, seed, ego_data, out) -> None:
    """Write the held-out clips of a clip folder (configs/splits/uhc_test.txt is this on the
    imported ../shared/data; with --ego data/ego, uhc_and_ego_test.txt)."""
    from ..motion.clip import ClipFolder
    from .split import ego_test_sources, make_split, write_split

    held = make_split(motions, fraction, seed)
    check_output(out)
    comment = (f"Held-out clips: {fraction:g} of each dataset of {motions} (seeded shuffle, seed {seed}; "
               f"kinpoly.simulation.split.make_split)")
    if ego_data:
        sources = ego_test_sources(ego_data)
        missing = [n for n in sources if n not in ClipFolder(motions)]
        if missing:
            click.echo(f"warning: {len(missing)} source clip(s) of {ego_data}'s test takes are not in {motions}: "
                       f"{missing[:5]}", err=True)
        added = sorted(set(sources) - set(held))
        held += added
        comment += (f",\nplus the {len(added)} other source clips of the test takes of {ego_data} "
                    f"({len(sources)} in all).")
    write_split(out, held, comment + f"\nWritten by: kinpoly uhc split --motions {motions} --fraction {fraction:g} "
                f"--seed {seed}" + (f" --ego {ego_data}" if ego_data else "") + f" --out {out}")
    click.echo(f"{len(set(held))} held-out clips -> {out}")


@uhc.command("eval")
@click.option("--motions", required=True, type=click.Path(exists=True),
              help="Clip folder or clip file, or mocap (a file or a folder of BVH, ASF/AMC, AMASS, ... files) "
                   "imported for this run as `kinpoly motion import` would.")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Policy (.pt); without it the training-free controller runs.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default="configs/uhc.yaml",
              show_default=True, help="Used when the checkpoint carries no config.")
@click.option("--split", type=click.Path(dir_okay=False), default=None,
              help="Only the clips listed in this file (e.g. configs/splits/uhc_test.txt, found from any directory).")
@click.option("--no-residual", is_flag=True, help="Switch the residual root force off.")
@click.option("-o", "--override", multiple=True, help="key=value config override.")
@click.option("--json", "json_out", required=True, type=click.Path(dir_okay=False), help="Metrics JSON to write.")
@click.option("--video/--no-video", default=True, show_default=True,
              help="Render reference vs simulation of the worst clip next to the JSON.")
@click.option("-j", "--workers", type=click.IntRange(min=1), default=None,
              help="Processes tracking clips side by side (default: all cores, at most one per clip).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write the simulated motion here: a clip folder (clips/, as `motion import` "
                   "makes) and a BVH per clip (bvh/); a clip that fell ends where it fell (see "
                   "--recover). It had the residual root force's help unless --no-residual.")
@click.option("--recover", is_flag=True,
              help="After a fall, go on from the reference pose of that frame (a restart, recorded per clip), "
                   "so that the simulated motion covers the whole clip; the clip still counts as failed.")
def eval_command(motions, checkpoint, config_path, split, no_residual, override, json_out, video, workers,
                 out_dir, recover) -> None:
    """Track every clip from its first frame and write per-clip and overall metrics (with
    --out, the simulated motion too: the clips as the simulated humanoid performs them)."""
    from ..errors import InputError, did_you_mean
    from ..motion.clip import atomic_write_text
    from ..motion.importers import open_motions
    from .evaluate import evaluate, load_controller, worst_clip
    from .reference import prepare_reference
    from .split import read_split

    cfg, policy = load_controller(checkpoint, config_path, override)
    check_output(json_out, option="--json")  # before the clips are tracked, not after
    if out_dir is not None:
        check_output(out_dir, folder=True)
    env_cfg = cfg.env
    if no_residual:
        env_cfg.sim.residual_force = False
    opened = open_motions(motions)  # clips, or mocap files imported on the fly
    available, load = opened.names, opened.load
    if opened.imported:
        click.echo(f"{motions}: {len(available)} clip(s) imported from mocap for this run "
                   f"(`kinpoly motion import` keeps them)", err=True)
    for why in opened.failures.values():
        click.echo(f"not imported: {why}", err=True)
    names = read_split(split) if split else available
    if not names:
        raise InputError(f"{split}: the split lists no clips" if split else
                         f"{motions}: no clips to track (a clip folder of `kinpoly motion import`, or "
                         f"mocap files it reads)")
    missing = [n for n in names if n not in available]
    if missing:
        raise InputError(f"{len(missing)} clip(s) of the split are not in {motions}: {missing[:5]}"
                         f"{did_you_mean(missing[0], available)}; split and clips must match")
    # a clip that cannot be tracked (NaN, wrong frame rate, unreadable) is recorded and skipped
    refs, rejected = [], {}
    for name in names:
        try:
            refs.append(prepare_reference(load(name)))
        except InputError as e:
            rejected[name] = str(e)
    for name, why in rejected.items():
        click.echo(f"rejected {why}" if why.startswith(name) else f"rejected {name}: {why}", err=True)
    if not refs:
        raise click.ClickException(f"none of the {len(names)} clip(s) can be tracked")
    result, tracked = evaluate(refs, env_cfg, policy, workers=workers or os.cpu_count() or 1, recover=recover)
    result["recover"] = recover
    result["controller"] = "learned" if checkpoint else "training-free"
    result["checkpoint"] = checkpoint
    result["residual_force"] = env_cfg.sim.residual_force
    result["split"] = split
    result["rejected"] = rejected
    out = Path(json_out)
    if video and result["per_clip"]:
        name = worst_clip(result["per_clip"])
        try:
            from ..visualization.render import render_clips

            ref = next(r for r in refs if r.name == name)
            vpath = out.with_name(out.stem + "_worst.mp4")
            sim_clip = tracked[name].clip
            fell = result["per_clip"][name].get("fail_frame")
            stop = min(ref.num_frames, (sim_clip.num_frames if fell is None or not recover else fell + 1) + 30)
            sim_clip = sim_clip.slice(0, min(sim_clip.num_frames, stop))  # up to 1 s after a failure
            render_clips([ref.clip.slice(0, stop), sim_clip], vpath, labels=["reference", "simulated"],
                         show_progress=False)
            result["worst_clip_video"] = str(vpath)
        except Exception as e:  # rendering needs an OpenGL backend; metrics do not
            result["worst_clip_video"] = f"not rendered: {e}"
        result["worst_clip"] = name
    if out_dir is not None:
        from ..motion.clip import ClipFolder
        from ..motion.export import export_bvh

        clips = ClipFolder(out_dir / "clips", create=True)
        for name, tr in tracked.items():
            clips.add(tr.clip, write_index=False)
            export_bvh(tr.clip, out_dir / "bvh" / f"{name}.bvh")
        clips.write_index()
        result["simulated_motion"] = str(out_dir)
    atomic_write_text(out, json.dumps(result, indent=1, default=float))
    click.echo(json.dumps(result["overall"], indent=1, default=float))


@uhc.command()
@click.option("--motions", required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--seconds", type=click.FloatRange(0, min_open=True), default=10.0, show_default=True,
              help="Duration of each single-process measure.")
@click.option("--ppo-iterations", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default="configs/uhc.yaml",
              show_default=True)
@click.option("--json", "json_out", default="benchmarks/results/uhc_bench.json", show_default=True)
def bench(motions, seconds, ppo_iterations, config_path, json_out) -> None:
    """Bare mj_step rate, env steps/s, PPO samples/s and their ratios, in one run."""
    from ..config import load_config
    from ..motion.clip import ClipError, ClipFolder, atomic_write_text
    from .bench import run_bench
    from .ppo import UHCConfig

    cfg = load_config(UHCConfig, config_path)  # the shipped default also from outside the checkout
    if not len(ClipFolder(motions)):
        raise ClipError(f"{motions}: no clips to track (a clip folder of `kinpoly motion import`)")
    check_output(json_out, option="--json")
    result = run_bench(motions, seconds, ppo_iterations, cfg=cfg)
    result["command"] = f"kinpoly uhc bench --motions {motions} --seconds {seconds} --ppo-iterations {ppo_iterations}"
    atomic_write_text(json_out, json.dumps(result, indent=1))
    click.echo(json.dumps(result, indent=1))


@uhc.command("export")
@click.option("--run", "run_dir", required=True, type=click.Path(exists=True, file_okay=False),
              help="Training run folder (kinpoly uhc train --out).")
@click.option("--checkpoint", default=None,
              help="Checkpoint of the run to ship (default: best.pt, the best training success, or "
                   "last.pt when the run has none: a fine-tune that has not beaten its start's best).")
@click.option("--out", default="checkpoints/uhc", show_default=True)
def export(run_dir, checkpoint, out) -> None:
    """Ship a run: policy weights (+ its config), training curve PNG/CSV, resolved config."""
    import shutil

    import yaml

    from ..errors import InputError
    from ..motion.clip import atomic_write_text
    from ..visualization.plots import plot_curves
    from .policy import ActorCritic, save_policy
    from .ppo import read_run_checkpoint

    run, dst = Path(run_dir), Path(out)
    if checkpoint is None:
        checkpoint = "best.pt" if (run / "best.pt").is_file() else "last.pt"
        click.echo(f"shipping {run / checkpoint}")

    hint = "; give --run a `kinpoly uhc train --out` folder"  # e.g. a shipped policy.pt, already exported
    blob = read_run_checkpoint(run / checkpoint, ("policy", "hidden", "config", "curves", "iteration"), hint)
    last = read_run_checkpoint(run / "last.pt", ("curves",), hint)
    if last["curves"] and not (run / "progress.csv").is_file():
        raise InputError(f"{run}: no progress.csv beside last.pt (not a complete training run folder)")
    check_output(dst, folder=True)  # everything is read and checked before anything is written
    dst.mkdir(parents=True, exist_ok=True)
    model = ActorCritic(blob["hidden"], blob["config"]["ppo"]["log_std"], blob["policy"]["norm.mean"].shape[0])
    model.load_state_dict(blob["policy"])
    # a distilled run not yet fine-tuned by PPO has no PPO curves: its last DAgger round stands in
    rows = blob["curves"] or blob.get("extra", {}).get("distill") or [{}]
    save_policy(model, dst / "policy.pt", extra={"config": blob["config"], "iteration": blob["iteration"],
                                                  "train_success_rate": rows[-1].get("success_rate")})
    atomic_write_text(dst / "config.yaml", yaml.safe_dump(blob["config"], sort_keys=False))
    curves = last["curves"]
    if not curves:
        if (run / "distill.csv").is_file():
            shutil.copyfile(run / "distill.csv", dst / "distill_curve.csv")
        click.echo(f"shipped {run} (distilled, no PPO iterations yet) to {dst}")
        return
    x = np.array([c["samples"] for c in curves], dtype=float)
    def smooth(key, k=20):
        y = np.array([c[key] for c in curves], dtype=float)
        k = max(1, min(k, len(y)))
        return x[k - 1:], np.convolve(y, np.ones(k) / k, mode="valid")

    plot_curves({"training success rate (per iteration)": (x, [c["success_rate"] for c in curves]),
                 "training success rate (20-iteration mean)": smooth("success_rate"),
                 "mean reward per step (20-iteration mean)": smooth("reward")},
                dst / "training_curve.png", title="UHC PPO training", xlabel="samples",
                ylabel="rate / reward")
    shutil.copyfile(run / "progress.csv", dst / "training_curve.csv")
    click.echo(f"shipped iteration {blob['iteration']} of {run} to {dst}")
