"""``kinpoly motion ...``: import, inspect and export motion clips."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from ..errors import Group, InputError, check_output
from ..humanoid.skeleton import BodyShape
from .clip import ClipError, ClipFolder, resolve_clip


@click.group(cls=Group)
def motion() -> None:
    """Import mocap into humanoid clips, inspect clip folders, export clips."""


@motion.command("import")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Clip folder to write.")
@click.option("--body", type=click.Choice(["fit", "default"]), default="fit", show_default=True,
              help="fit: fit the humanoid's segments to each source skeleton; default: one body, "
                   "source scaled to it.")
@click.option("--height", type=float, default=1.75, show_default=True, help="Body height for --body default (m).")
@click.option("--smpl-model", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Your own SMPL model file (.npz/.pkl): AMASS clips get the body of their betas; "
                   "with --betas, other sources are retargeted onto that body.")
@click.option("--betas", type=str, default=None, help="Comma-separated SMPL betas for --smpl-model.")
@click.option("--up-axis", type=click.Choice(["y", "z"]), default=None,
              help="World up axis of BVH / AMC / joint-position .npy files (default: Y, their convention; "
                   "z for a Z-up export).")
@click.option("--units", type=click.Choice(["m", "dm", "cm", "mm", "in", "ft", "cmu"]), default=None,
              help="Length unit of BVH files (default: guessed from the skeleton's size; dm: "
                   "decimetres; cmu: the CMU database's BVH conversions, 1/0.45 inch).")
@click.option("--amc-fps", type=click.FloatRange(1, 1000), default=None,
              help="Frame rate of AMC files, which they do not store (default: 120, the CMU database's).")
@click.option("--npy-fps", type=click.FloatRange(1, 1000), default=None,
              help="Frame rate of joint-position .npy files (HumanML3D, MDM, T2M-GPT: SMPL-order joints), "
                   "which they do not store (default: 20, HumanML3D's).")
@click.option("--workers", "-j", type=int, default=None, help="Processes (default: all cores).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def import_command(inputs, out_dir, body, height, smpl_model, betas, up_axis, units, amc_fps, npy_fps, workers,
                   no_progress) -> None:
    """Import mocap files or folders (BVH, ASF/AMC, DeepMimic, AMASS npz, Kin-Poly pickles,
    joint-position .npy of text-to-motion models).

    Bad files are skipped and listed at the end; the exit code is non-zero only if nothing
    was imported.
    """
    from .importers import FLOAT_WARNING_M, find_motion_files, import_many

    files = find_motion_files(list(inputs))
    if not files:
        raise click.ClickException("no motion files found in " + ", ".join(map(str, inputs)))
    shape = "fit" if body == "fit" else BodyShape(height=height)
    if smpl_model is not None and betas is not None:
        from ..humanoid.smpl_body import body_from_smpl

        try:
            shape = body_from_smpl(smpl_model, [float(b) for b in betas.split(",")])
        except ValueError as e:
            raise click.ClickException(str(e)) from None
    t0 = time.perf_counter()
    report = import_many(files, out_dir, body=shape, workers=workers, progress=not no_progress,
                         smpl_model=smpl_model, up_axis=up_axis, units=units, amc_fps=amc_fps,
                         npy_fps=npy_fps)
    dt = time.perf_counter() - t0
    seconds = sum(c["seconds"] for c in report.imported)
    click.echo(f"imported {len(report.imported)} clip(s), {seconds:.1f} s of motion, from "
               f"{len(files) - len(report.failed)}/{len(files)} file(s) in {dt:.1f} s -> {out_dir}")
    lying = [c["name"] for c in report.imported if c["upright"] < 0.2]
    if lying:
        hint = "" if up_axis else " (a whole folder of them: files exported Z up? pass --up-axis z)"
        click.echo(f"{len(lying)} clip(s) keep the head above the pelvis in under 20% of their frames, "
                   f"as crawls and lying motions do{hint}: {', '.join(lying[:10])}"
                   + (" ..." if len(lying) > 10 else ""), err=True)
    afloat = sorted((c for c in report.imported if c["upright"] >= 0.2 and c["feet_above_floor_m"] > FLOAT_WARNING_M),
                    key=lambda c: -c["feet_above_floor_m"])
    if afloat:
        click.echo(f"{len(afloat)} clip(s) keep their feet more than {FLOAT_WARNING_M * 100:.0f} cm above the floor "
                   f"on 90% of their frames (a foot dipping lower on some frame set the floor, or the motion "
                   f"stands on steps or objects the clip does not hold); a simulated body following them "
                   f"is held up by the residual force: "
                   + ", ".join(f"{c['name']} ({c['feet_above_floor_m'] * 100:.1f} cm)" for c in afloat[:10])
                   + (" ..." if len(afloat) > 10 else ""), err=True)
    jumped = [c["name"] for c in report.imported if c["dropped_leading_frames"]]
    if jumped:
        click.echo(f"{len(jumped)} clip(s) start with a pose the motion jumps out of (a T-pose frame, as "
                   f"in CMU BVH conversions), left out: {', '.join(jumped[:10])}"
                   + (" ..." if len(jumped) > 10 else ""), err=True)
    if report.failed:
        click.echo(f"{len(report.failed)} file(s) failed:", err=True)
        for f in report.failed:
            click.echo(f"  {f['error']}", err=True)
    if not report.imported:
        sys.exit(1)


@motion.command("info")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option("--clips", "list_clips", is_flag=True, help="Also list every clip.")
def info_command(folder, as_json, list_clips) -> None:
    """Summarise a clip folder: clips, frames, seconds, retargeting error, actions."""
    f = ClipFolder(folder)
    if not len(f):
        raise ClipError(_no_clips_message(folder))
    summary = f.summary()
    if list_clips:
        summary["clip_list"] = f.entries()
    if as_json:
        click.echo(json.dumps(summary, indent=1))
        return
    click.echo(f"{folder}: {summary['clips']} clips, {summary['frames']} frames, {summary['seconds']:.1f} s")
    click.echo(f"  retargeting error: mean {summary['mean_retarget_error_mm']} mm (per-clip mean), "
               f"worst clip {summary['max_retarget_error_mm']} mm, worst joint {summary['max_joint_retarget_error_mm']} mm")
    click.echo("  actions: " + ", ".join(f"{k} {v}" for k, v in sorted(summary["per_action"].items())))
    if list_clips:
        for e in f.entries():
            click.echo(f"  {e['name']:40s} {e['frames']:6d} fr  {e.get('action') or '-':10s} "
                       f"{e.get('retarget_error_mm')} mm")


def _no_clips_message(folder: Path) -> str:
    """Why ``folder`` has no clips, on one line: mocap files to import first, or what a clip
    folder is and which command makes one."""
    from .importers import find_motion_files

    raw = find_motion_files([folder])
    if raw:
        names = ", ".join(str(p.relative_to(folder)) for p in raw[:3]) + (" ..." if len(raw) > 3 else "")
        return (f"{folder}: no clips, but {len(raw)} mocap file(s) ({names}); import "
                f"them first: `kinpoly motion import {folder} --out CLIPS`, then `kinpoly motion info CLIPS`")
    return (f"{folder}: no clips (a clip folder holds the clip .npz files and index.json that "
            f"`kinpoly motion import MOCAP --out {folder}` writes)")


EXPORT_SUFFIX = {"bvh": "bvh", "npz": "npz", "amass": "npz"}


@motion.command("export")
@click.argument("clip")
@click.option("--format", "fmt", type=click.Choice(list(EXPORT_SUFFIX)), default=None,
              help="bvh; npz (body poses); amass (SMPL parameters in AMASS's npz layout). "
                   "Default: the extension of --out, else bvh.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output file (default: <clip name>.<bvh|npz> in the current folder).")
def export_command(clip, fmt, out) -> None:
    """Export a clip as BVH (Y up, cm; opens in Blender), as a plain npz of body poses, or as
    SMPL parameters (AMASS npz: poses, trans, mocap_framerate) for SMPL-based tools."""
    from .export import export_amass, export_bvh, export_npz

    c = resolve_clip(clip)
    suffix = out.suffix.lower().lstrip(".") if out is not None else ""
    fmt = fmt or (suffix if suffix in EXPORT_SUFFIX else "bvh")
    ext = EXPORT_SUFFIX[fmt]
    out = out or Path(f"{c.name}.{ext}")
    check_output(out)
    if out.suffix.lower() != f".{ext}":
        other = f", or pass --format {suffix}" if suffix in EXPORT_SUFFIX else ""
        raise InputError(f"{out}: --format {fmt} writes a .{ext} file; end the name in .{ext}{other}")
    if out.exists() and any(p.exists() and out.samefile(p) for p in (Path(clip), Path(f"{clip}.npz"))):
        raise InputError(f"{out}: that is the clip being exported; give --out another file")
    path = {"bvh": export_bvh, "npz": export_npz, "amass": export_amass}[fmt](c, out)
    click.echo(str(path))


@motion.command("mirror")
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Clip folder to write.")
@click.option("--keep", is_flag=True, help="Also copy the original clips, so OUT holds both.")
def mirror_command(source, out_dir, keep) -> None:
    """Left-right mirror a clip file or every clip of a folder into OUT as <name>_mirror.

    Mirroring is exact (a reflection of every body, see kinpoly.motion.augment) and doubles the
    motion a controller or policy trains on. Keep held-out clips' mirrors out of training.
    """
    from .augment import mirror_clip
    from .clip import load_clips

    clips = load_clips(source)
    if not clips:
        raise ClipError(f"{source}: no clips to mirror (give a clip .npz or a clip folder of "
                        f"`kinpoly motion import`)")
    check_output(out_dir, folder=True)
    folder = ClipFolder(out_dir, create=True)
    for c in clips:
        if keep:
            folder.add(c, write_index=False)
        folder.add(mirror_clip(c), write_index=False)
    folder.write_index()
    click.echo(f"mirrored {len(clips)} clip(s) -> {out_dir} ({len(folder)} clips)")
