"""``kinpoly eval``: score predicted clips against ground truth and write the reports.

``kinpoly eval --pred PATH --gt PATH --json OUT [--md OUT] [--plots DIR] [--trim]`` matches the
clips of the two sides by name and scores each pair with
:func:`~kinpoly.evaluation.metrics.score_clip`; ``--gt PATH`` alone scores the ground truth's
own physical plausibility (penetration, skate). Each side is a kinpoly clip folder, a folder of
mocap files or one mocap file of any format ``kinpoly motion import`` reads (see
:mod:`kinpoly.evaluation.inputs`); mocap is imported in memory as that command would (30 Hz,
grounded by its own lowest sole, the humanoid fitted to the file's own skeleton; SMPL
parameters on the default body). Metrics compare the 24 bodies of our humanoid, so a side
whose skeleton differs in size or proportions from the other's is scored with those
differences included: global MPJPE and the translation errors contain them in full,
root-relative MPJPE only through limb lengths and the pelvis-to-joint offsets.

A clip that cannot be scored is listed under ``failures`` with the reason and the others are
still scored; the exit code is non-zero only when no clip could be scored. A clip that was
scored but whose interaction criterion could not be computed (e.g. no object poses) is listed
under ``failures`` too, with its other metrics kept. So are a name found on one side only, a
mocap file that fails to import (with the importer's message) and a clip name two files of one
side both give. Clips of different lengths are a failure (``"cause": "length"``) unless
``--trim``, which scores the frames they share from the start and records both lengths as
``trimmed_from``. Two single files of one clip each are paired whatever their names.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import click
import numpy as np

from ..errors import Command
from ..humanoid.skeleton import BODY_NAMES
from ..motion.clip import ACTIONS, ClipError, ClipFolder, MotionClip, atomic_write_text
from .inputs import ImportedClips, open_clips, pair_single_files
from .metrics import PHYSICAL_KEYS, POSE_KEYS, LengthMismatch, joint_errors, score_clip, score_physical

log = logging.getLogger(__name__)

# Column labels of the tables, in report order.
LABELS = {
    "mpjpe_mm": "MPJPE (mm)", "mpjpe_global_mm": "global MPJPE (mm)",
    "root_rot_err": "root rot. err", "root_trans_err_m": "root trans. err (m)",
    "head_rot_err": "head rot. err", "head_trans_err_m": "head trans. err (m)",
    "accel_error": "accel. err (mm/fr^2)", "velocity_error": "vel. err (mm/fr)",
    "skate_mm": "skate (mm/fr)", "penetration_mm": "penetration (mm)",
    "success_rate": "success (no fall)",
    "gt_skate_mm": "GT skate (mm/fr)", "gt_penetration_mm": "GT penetration (mm)",
}
WORST_CLIPS = 3


def _mean(values) -> float | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def summarise(clips: dict[str, dict], failures: list[dict]) -> dict:
    """Overall numbers (means over scored clips) plus the per-clip dicts and the failures."""
    rows = list(clips.values())
    out: dict = {k: _mean(r.get(k) for r in rows) for k in POSE_KEYS + PHYSICAL_KEYS}
    out["success_rate"] = _mean(float(r["success"]) for r in rows if "success" in r)
    inter = {}
    for action in ACTIONS:
        vals = [float(r["interaction_success"]) for r in rows
                if r.get("action") == action and r.get("interaction_success") is not None]
        if vals:
            inter[action] = float(np.mean(vals))
    out["interaction_success"] = inter
    out["gt_skate_mm"] = _mean(r.get("gt_skate_mm") for r in rows)
    out["gt_penetration_mm"] = _mean(r.get("gt_penetration_mm") for r in rows)
    out["num_clips"] = len(rows)
    out["clips"] = clips
    out["failures"] = failures
    return out


def _json_safe(x):
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


def _table(header: list[str], rows: list[list]) -> str:
    cells = [header] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(r) for r in cells[1:]])


def overall_table(summary: dict) -> str:
    rows = [[LABELS[k], summary[k]] for k in LABELS if summary.get(k) is not None]
    rows += [[f"interaction: {a}", v] for a, v in summary["interaction_success"].items()]
    rows.append(["clips scored", summary["num_clips"]])
    rows.append(["failures", len(summary["failures"])])
    return _table(["metric", "value"], rows)


def markdown_report(summary: dict) -> str:
    keys = [k for k in POSE_KEYS + PHYSICAL_KEYS
            if any(c.get(k) is not None for c in summary["clips"].values())]
    per_clip = [[name, c.get("action"), c.get("frames")] + [c.get(k) for k in keys]
                + [c.get("success"), c.get("interaction_success")]
                for name, c in summary["clips"].items()]
    parts = ["# Evaluation", "", "## Overall", "", overall_table(summary), "",
             "## Per clip", "",
             _table(["clip", "action", "frames"] + [LABELS[k] for k in keys] + ["no fall", "interaction"],
                    per_clip)]
    if summary["failures"]:
        parts += ["", "## Failures", ""] + [f"- `{f['clip']}`: {f['reason']}" for f in summary["failures"]]
    return "\n".join(parts) + "\n"


def write_plots(summary: dict, pred, gt, out: Path) -> list[Path]:
    """Per-joint error bars, error over time of the worst clips, success per action."""
    from ..visualization import plots

    out.mkdir(parents=True, exist_ok=True)
    clips = summary["clips"]
    written = []
    scored = {n: c for n, c in clips.items() if c.get("per_joint_mpjpe_mm")}
    if scored:
        per_joint = {j: [c["per_joint_mpjpe_mm"][j] for c in scored.values()] for j in BODY_NAMES}
        plots.plot_per_joint_errors(per_joint, out / "per_joint_error.png")
        written.append(out / "per_joint_error.png")
        worst = sorted(scored, key=lambda n: -scored[n]["mpjpe_mm"])[:WORST_CLIPS]
        curves, fps = {}, {}
        for name in worst:
            p, g = pred.load(name), gt.load(name)
            n = min(p.num_frames, g.num_frames)
            pp, pg = p.body_states().positions[:n], g.body_states().positions[:n]
            curves[name] = {"MPJPE": joint_errors(pp, pg).mean(axis=1),
                            "global MPJPE": joint_errors(pp, pg, root_relative=False).mean(axis=1)}
            fps[name] = p.fps
        plots.plot_error_over_time(curves, fps, out / "worst_clips_error.png")
        written.append(out / "worst_clips_error.png")
    rates = dict(summary["interaction_success"])
    if summary.get("success_rate") is not None:
        rates = {"all (no fall)": summary["success_rate"], **rates}
        counts = {a: sum(1 for c in clips.values() if c.get("action") == a
                         and c.get("interaction_success") is not None) for a in rates}
        counts["all (no fall)"] = len(clips)
        plots.plot_success_per_action(rates, counts, out / "success_per_action.png")
        written.append(out / "success_per_action.png")
    return written


def _load(folder: ClipFolder, name: str, what: str) -> MotionClip:
    try:
        return folder.load(name)
    except ClipError as e:
        raise ClipError(f"{what}: {e}") from None


def evaluate_folders(pred_dir: str | Path | None, gt_dir: str | Path, trim: bool = False) -> dict:
    """Score every clip of ``pred_dir`` against the same-named clip of ``gt_dir`` (or, without
    ``pred_dir``, the ground truth's physical metrics) and return :func:`summarise`'s dict.
    Either may be a clip folder, a folder of mocap files or one mocap file
    (:func:`~kinpoly.evaluation.inputs.open_clips`); ``trim``: see :func:`evaluate`."""
    gt = open_clips(gt_dir, "ground truth")
    pred = open_clips(pred_dir, "prediction") if pred_dir is not None else None
    return evaluate(pred, gt, trim=trim)


def evaluate(pred, gt, trim: bool = False) -> dict:
    """:func:`evaluate_folders` on opened clip sets (a ``ClipFolder`` or ``ImportedClips``).

    ``trim``: a pair whose frame counts differ is scored on the frames both have from the
    start (the row records ``trimmed_from``: both lengths) instead of being a failure.
    """
    clips: dict[str, dict] = {}
    failures: list[dict] = []

    def fail(name: str, reason: str, cause: str | None = None) -> None:
        failures.append({"clip": name, "reason": reason} | ({"cause": cause} if cause else {}))
        log.info("%s: %s", name, reason)

    if (renamed := pair_single_files(pred, gt)) is not None:
        log.info("prediction %s scored against ground truth %s (one file each)", renamed, next(iter(gt)))
    for side in (gt, pred):
        if isinstance(side, ImportedClips):
            for f in side.failures:
                failures.append(f)
                log.info("%s: %s", f["clip"], f["reason"])
    gt_blocked = gt.blocked if isinstance(gt, ImportedClips) else set()
    pred_blocked = pred.blocked if isinstance(pred, ImportedClips) else set()
    if pred is None:
        names = list(gt)
    else:
        names = [n for n in gt if n in pred]
        for n in gt:
            if n not in pred and n not in pred_blocked:
                fail(n, "no prediction for this ground-truth clip")
        for n in pred:
            if n not in gt and n not in gt_blocked:
                fail(n, "no ground-truth clip of this name")
    for name in names:
        try:
            g = _load(gt, name, "ground truth")
            if pred is None:
                clips[name] = score_physical(g)
                continue
            p = _load(pred, name, "prediction")
            trimmed = None
            if trim and p.num_frames != g.num_frames:
                trimmed = {"pred": p.num_frames, "gt": g.num_frames}
                n = min(p.num_frames, g.num_frames)
                p, g = p.slice(0, n), g.slice(0, n)
            row = score_clip(p, g)
            if trimmed:
                row["trimmed_from"] = trimmed
            phys = score_physical(g)
            row["gt_skate_mm"], row["gt_penetration_mm"] = phys["skate_mm"], phys["penetration_mm"]
        except Exception as e:  # one bad clip must not stop the others
            log.debug("scoring %s failed", name, exc_info=True)
            fail(name, str(e) if isinstance(e, ValueError) else f"{type(e).__name__}: {e}",
                 "length" if isinstance(e, LengthMismatch) else None)
            continue
        for problem in row.pop("problems"):
            fail(name, problem)
        clips[name] = row
    return summarise(clips, failures)


@click.command("eval", cls=Command)
@click.option("--pred", "pred_dir", type=click.Path(exists=True),
              help="Predicted motion: a clip folder, a folder of mocap files or one mocap file "
                   "(omit to score the ground truth's physics alone).")
@click.option("--gt", "gt_dir", type=click.Path(exists=True), required=True,
              help="Ground truth, in any form --pred takes; clips are matched to predictions by name.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), required=True,
              help="Write the overall, per-clip and failure results here (JSON).")
@click.option("--md", "md_out", type=click.Path(dir_okay=False), help="Also write a Markdown report.")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False), help="Also write PNG plots here.")
@click.option("--trim", is_flag=True,
              help="Score clips of different lengths on the frames both have from the start "
                   "(default: such a clip is a failure).")
def eval_command(pred_dir, gt_dir, json_out, md_out, plots_dir, trim) -> None:
    """Score predicted motion against ground truth with the metrics of the Kin-Poly paper.

    --pred and --gt each take a kinpoly clip folder (as `kinpoly motion import` writes), a
    folder of mocap files or one mocap file, in any format `kinpoly motion import` reads (BVH,
    ASF/AMC, DeepMimic, AMASS/SMPL .npz, Kin-Poly/EgoEgo pickles, kinpoly clip .npz). Mocap is
    imported in memory as that command would: resampled to 30 Hz, its lowest sole put on the
    floor (so a constant height offset of a whole clip is not scored), and retargeted to a
    humanoid fitted to the file's own skeleton (SMPL parameters: the default 1.75 m body).
    Clips are matched by name (a file's stem); two single files of one clip each are paired
    whatever their names.

    Positions are compared on our 24-body skeleton, each side on its own body. Where the
    method's skeleton differs in size or proportions from the ground truth's, global MPJPE
    and the root/head translation errors include that difference in full; root-relative
    MPJPE is less sensitive to it (the pelvis is aligned) but still counts differing limb
    lengths; rotation errors do not depend on body size.

    A name on one side only, a file that fails to import (with the importer's message) and a
    pair of different lengths (unless --trim) are listed as failures; the others are still
    scored. The exit status is non-zero only when no clip could be scored.
    """
    gt = open_clips(gt_dir, "ground truth")
    pred = open_clips(pred_dir, "prediction") if pred_dir is not None else None
    summary = evaluate(pred, gt, trim=trim)
    atomic_write_text(json_out, json.dumps(_json_safe(summary), indent=1))
    if md_out:
        atomic_write_text(md_out, markdown_report(_json_safe(summary)))
    if plots_dir and summary["clips"]:
        write_plots(summary, pred, gt, Path(plots_dir))
    click.echo(overall_table(_json_safe(summary)))
    for name, c in summary["clips"].items():
        if c.get("trimmed_from"):
            t = c["trimmed_from"]
            click.echo(f"trimmed: {name}: prediction {t['pred']} frames, ground truth {t['gt']}; "
                       f"scored the first {c['frames']}", err=True)
    for f in summary["failures"]:
        click.echo(f"failed: {f['clip']}: {f['reason']}", err=True)
    if not trim and any(f.get("cause") == "length" for f in summary["failures"]):
        click.echo("hint: --trim scores clips of different lengths on the frames both have", err=True)
    if not summary["clips"]:
        empty = [f"{opt} {path}" for opt, path, side in (("--gt", gt_dir, gt), ("--pred", pred_dir, pred))
                 if side is not None and len(side) == 0 and not getattr(side, "failures", None)]
        raise click.ClickException("no clip could be scored" + (
            f" ({' and '.join(empty)} {'hold' if len(empty) > 1 else 'holds'} no clips and no motion files)"
            if empty else ""))
