"""``kinpoly demo``: the one command that shows the project working on bundled data.

Runs on the sample clips shipped in ``kinpoly/assets/clips`` (CMU mocap, retargeted): tracks
each clip in MuJoCo with the shipped controller, scores reference and simulation with the
evaluation metrics, renders reference-vs-simulated videos, and writes a metrics table
(Markdown and JSON) plus the run record (config, seed, commit). Estimation from egocentric
input joins here when the kinematic policy lands.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from .config import RunDir
from .motion.clip import ClipFolder, MotionClip, atomic_write_text

SAMPLE_CLIPS = Path(__file__).resolve().parent / "assets" / "clips"
SHIPPED_UHC = Path(__file__).resolve().parents[1] / "checkpoints" / "uhc" / "policy.pt"


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


@click.command("demo")
@click.option("--out", type=click.Path(path_type=Path), default=Path("outputs/demo"), show_default=True,
              help="Folder for the videos, metrics and run record.")
@click.option("--controller", type=click.Choice(["learned", "training-free"]), default="learned",
              show_default=True, help="learned: the shipped checkpoints/uhc/policy.pt (falls back to "
                                      "training-free when it is not there).")
@click.option("--width", type=int, default=320, show_default=True)
@click.option("--height", type=int, default=240, show_default=True)
@click.option("--no-video", is_flag=True, help="Skip rendering (metrics only).")
def demo(out: Path, controller: str, width: int, height: int, no_video: bool) -> None:
    """Track the bundled sample clips in physics: metrics table + reference-vs-simulated videos."""
    from .evaluation.metrics import score_physical
    from .simulation.evaluate import PolicyController, controller_config, score, track
    from .simulation.reference import prepare_reference

    t0 = time.perf_counter()
    checkpoint = SHIPPED_UHC if controller == "learned" and SHIPPED_UHC.is_file() else None
    cfg = controller_config(checkpoint=checkpoint)
    run = RunDir(out, cfg, seed=0)
    policy = None
    if checkpoint is not None:
        from .simulation.policy import load_policy

        policy = PolicyController(load_policy(checkpoint)[0])
    rows, pairs = [], []
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
        pairs.append((ref.clip, tracked.clip))
    table = _table(rows, [("clip", "clip", ""), ("action", "action", ""), ("frames", "frames", "d"),
                          ("success", "no fall", ""), ("mpjpe_global_mm", "global MPJPE (mm)", ".1f"),
                          ("mpjpe_mm", "MPJPE (mm)", ".1f"), ("penetration_mm", "penetration (mm)", ".2f"),
                          ("skate_mm", "skate (mm/frame)", ".2f"), ("gt_penetration_mm", "GT penetration", ".2f"),
                          ("gt_skate_mm", "GT skate", ".2f"), ("residual_force_n", "residual force (N)", ".0f")])
    name = "learned controller (checkpoints/uhc)" if checkpoint else "training-free controller"
    report = (f"# kinpoly demo: bundled sample clips tracked in physics\n\nController: {name}. "
              "Reference = the retargeted mocap; simulated = the humanoid in MuJoCo following it. "
              "Scored by `kinpoly.evaluation.metrics`.\n\n" + table + "\n")
    videos = []
    if not no_video:
        from .visualization.render import render_clips

        for i, (ref_clip, sim_clip) in enumerate(pairs):
            path = out / ("demo.mp4" if i == 0 else f"demo_{ref_clip.name}.mp4")
            stats = render_clips([ref_clip, sim_clip], path, width=width, height=height,
                                 labels=["reference", "simulated"], show_progress=False)
            videos.append(str(path))
            report += f"\nVideo: `{path}` ({ref_clip.name}, {stats.frames} frames)"
        report += "\n"
    atomic_write_text(out / "metrics.md", report)
    metrics = {"controller": name, "clips": rows, "videos": videos,
               "seconds": round(time.perf_counter() - t0, 2)}
    run.write_metrics(metrics)
    click.echo(report)
    click.echo(f"wrote {out / 'metrics.md'}, {out / 'metrics.json'}" + "".join(f", {v}" for v in videos))
