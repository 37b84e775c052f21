"""``kinpoly ego ...``: build egocentric takes, inspect them, train the flow encoder, import
real head-camera video."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..errors import Group, check_output
from ..motion.clip import ACTIONS


def _config(path, overrides, seed=None):
    from ..config import load_config
    from .build import EgoConfig

    ov = list(overrides)
    if seed is not None:
        ov.append(f"seed={seed}")
    return load_config(EgoConfig, path, ov)


@click.group(cls=Group)
def ego() -> None:
    """Egocentric data: scenes, head-camera video, features, real-video import."""


@ego.command("build")
@click.option("--motions", required=True, type=click.Path(exists=True, path_type=Path), help="Clip folder.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Take folder to write.")
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="YAML config (default: built-in defaults, as configs/ego.yaml).")
@click.option("--set", "overrides", multiple=True, help="Override a config key, e.g. --set fovy=90.")
@click.option("--seed", type=int, default=None)
@click.option("--save-video", is_flag=True, help="Also write each take's head-camera MP4.")
@click.option("--workers", "-j", type=int, default=None, help="Processes (default: all cores).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N clips.")
@click.option("--clip", "clips", multiple=True, help="Only these clips (repeatable).")
@click.option("--no-progress", is_flag=True)
def build_command(motions, out, config_path, overrides, seed, save_video, workers, limit, clips, no_progress):
    """Build egocentric takes from a clip folder (resumable; failures are listed, not fatal)."""
    from .build import build_dataset

    cfg = _config(config_path, overrides, seed)
    if cfg.features:
        from .flow import DEFAULT_ENCODER

        enc = Path(cfg.encoder) if cfg.encoder else DEFAULT_ENCODER
        if not enc.is_file():
            click.echo(f"note: no flow encoder at {enc}: building without image features", err=True)
            cfg.features = False
    rep = build_dataset(motions, out, cfg, workers=workers, save_video=save_video,
                        progress=not no_progress, limit=limit, clips=list(clips) or None)
    t = rep["timing_s"]
    click.echo(f"{rep['takes']} take(s), {rep['frames']} frames in {out} ({rep['new_takes']} new, "
               f"{rep['reused_takes']} kept); {rep['wall_s']} s wall, {rep['frames_per_s']} frames/s "
               f"on {rep['workers']} worker(s); worker time: scene {t['scene']} s, render {t['render']} s, "
               f"flow {t['flow']} s, encode {t['encode']} s")
    if rep["failures"]:
        click.echo(f"{len(rep['failures'])} failure(s):", err=True)
        for f in rep["failures"]:
            click.echo(f"  {f['take']}: {f['error']}", err=True)
    if not rep["takes"]:
        sys.exit(1)


@ego.command("scenes")
@click.option("--motions", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Clip folder (kinpoly motion import).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Clip folder to write.")
def scenes_command(motions, out):
    """Copy a clip folder, each clip with an action label placed in the scene its action
    interacts with (the objects of `ego build`, without distractors), so that the tracking
    controller trains and is evaluated on climbs, sits and steps with something to stand on
    (`kinpoly uhc train|eval --motions OUT`). Clips without a label are copied as they are."""
    from ..motion.clip import ClipError, ClipFolder, atomic_write_text
    from .scenes import clip_in_scene

    src = ClipFolder(motions)
    if not len(src):
        raise ClipError(f"{motions}: no clips to place in scenes (a clip folder of `kinpoly motion import`)")
    check_output(out, folder=True)
    dst = ClipFolder(out, create=True)
    reports = []
    for name in src:
        clip, rep = clip_in_scene(src.load(name))
        dst.add(clip, write_index=False)
        if clip.action is not None:
            reports.append(rep)
            click.echo(f"{name} ({clip.action}): {', '.join(rep['objects']) or 'no objects: ' + rep['note']}")
    dst.write_index()
    atomic_write_text(Path(out) / "scenes.json", json.dumps(reports, indent=1, default=float))
    click.echo(f"{len(dst)} clip(s) -> {out}; {sum(bool(r['objects']) for r in reports)} of "
               f"{len(reports)} labelled clip(s) in a scene (scenes.json)")


@ego.command("info")
@click.argument("folder", type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def info_command(folder, as_json):
    """Counts of a take folder: takes, frames, per action, split, failures."""
    from .take import EgoDataError, dataset_info

    try:
        info = dataset_info(folder)
    except EgoDataError as e:
        raise click.ClickException(str(e)) from None
    info.pop("info", None)
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    click.echo(f"{folder}: {info['takes']} takes, {info['frames']} frames, split {info['split']}, "
               f"{info['failures']} failure(s)")
    for a, c in sorted(info["per_action"].items()):
        click.echo(f"  {a:<11} {c['takes']:>4} takes {c['frames']:>7} frames")


@ego.command("train-flow")
@click.argument("folder", type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=Path("checkpoints/flow_encoder"), show_default=True)
@click.option("--epochs", type=int, default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=None, help="torch threads")
def train_flow_command(folder, out, epochs, seed, threads):
    """Train the flow encoder on a take folder built with --set save_flow=true (train split),
    report its head-velocity error on the test split against predicting zero velocity."""
    import numpy as np
    import torch

    from ..motion.clip import atomic_write_text
    from .flow import TrainConfig, train_flow_encoder
    from .take import read_manifest

    if threads:
        torch.set_num_threads(threads)
    m = read_manifest(folder)
    empty = [split for split in ("train", "test") if not m["split"].get(split)]
    if empty:
        raise click.ClickException(f"{folder}: no {' and no '.join(empty)} takes to train the flow encoder on "
                                   f"(its manifest's split)")
    data = {"train": ([], []), "test": ([], [])}
    for split in ("train", "test"):
        for name in m["split"].get(split, []):
            with np.load(folder / "takes" / f"{name}.npz") as z:
                if "flow" not in z.files:
                    raise click.ClickException(f"{folder}: take {name} has no flows; build with --set save_flow=true")
                data[split][0].append(z["flow"].astype(np.float32))
                data[split][1].append(z["head_local_vels"].astype(np.float64))
    tr = [np.concatenate(x) for x in data["train"]]
    te = [np.concatenate(x) for x in data["test"]]
    click.echo(f"train {len(tr[0])} frame pairs, test {len(te[0])}")
    metrics = train_flow_encoder(tr[0], tr[1], te[0], te[1], out, TrainConfig(epochs=epochs, seed=seed),
                                 log=click.echo)
    metrics["command"] = " ".join(["kinpoly", "ego", "train-flow"] + sys.argv[3:])
    metrics["data"] = {"folder": str(folder), "train_takes": m["split"].get("train", []),
                       "test_takes": m["split"].get("test", [])}
    atomic_write_text(Path(out) / "metrics.json", json.dumps(metrics, indent=1))
    t = metrics["test"]
    click.echo(f"test head velocity error: linear {t['linear_mps']:.3f} m/s (zero: {t['zero_linear_mps']:.3f}), "
               f"angular {t['angular_radps']:.3f} rad/s (zero: {t['zero_angular_radps']:.3f})")


@ego.command("features")
@click.argument("folder", type=click.Path(exists=True, path_type=Path))
@click.option("--encoder", type=click.Path(path_type=Path), default=None)
def features_command(folder, encoder):
    """(Re)compute image features of a take folder from its stored flows (and refresh the
    head velocities and object features derived from the head trajectory)."""
    import numpy as np

    from .flow import flows_per_frame, load_encoder
    from .take import EgoTake, read_manifest

    enc = load_encoder(encoder)
    m = read_manifest(folder)
    for e in m["takes"]:  # every take has its flows, or none is rewritten
        if "flow" not in EgoTake.load(folder / e["file"]).extras:
            raise click.ClickException(f"{folder / e['file']}: no stored flows (build with --set save_flow=true)")
    for e in m["takes"]:
        path = folder / e["file"]
        take = EgoTake.load(path)
        from .features import head_velocities, objects_relative_to_head

        take.image_features, _ = enc.encode(flows_per_frame(take.extras["flow"].astype(np.float32)))
        take.head_vels = head_velocities(take.head_pose, take.fps)
        if take.object_world is not None:
            take.object_poses = objects_relative_to_head(take.head_pose, take.object_world)
        take.meta["encoder"] = enc.path
        take.save(path)
        e["image_features"] = int(take.image_features.shape[1])
    from .take import write_manifest

    write_manifest(folder, m["takes"], m["split"], m.get("failures", []), m.get("info", {}))
    click.echo(f"features for {len(m['takes'])} take(s) with {enc.path}")


# --objects of every command that reads a recording (imports, estimate, stream)
objects_option = click.option(
    "--objects", "objects_file", type=click.Path(path_type=Path), default=None,
    help="Scene objects in the head poses' world (YAML/JSON: kind, pos, quat, size; or a track of a "
         "moving one; format in kinpoly/egocentric/objects.py).")


class _NumberOrAuto(click.ParamType):
    """A number (``what``: "a number of seconds", "degrees"), or "auto"; ``between``: the open
    interval it must lie in."""

    def __init__(self, name: str, what: str, between: tuple[float, float] | None = None):
        self.name, self.what, self.between = name, what, between

    def convert(self, value, param, ctx):
        if value == "auto" or isinstance(value, (int, float)):
            return value
        try:
            number = float(value)
        except ValueError:
            self.fail(f"{value!r} is neither {self.what} nor auto", param, ctx)
        if self.between and not self.between[0] < number < self.between[1]:
            self.fail(f"{number:g}: expected {self.what} between {self.between[0]:g} and {self.between[1]:g}",
                      param, ctx)
        return number


# --time-offset of the commands that read a head-camera video and its trajectory (import-video, estimate)
time_offset_option = click.option(
    "--time-offset", type=_NumberOrAuto("SECONDS|auto", "a number of seconds"), default=None,
    help="Trajectory time of the first frame minus its first pose time (s), for a trajectory with "
         "timestamps (default: the frames' capture times when their file names hold them in the "
         "trajectory's clock, as Project Aria's do; else 0); auto: the offset, within 1 s of that, at "
         "which the video's head turns follow the trajectory's.")


# --video-rotation of the commands that read a head-camera video (import-video, estimate)
video_rotation_option = click.option(
    "--video-rotation", type=click.Choice(["auto", "0", "90", "180", "270"]), default="auto", show_default=True,
    help="Degrees clockwise that turn the stored frames upright (Project Aria's RGB camera: 90); auto: the "
         "rotation whose optical flow turns the way the trajectory's head does.")


# --video-fovy of the commands that read a head-camera video (import-video, estimate)
video_fovy_option = click.option(
    "--video-fovy", type=_NumberOrAuto("DEGREES|auto", "degrees", (0.0, 180.0)), default=None,
    help="Vertical field of view of a pinhole video (degrees; default: the encoder's 100); auto: the one its "
         "flow and the trajectory's head turns give (a phone: about 70). A fisheye: --video-lens.")


# --video-lens of the commands that read a head-camera video (import-video, estimate, stream)
video_lens_option = click.option(
    "--video-lens", default=None, metavar="FILE|fisheye:DEGREES",
    help="The video camera's lens when it is not a plain pinhole: a calibration file (Project Aria device "
         "calibration JSON or MPS online_calibration.jsonl, camera-rgb unless FILE#LABEL names another; or "
         "YAML/JSON: model, fx, cx, cy, distortion, width, height), or fisheye:DEGREES for an equidistant "
         "fisheye with that field of view across the frame's shorter side. Each frame is resampled as the "
         "flow encoder's 100-degree pinhole camera would see it.")


@ego.command("import-video")
@click.argument("video", type=click.Path(path_type=Path))
@click.option("--head-poses", default=None, type=click.Path(path_type=Path),
              help="Camera trajectory (default: reconstructed from the video's frames into "
                   "OUT/reconstruction/NAME, with pycolmap: pip install 'kinpoly[reconstruct]'): .npy (T,7 "
                   "tx ty tz qx qy qz qw, camera-to-world, OpenCV axes: DROID-SLAM), TUM .txt, Aria MPS/ADT .csv, or csv/npz (time, position, quaternion); "
                   "COLMAP images.txt/.bin or nerfstudio transforms.json (a pose per image of the video's "
                   "frames); or a folder holding one (an Aria MPS output folder, a COLMAP sparse model).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Take folder to write into.")
@click.option("--name", default=None, help="Take name (default: the video's file name).")
@click.option("--format", "fmt", type=click.Choice(["auto", "tum", "aria", "csv", "npz", "colmap", "nerfstudio"]),
              default="auto", show_default=True)
@click.option("--fps", type=float, default=None,
              help="Frame rate of a folder of frames (required unless their names hold capture times), or the "
                   "one a video must have (checked).")
@click.option("--scale", type=float, default=None, help="Metric scale of the trajectory (default: estimated).")
@click.option("--eye-height", type=float, default=1.6, show_default=True, help="Eye height in the first frame (m).")
@click.option("--body-height", type=float, default=None,
              help="Wearer's standing height (m) for the gait-based scale estimate (default: eye height / 0.936).")
@time_offset_option
@video_fovy_option
@video_rotation_option
@video_lens_option
@click.option("--world-to-camera", is_flag=True,
              help="The poses are world-to-camera: invert them (the import warns when a file looks inverted).")
@click.option("--action", type=click.Choice(ACTIONS), default=None)
@click.option("--encoder", type=click.Path(path_type=Path), default=None)
@objects_option
@click.option("--gt", "gt_file", type=click.Path(path_type=Path), default=None,
              help="Ground-truth motion for evaluation (any `kinpoly motion import` file, e.g. the "
                   "EgoEgo pickle or an ADT skeleton): the same frames, or paired by capture time when both "
                   "know it; aligned to the take by yaw + translation.")
def import_video_command(video, head_poses, out, name, fmt, fps, scale, eye_height, body_height, time_offset,
                         video_fovy, video_rotation, video_lens, world_to_camera, action, encoder, objects_file,
                         gt_file):
    """Turn a head-camera VIDEO (a file, a Project Aria .vrs recording, or a folder or quoted
    pattern of its frames as image files: 'frames/rgb_*.jpg') and its camera trajectory (or,
    without one, a reconstruction from its frames) into an egocentric take. Frames whose file
    names hold their capture times (Project Aria's tools name them so) need no --fps and are
    paired with the trajectory by those times."""
    from .take import EgoDataError
    from .video import import_video, video_name

    check_output(out, folder=True)  # before the import's work, not after
    try:
        res = import_video(video, head_poses, name=name, fmt=fmt, fps=fps, scale=scale,
                           reconstruction=out / "reconstruction" / (name or video_name(Path(video))),
                           eye_height=eye_height, body_height=body_height, time_offset=time_offset,
                           video_fovy=video_fovy, world_to_camera=world_to_camera, action=action,
                           video_rotation=rotation_choice(video_rotation), video_lens=video_lens,
                           encoder=str(encoder) if encoder else None, objects=objects_file)
    except EgoDataError as e:
        raise click.ClickException(str(e)) from None
    _write_imported_take(res, out, gt_file)


def rotation_choice(choice: str) -> int | str:
    """``--video-rotation``'s value as ``import_video`` takes it."""
    return choice if choice == "auto" else int(choice)


@ego.command("import-trajectory")
@click.argument("head_poses", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Take folder to write into.")
@click.option("--name", default=None, help="Take name (default: the trajectory's file name).")
@click.option("--format", "fmt", type=click.Choice(["auto", "tum", "aria", "csv", "npz"]), default="auto", show_default=True)
@click.option("--fps", type=float, default=30.0, show_default=True,
              help="Poses per second of a trajectory without timestamps (the take is made at 30 Hz).")
@click.option("--scale", type=float, default=None,
              help="Metric scale of the trajectory (default: metric formats as they are, others by gait).")
@click.option("--eye-height", type=float, default=1.6, show_default=True, help="Eye height in the first frame (m).")
@click.option("--body-height", type=float, default=None,
              help="Wearer's standing height (m) for the gait-based scale estimate (default: eye height / 0.936).")
@click.option("--time-offset", type=float, default=0.0, help="Start this many seconds after the first pose.")
@click.option("--world-to-camera", is_flag=True,
              help="The poses are world-to-camera: invert them (the import warns when a file looks inverted).")
@click.option("--action", type=click.Choice(ACTIONS), default=None)
@objects_option
@click.option("--gt", "gt_file", type=click.Path(path_type=Path), default=None,
              help="Ground-truth motion for evaluation (any `kinpoly motion import` file), same frames at "
                   "30 Hz; aligned to the take by yaw + translation.")
def import_trajectory_command(head_poses, out, name, fmt, fps, scale, eye_height, body_height, time_offset,
                              world_to_camera, action, objects_file, gt_file):
    """Turn a head trajectory alone (a headset's pose, no video) into an egocentric take without
    image features, for the head-trajectory-only policy (`kinpoly estimate --take OUT`)."""
    from .take import EgoDataError
    from .video import import_trajectory

    check_output(out, folder=True)  # before the import's work, not after
    try:
        res = import_trajectory(head_poses, name=name, fmt=fmt, fps=fps, scale=scale, eye_height=eye_height,
                                body_height=body_height, time_offset=time_offset,
                                world_to_camera=world_to_camera, action=action, objects=objects_file)
    except EgoDataError as e:
        raise click.ClickException(str(e)) from None
    _write_imported_take(res, out, gt_file)


def _write_imported_take(res, out: Path, gt_file: Path | None) -> None:
    """Attach the ground truth (if any) to an imported take, add it to the take folder ``out``
    (test split) and print its report."""
    from .take import EgoDataError, read_manifest, write_manifest

    take = res.take
    if gt_file is not None:
        from ..motion.importers import import_file
        from ..motion.source import MotionFormatError
        from .video import attach_ground_truth

        try:
            gt = import_file(gt_file)[0]
            res.report["ground_truth"] = attach_ground_truth(take, gt)
        except (MotionFormatError, EgoDataError, ValueError) as e:
            raise click.ClickException(str(e)) from None
        res.report["ground_truth"].pop("body", None)
    try:
        m = read_manifest(out)
    except EgoDataError:
        m = {"takes": [], "split": {"train": [], "test": []}, "failures": [], "info": {}}
    takes = [t for t in m["takes"] if t["name"] != take.name] + [take.summary(file=f"takes/{take.name}.npz")]
    split = {k: [n for n in v if n != take.name] for k, v in m.get("split", {}).items()}
    split.setdefault("test", []).append(take.name)
    (out / "takes").mkdir(parents=True, exist_ok=True)
    take.save(out / "takes" / f"{take.name}.npz")
    write_manifest(out, takes, split, m.get("failures", []), m.get("info", {}))
    r = res.report
    click.echo(f"{take.name}: {take.num_frames} frames at {r['fps']:.2f} fps -> {out}; scale {r['scale']:.4f} "
               f"({r['scale_source']})")
    click.echo(json.dumps(r, indent=1, default=float))
