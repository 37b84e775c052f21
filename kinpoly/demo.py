"""``kinpoly demo``: the one command that shows the project working on bundled data.

1. **Egocentric estimation** (the method): the sample takes shipped in
   ``kinpoly/assets/takes`` (head-camera features, head trajectory and objects, made by
   ``kinpoly ego build`` from the bundled CMU clips) go through the shipped kinematic policy
   in the dynamics-regulated loop with the shipped controller (``kinpoly estimate``): the
   estimated motion is simulated in MuJoCo. Outputs under ``OUT/estimate`` (clips, BVH,
   contacts, videos ground truth | estimate | head camera, metrics); the first video is
   copied to ``OUT/demo.mp4``.
2. **A real headset trajectory, no video** (``kinpoly/assets/headset``: Project Aria glasses,
   SLAM head poses of a 7.7 m walk): the head-trajectory-only policy in the same loop
   (``kinpoly estimate --head-poses FILE``); no ground truth, so it is scored by how well the
   simulated eyes follow the camera, restarts, penetration and skate. Outputs under
   ``OUT/headset``.
3. **Controller alone**: the bundled clips tracked by the shipped controller (the physics
   half of the method, on the true motion).

``OUT/metrics.md`` / ``metrics.json`` hold every table, ``config.yaml`` / ``run.json`` the run
record (seed, commit).
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from .config import PACKAGE_DIR, RunDir
from .errors import Command, check_output
from .motion.clip import ClipFolder, MotionClip, atomic_write_text

SAMPLE_CLIPS = PACKAGE_DIR / "assets" / "clips"
SAMPLE_TAKES = PACKAGE_DIR / "assets" / "takes"
SAMPLE_HEADSET = PACKAGE_DIR / "assets" / "headset" / "aria_mps_closed_loop_trajectory.csv"


def sample_clips() -> list[MotionClip]:
    """The bundled sample clips."""
    folder = ClipFolder(SAMPLE_CLIPS)
    return [folder.load(n) for n in folder]


def _table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    head = "| " + " | ".join(title for _, title, _ in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    lines = [head, rule]
    for r in rows:
        cells = []
        for key, _, fmt in columns:
            v = r.get(key)
            cells.append("-" if v is None else (format(v, fmt) if fmt else str(v)))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _estimation_section(out: Path, controller_path: str, no_video: bool) -> tuple[str, dict]:
    """Estimate the bundled takes (see the module docstring); Markdown + the summary."""
    import shutil

    from .egocentric.take import EgoDataset
    from .policy.estimate import SHIPPED_POLICY, Estimator, estimate_takes

    if not SHIPPED_POLICY.is_file():
        return ("## Egocentric estimation\n\nSkipped: no kinematic-policy checkpoint at "
                f"`{SHIPPED_POLICY}`.\n", {})
    ds = EgoDataset(SAMPLE_TAKES)
    est = Estimator(SHIPPED_POLICY, controller_path)
    report = estimate_takes([(n, lambda n=n: ds[n]) for n in ds.names], est, out / "estimate",
                            videos=0 if no_video else len(ds), progress=False)
    rows = []
    residual = report.get("residual", {}).get("takes", {})
    for name, c in report.get("evaluation", {}).get("clips", {}).items():
        rows.append({"take": name, "action": c.get("action") or "-", "frames": c["frames"],
                     "success": c["success"], "interaction": c.get("interaction_success"),
                     "mpjpe_mm": c["mpjpe_mm"], "mpjpe_global_mm": c["mpjpe_global_mm"],
                     "head_err_m": c["head_trans_err_m"], "penetration_mm": c["penetration_mm"],
                     "skate_mm": c["skate_mm"], "gt_penetration_mm": c.get("gt_penetration_mm"),
                     "gt_skate_mm": c.get("gt_skate_mm"),
                     "residual_force_n": residual.get(name, {}).get("force_n")})
    table = _table(rows, [("take", "take", ""), ("action", "action", ""), ("frames", "frames", "d"),
                          ("success", "no fall", ""), ("interaction", "interaction", ""),
                          ("mpjpe_mm", "MPJPE (mm)", ".1f"), ("mpjpe_global_mm", "global MPJPE (mm)", ".1f"),
                          ("head_err_m", "head err (m)", ".3f"), ("penetration_mm", "penetration (mm)", ".2f"),
                          ("skate_mm", "skate (mm/frame)", ".2f"), ("gt_penetration_mm", "GT penetration", ".2f"),
                          ("gt_skate_mm", "GT skate", ".2f"), ("residual_force_n", "residual force (N)", ".0f")])
    md = ("## Egocentric estimation (kinematic policy + controller in MuJoCo)\n\n"
          f"Input: the bundled takes (head-camera features, head trajectory, objects; `{SAMPLE_TAKES.name}`). "
          f"{report['frames']} frames at {report['frames_per_second']:.0f} frames/s on one core. "
          "Outputs in `estimate/` (clips, BVH, contacts, videos: ground truth | estimate | head camera).\n\n"
          + table + "\n")
    videos = sorted((out / "estimate" / "videos").glob("*.mp4")) if not no_video else []
    if videos:
        shutil.copyfile(videos[0], out / "demo.mp4")
        md += f"\nVideo: `{out / 'demo.mp4'}` ({videos[0].stem}); all: `{out / 'estimate' / 'videos'}`\n"
    return md, {"takes": rows, "frames_per_second": report["frames_per_second"],
                "failures": report["failures"], "videos": [str(v) for v in videos]}


def _headset_section(out: Path, controller_path: str, no_video: bool) -> tuple[str, dict]:
    """Estimate the bundled headset trajectory (see the module docstring); Markdown + metrics."""
    from .egocentric.video import import_trajectory
    from .policy.estimate import SHIPPED_HEAD_ONLY_POLICY, Estimator, estimate_takes

    if not SHIPPED_HEAD_ONLY_POLICY.is_file():
        return ("## A real headset trajectory\n\nSkipped: no head-trajectory-only policy at "
                f"`{SHIPPED_HEAD_ONLY_POLICY}`.\n", {})
    take = import_trajectory(SAMPLE_HEADSET, name="aria_walk", action="locomotion").take
    report = estimate_takes([take], Estimator(SHIPPED_HEAD_ONLY_POLICY, controller_path), out / "headset",
                            videos=0 if no_video else 1, progress=False)
    if not report["takes"]:
        return f"## A real headset trajectory\n\nFailed: {report['failures']}\n", report
    m = {**report["without_ground_truth"][take.name], **report.get("residual", {}).get("takes", {}).get(take.name, {})}
    m["frames_per_second"] = report["frames_per_second"]
    live = _live_headset(take, controller_path)
    m["live"] = live
    table = _table([{"take": take.name, **m}, {**live, "take": f"{take.name}, live (2 frames late)"}], [
        ("take", "take", ""), ("frames", "frames", "d"), ("restarts", "restarts", "d"),
        ("observed_head_err_m", "head error (m)", ".3f"), ("penetration_mm", "penetration (mm)", ".2f"),
        ("skate_mm", "skate (mm/frame)", ".2f"), ("force_n", "residual force (N)", ".0f")])
    video = out / "headset" / "videos" / f"{take.name}.mp4"
    md = ("## A real headset trajectory, no video (head-trajectory-only policy + controller in MuJoCo)\n\n"
          "Input: 11.4 s of Project Aria glasses' SLAM head poses (a 7.7 m walk; Apache-2.0, "
          f"`{SAMPLE_HEADSET.parent.name}/`). No ground-truth body: head error is the simulated eyes "
          "against the observed camera; a restart is a lost camera. "
          f"{report['frames_per_second']:.0f} frames/s on one core. The live row pushes the same poses one "
          f"at a time (`kinpoly stream`, `StreamingEstimator`): each frame final two poses after its own, "
          f"{live['ms_per_pose']:.1f} ms per pose.\n\n" + table + "\n"
          + (f"\nVideo: `{video}`\n" if video.is_file() else ""))
    return md, m


def _live_headset(take, controller_path: str) -> dict:
    """The headset take pushed pose by pose through a :class:`StreamingEstimator` (its poses
    are already levelled); the same measures as the offline row, and the time per pose."""
    from .policy.estimate import unscored_metrics
    from .policy.streaming import StreamingEstimator

    stream = StreamingEstimator(controller=controller_path, level=False, action=take.action,
                                max_frames=take.num_frames, name=take.name)
    t0 = time.perf_counter()
    for pose in take.head_pose:
        stream.push(pose[:3], pose[3:])
    stream.close()
    seconds = time.perf_counter() - t0
    est = stream.estimate()
    return {**unscored_metrics(est, take.head_pose), **(est.residual() or {}),
            "ms_per_pose": 1e3 * seconds / take.num_frames}


def _controller_section(checkpoint: Path | None, title: str) -> tuple[str, dict]:
    """Track the bundled clips (their true motion) with ``checkpoint`` (None: the training-free
    controller, run with its checkpoint's settings otherwise); Markdown + the metrics."""
    from .evaluation.metrics import score_physical
    from .simulation.evaluate import load_controller, score, track
    from .simulation.reference import prepare_reference

    cfg, policy = load_controller(checkpoint)
    rows = []
    for clip in sample_clips():
        ref = prepare_reference(clip)
        tracked = track(ref, cfg.env, policy)
        sc = score(tracked, ref)
        sim, gt = score_physical(tracked.clip), score_physical(clip)
        rows.append({"clip": clip.name, "action": clip.action or "-", "frames": clip.num_frames,
                     "success": sc["success"], "mpjpe_global_mm": sc["mpjpe_global_mm"],
                     "mpjpe_mm": sc["mpjpe_mm"], "penetration_mm": sim["penetration_mm"],
                     "skate_mm": sim["skate_mm"], "gt_penetration_mm": gt["penetration_mm"],
                     "gt_skate_mm": gt["skate_mm"], "residual_force_n": sc["residual_force_n"]})
    table = _table(rows, [("clip", "clip", ""), ("action", "action", ""), ("frames", "frames", "d"),
                          ("success", "no fall", ""), ("mpjpe_global_mm", "global MPJPE (mm)", ".1f"),
                          ("mpjpe_mm", "MPJPE (mm)", ".1f"), ("penetration_mm", "penetration (mm)", ".2f"),
                          ("skate_mm", "skate (mm/frame)", ".2f"), ("gt_penetration_mm", "GT penetration", ".2f"),
                          ("gt_skate_mm", "GT skate", ".2f"), ("residual_force_n", "residual force (N)", ".0f")])
    name = f"learned controller (checkpoints/{checkpoint.parent.name})" if checkpoint else "training-free controller"
    md = (f"## {title}\n\nController: {name}. Reference = the retargeted mocap of the same takes; "
          "simulated = the humanoid in MuJoCo following it.\n\n" + table + "\n")
    return md, {"controller": name, "clips": rows}


@click.command("demo", cls=Command)
@click.option("--out", type=click.Path(path_type=Path), default=Path("outputs/demo"), show_default=True,
              help="Folder for the videos, metrics and run record.")
@click.option("--controller", type=click.Choice(["learned", "training-free"]), default="learned",
              show_default=True, help="learned: the shipped checkpoints/uhc/policy.pt (falls back to "
                                      "training-free when it is not there).")
@click.option("--no-video", is_flag=True, help="Skip rendering (metrics only).")
def demo(out: Path, controller: str, no_video: bool) -> None:
    """Estimate body motion from the bundled egocentric takes (physics on) and track the bundled
    clips with the controllers: metrics tables + videos."""
    from .policy.estimate import SHIPPED_CONTROLLER, SHIPPED_MOCAP_CONTROLLER
    from .simulation.evaluate import controller_config

    t0 = time.perf_counter()
    check_output(out, folder=True)
    checkpoint = SHIPPED_CONTROLLER if controller == "learned" and SHIPPED_CONTROLLER.is_file() else None
    run = RunDir(out, controller_config(checkpoint=checkpoint), seed=0)
    est_md, est_metrics = _estimation_section(out, str(checkpoint or ""), no_video)
    headset_md, headset = _headset_section(out, str(checkpoint or ""), no_video)
    ctrl_md, ctrl = _controller_section(checkpoint, "The estimator's controller alone: the true motion tracked in physics")
    report = "# kinpoly demo\n\n" + est_md + "\n" + headset_md + "\n" + ctrl_md
    metrics = {"controller": ctrl["controller"], "estimation": est_metrics, "headset": headset, "clips": ctrl["clips"]}
    if controller == "learned" and SHIPPED_MOCAP_CONTROLLER.is_file():
        # the controller results are about the shipped mocap tracker; the estimator keeps
        # checkpoints/uhc, which does better in the dynamics-regulated loop
        md, metrics["mocap_tracker"] = _controller_section(
            SHIPPED_MOCAP_CONTROLLER, "The shipped mocap tracker (the controller results' checkpoint) on the same clips")
        report += "\n" + md
    metrics["seconds"] = round(time.perf_counter() - t0, 2)
    atomic_write_text(out / "metrics.md", report)
    run.write_metrics(metrics)
    click.echo(report)
    click.echo(f"wrote {out / 'metrics.md'}, {out / 'metrics.json'}"
               + (f", {out / 'demo.mp4'}" if est_metrics.get("videos") else ""))
    clips = sorted((out / "estimate" / "clips").glob("*.npz"))
    if clips and (out / "estimate" / "ground_truth" / clips[0].name).is_file():
        name = clips[0].stem
        click.echo(f"watch an estimate over its ground truth in MuJoCo's viewer (needs a display): kinpoly view "
                   f"{out / 'estimate' / 'clips' / name} --ghost {out / 'estimate' / 'ground_truth' / name}")
