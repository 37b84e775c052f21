"""``kinpoly train ...``: train the kinematic policy."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import click
import numpy as np

from ..config import RunDir, load_config, resolve_path
from ..egocentric.commands import (objects_option, rotation_choice, time_offset_option, video_fovy_option,
                                   video_lens_option, video_rotation_option)
from ..errors import Command, Group, check_output
from ..motion.clip import ACTIONS


@click.group(cls=Group)
def train() -> None:
    """Train the kinematic policy (supervised, then dynamics-regulated), or the controller in the loop."""


@train.command("kinematic")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="YAML config (see configs/kinematic.yaml).")
@click.option("--data", type=click.Path(path_type=Path), default=None, help="Take folder (overrides config).")
@click.option("--init", type=click.Path(path_type=Path), default=None,
              help="Start from this checkpoint's weights when OUT has none (overrides config).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Run folder (overrides config).")
@click.option("--set", "-o", "overrides", multiple=True, help="Override a config key, e.g. --set lr=3e-4.")
@click.option("--no-progress", is_flag=True)
def kinematic_command(config_path, data, init, out, overrides, no_progress) -> None:
    """Supervised training on the egocentric takes' train split; resumes from OUT/checkpoint.pt,
    or starts from --init's weights (a further stage with other settings)."""
    from ..egocentric.take import EgoDataset
    from ..visualization.plots import plot_curves
    from .data import take_tensors
    from .supervised import SupervisedConfig, SupervisedTrainer

    cfg = load_config(SupervisedConfig, config_path, list(overrides))
    cfg.data, cfg.out = str(data or cfg.data), str(out or cfg.out)
    cfg.init = str(init or cfg.init)
    ds = EgoDataset(cfg.data, split="train")
    takes = [take_tensors(t, cfg.use_image_features) for t in ds]
    if not takes:
        raise click.ClickException(f"{cfg.data}: no training takes")
    trainer = SupervisedTrainer(cfg, takes, cfg.out)  # first: a bad --init ends here, before OUT is written
    run = RunDir(cfg.out, cfg, cfg.seed)
    curves = trainer.train(progress=not no_progress)
    it = np.array([c["iteration"] for c in curves])
    plot_curves({k: (it, np.array([c[k] for c in curves])) for k in ("total", "root_pos", "pose", "end_effector")},
                Path(cfg.out) / "training_curve.png", title="kinematic policy (supervised)",
                xlabel="iteration", ylabel="loss", logy=True)
    final = {k: float(np.mean([c[k] for c in curves[-20:]])) for k in curves[-1] if k != "iteration"}
    run.write_metrics({"iterations": len(curves), "final_losses": final})
    click.echo(json.dumps(final, indent=1))


@train.command("loop-controller")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              default="configs/uhc_loop.yaml", show_default=True, help="YAML config.")
@click.option("--out", default="runs/uhc_in_loop", show_default=True, help="Run folder (checkpoints, curves).")
@click.option("--init", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A shipped controller (policy.pt) to start from when OUT has no checkpoint.")
@click.option("-o", "--override", "--set", multiple=True, help="key=value config override, e.g. ppo.iterations=10.")
@click.option("--ray", "ray_address", default=None, help="Run rollout workers on Ray ('local' or an address).")
@click.option("--iterations", type=int, default=None, help="Stop after this many more iterations.")
@click.option("--time-limit", type=float, default=None, help="Stop after this many seconds (checkpoint kept).")
@click.option("--no-progress", is_flag=True)
def loop_controller_command(config_path, out, init, override, ray_address, iterations, time_limit,
                            no_progress) -> None:
    """Train the tracking controller inside the dynamics-regulated loop: PPO on the kinematic
    policy's proposals from the simulated pose (kinpoly/policy/loop_controller.py); resumes
    from OUT/last.pt. Export with `kinpoly uhc export --run OUT`."""
    from .loop_controller import LoopControllerConfig, train_loop_controller

    cfg = load_config(LoopControllerConfig, config_path, list(override))
    curves = train_loop_controller(cfg, out, init=init, ray_address=ray_address, max_iterations=iterations,
                                   time_limit_s=time_limit, progress=not no_progress)
    if curves:
        click.echo(json.dumps(curves[-1], indent=1))


@train.command("dynamics")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="YAML config (see configs/dynamics.yaml).")
@click.option("--data", type=click.Path(path_type=Path), default=None, help="Take folder (overrides config).")
@click.option("--init", type=click.Path(path_type=Path), default=None,
              help="Supervised checkpoint to start from (overrides config).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Run folder (overrides config).")
@click.option("--set", "-o", "overrides", multiple=True, help="Override a config key, e.g. --set iterations=50.")
@click.option("--ray", "ray_address", default=None, help="Run rollout workers on Ray ('local' or an address).")
@click.option("--no-progress", is_flag=True)
def dynamics_command(config_path, data, init, out, overrides, ray_address, no_progress) -> None:
    """Dynamics-regulated training (PPO + supervised steps on simulated states); resumes from
    OUT/checkpoint.pt."""
    from ..visualization.plots import plot_curves
    from .dynamics import DynamicsConfig, DynamicsTrainer

    cfg = load_config(DynamicsConfig, config_path, list(overrides))
    cfg.data, cfg.out = str(data or cfg.data), str(out or cfg.out)
    cfg.init = str(init or cfg.init)
    try:
        trainer = DynamicsTrainer(cfg, cfg.out, ray_address=ray_address)
    except (FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    run = RunDir(cfg.out, cfg, cfg.seed)  # after the checks: bad input leaves no run folder behind
    curves = trainer.train(progress=not no_progress)
    if not curves:
        raise click.ClickException("no iteration ran")
    it = np.array([c["iteration"] for c in curves])
    plot_curves({k: (it, np.array([c[k] for c in curves])) for k in ("reward", "no_fall_rate", "supervised_loss")},
                Path(cfg.out) / "training_curve.png", title="kinematic policy (dynamics-regulated)",
                xlabel="iteration", ylabel="value")
    run.write_metrics({"iterations": len(curves), "final": curves[-1]})
    click.echo(json.dumps(curves[-1], indent=1))


@train.command("leg-refiner")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="YAML config (see configs/leg_refiner.yaml).")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Run folder (overrides config).")
@click.option("--set", "-o", "overrides", multiple=True, help="Override a config key, e.g. --set rounds=3.")
@click.option("--no-progress", is_flag=True)
def leg_refiner_command(config_path, out, overrides, no_progress) -> None:
    """Train the leg refiner (DAgger in the regulated loop on the training takes; the kinematic
    policy and the controller stay fixed); writes OUT/refiner.pt."""
    from .leg_refiner import RefinerConfig, train_refiner

    cfg = load_config(RefinerConfig, config_path, list(overrides))
    cfg.out = str(out or cfg.out)
    # shipped defaults (checkpoints/...) are found from any directory; the record names the file used
    cfg.policy, cfg.controller = (str(resolve_path(p)) if p else p for p in (cfg.policy, cfg.controller))
    for path in (cfg.policy, cfg.controller):
        if path and not Path(path).is_file():
            raise click.ClickException(f"{path}: no such checkpoint")
    run = RunDir(cfg.out, cfg, cfg.seed)
    rows = train_refiner(cfg, progress=not no_progress)
    run.write_metrics({"rounds": rows})
    click.echo(json.dumps(rows[-1], indent=1))


@train.command("restart-context")
@click.argument("policy", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="YAML config (see configs/restart_context.yaml).")
@click.option("--set", "-o", "overrides", multiple=True, help="Override a config key, e.g. --set iterations=1000.")
@click.option("--no-progress", is_flag=True)
def restart_context_command(policy, out, config_path, overrides, no_progress) -> None:
    """Train a restart encoder for a kinematic-policy file POLICY (the pose at a restart from
    the second before it, so a live stream need not wait and a restart sees how the wearer got
    there); writes OUT: POLICY with the encoder added, its training record inside."""
    from .restart_context import RestartContextConfig, train_restart_context

    check_output(out, option="OUT")
    cfg = load_config(RestartContextConfig, config_path, list(overrides))
    record = train_restart_context(policy, out, cfg, progress=not no_progress)
    click.echo(json.dumps({k: record[k] for k in ("before", "after", "seconds")}, indent=1))
    click.echo(f"wrote {out}")


@click.command("estimate", cls=Command)
@click.option("--take", "take_path", type=click.Path(exists=True, path_type=Path), default=None,
              help="One take (.npz) or a take folder (kinpoly ego build / import-video).")
@click.option("--split", default="all", show_default=True,
              help="With a take folder: which split to estimate (train, test, test_mirror, ... or all).")
@click.option("--video", type=click.Path(path_type=Path), default=None,
              help="A head-camera video, or a folder or quoted pattern ('frames/rgb_*.jpg') of its frames as "
                   "image files (with --fps unless their names hold capture times), with --head-poses, "
                   "instead of --take.")
@click.option("--head-poses", type=click.Path(exists=True, path_type=Path), default=None,
              help="The video's camera trajectory, or a folder holding it (formats: see `kinpoly ego "
                   "import-video --help`; without it, --video's trajectory is reconstructed from its frames "
                   "into OUT/reconstruction, with the reconstruct extra); "
                   "alone, without --video: a headset's head trajectory, estimated by the "
                   "head-trajectory-only policy (checkpoints/kinematic_head_only).")
@click.option("--fps", type=float, default=None,
              help="With --head-poses alone, for a trajectory without timestamps: its poses per "
                   "second (default 30; estimates are made at 30 Hz). With --video: the frame rate of "
                   "a folder of frames (required), or the one a video file must have (checked).")
@time_offset_option
@video_rotation_option
@video_lens_option
@video_fovy_option
@click.option("--scale", type=float, default=None, help="Metric scale of the trajectory (default: estimated).")
@click.option("--eye-height", type=float, default=1.6, show_default=True,
              help="With --head-poses: the wearer's eye height in the first frame (m), which places the floor.")
@click.option("--world-to-camera", is_flag=True,
              help="The --head-poses are world-to-camera (OpenCV solvePnP; COLMAP's images.txt is read as such): invert them "
                   "(the import warns when a file looks inverted).")
@click.option("--action", type=click.Choice(ACTIONS), default=None,
              help="Action label of a video or trajectory (default: none).")
@objects_option
@click.option("--gt", "gt_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Ground-truth motion of a video (any importable file), for metrics.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Output folder.")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="Kinematic-policy checkpoint (default: checkpoints/kinematic/policy.pt).")
@click.option("--controller", type=click.Path(path_type=Path), default=None,
              help="Tracking-controller checkpoint (default: checkpoints/uhc/policy.pt).")
@click.option("--training-free", is_flag=True, help="Use the training-free tracking controller.")
@click.option("-o", "--controller-override", "controller_overrides", multiple=True, metavar="KEY=VALUE",
              help="Change a setting of the controller (UHCConfig), e.g. env.controller.root_target_offset=0.")
@click.option("--leg-refiner", type=click.Path(path_type=Path), default=None,
              help="Leg-refiner checkpoint (kinpoly train leg-refiner): corrects the proposals' hips and knees.")
@click.option("--no-physics", is_flag=True, help="The kinematic policy alone (no simulation).")
@click.option("--no-feedback", is_flag=True,
              help="Not the dynamics-regulated loop: the kinematic policy runs on its own poses, then the "
                   "controller tracks that motion (default controller: checkpoints/uhc_mocap_global, with "
                   "the full feed-forward).")
@click.option("--smooth", "smoothing", type=float, default=None,
              help="With --no-feedback: Gaussian sigma (frames) of the smoothing of the policy's motion "
                   "before it is tracked (default 1.5; 0: none).")
@click.option("--feedforward", type=click.Choice(["off", "static", "full"]), default=None,
              help="The controller's inverse-dynamics feed-forward "
                   "(default: off in the loop, full with --no-feedback).")
@click.option("--anchor-reference", "anchor", is_flag=True,
              help="The reference frame the body is at is the simulated pose, so the controller's "
                   "targets and feed-forward run from it to the proposal, not from the previous "
                   "proposal (with --controller checkpoints/uhc_mocap_global/policy.pt --feedforward "
                   "static: a README results row).")
@click.option("--restart-context/--no-restart-context", default=None,
              help="After a fall, restart from the pose the policy file's restart encoder reads from the "
                   "second before it (kinpoly train restart-context), or not (the context encoder on the "
                   "second after). Default: when the policy file has one (the head-trajectory-only one does).")
@click.option("--placeholder-object/--no-placeholder-object", default=True, show_default=True,
              help="A take without objects shows the policy a table that is not there, behind the wearer, as "
                   "every take it learned from had one ('no object' it reads far worse; README).")
@click.option("--videos", type=int, default=3, show_default=True, help="Render a video for the first N takes.")
@click.option("--resume", is_flag=True,
              help="Go on with a killed run: takes whose complete estimate OUT holds from the same "
                   "settings are read back, not estimated again.")
@click.option("-j", "--workers", type=click.IntRange(min=1), default=None,
              help="Processes estimating takes side by side, one core each (default: all cores, at most "
                   "one per take). The outputs are the same as with one.")
@click.option("--no-progress", is_flag=True)
def estimate_command(take_path, split, video, head_poses, fps, time_offset, video_rotation, video_lens, video_fovy,
                     scale, eye_height,
                     world_to_camera, action, objects_file, gt_file, out, checkpoint, controller, training_free,
                     controller_overrides, leg_refiner, no_physics, no_feedback, smoothing, feedforward, anchor, restart_context, placeholder_object, videos, resume,
                     workers, no_progress) -> None:
    """Estimate full-body motion from egocentric takes or a head-camera video: simulated motion
    (+ BVH), contacts and object states, videos and metrics in OUT (see kinpoly.policy.estimate)."""
    from ..egocentric.take import EgoDataError, EgoDataset, EgoTake
    from .estimate import SHIPPED_HEAD_ONLY_POLICY, Estimator, estimate_takes

    if sum(x is not None for x in (take_path, video or head_poses)) != 1:
        raise click.UsageError("give exactly one of --take, --video (with or without --head-poses) or --head-poses")
    if time_offset == "auto" and video is None:
        raise click.UsageError("--time-offset auto goes with --video (it reads the video's head turns)")
    if (video_lens is not None or video_fovy is not None) and video is None:
        raise click.UsageError("--video-lens and --video-fovy go with --video")
    if objects_file is not None and take_path is not None:
        raise click.UsageError("--objects goes with --video or --head-poses (a take holds its own objects)")
    trajectory_only = video is None and head_poses is not None
    if checkpoint is None and (trajectory_only or (take_path is not None and _takes_without_features(take_path))):
        checkpoint = SHIPPED_HEAD_ONLY_POLICY
    check_output(out, folder=True)
    try:
        estimator = Estimator(checkpoint, "" if training_free else controller, physics=not no_physics,
                              controller_overrides=controller_overrides, leg_refiner=leg_refiner,
                              feedback=not no_feedback, feedforward=feedforward, smoothing=smoothing,
                              anchor=anchor, restart_context=restart_context, placeholder_object=placeholder_object)
    except (FileNotFoundError, ValueError) as e:  # ValueError: also a bad --controller-override
        raise click.ClickException(str(e)) from None
    if trajectory_only and estimator.policy.cfg.feature_dim:
        raise click.ClickException(f"{estimator.checkpoint}: this policy reads image features, which a head "
                                   f"trajectory without --video has none of (use a head-trajectory-only policy, "
                                   f"e.g. the default {SHIPPED_HEAD_ONLY_POLICY.parent.name}/{SHIPPED_HEAD_ONLY_POLICY.name})")
    input_video = None  # a video's frames, shown beside the estimate
    try:
        if take_path is None:
            from ..egocentric.video import attach_ground_truth, import_trajectory, import_video

            kw = {"scale": scale, "eye_height": eye_height, "action": action, "world_to_camera": world_to_camera,
                  "objects": objects_file, "time_offset": time_offset}
            imported = (import_trajectory(head_poses, fps=fps or 30.0, **kw) if trajectory_only else
                        import_video(video, head_poses, fps=fps, video_rotation=rotation_choice(video_rotation),
                                     video_lens=video_lens, video_fovy=video_fovy,
                                     reconstruction=out / "reconstruction", **kw))
            take, input_video = imported.take, imported.video
            if gt_file is not None:
                from ..motion.importers import import_file

                attach_ground_truth(take, import_file(gt_file)[0])
            takes = [take]
        elif take_path.is_file():
            takes = [EgoTake.load(take_path)]
        else:
            ds = EgoDataset(take_path, split=None if split == "all" else split)
            takes = [(n, functools.partial(ds.__getitem__, n)) for n in ds.names]  # pickles for -j
    except (EgoDataError, ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None
    RunDir(out, {"take": take_path and str(take_path), "split": split, "video": video and str(video),
                 "head_poses": head_poses and str(head_poses), "fps": (fps or 30.0) if trajectory_only else fps,
                 "video_rotation": video_rotation if video is not None else None, "video_lens": video_lens,
                 "video_fovy": video_fovy,
                 "time_offset": time_offset,
                 "scale": scale, "eye_height": eye_height if take_path is None else None,
                 "world_to_camera": world_to_camera, "action": action, "objects": objects_file and str(objects_file),
                 "gt": gt_file and str(gt_file), **estimator.settings},
           seed=0)  # config.yaml + run.json (the inputs and the estimator's settings); metrics.json below
    report = estimate_takes(takes, estimator, out, videos=videos, input_video=input_video, progress=not no_progress,
                            resume=resume, workers=workers or os.cpu_count() or 1)
    click.echo((out / "metrics.md").read_text())
    if not report["takes"]:
        raise click.ClickException("no take could be estimated")


@click.command("stream", cls=Command)
@click.option("--input", "source", type=click.File("r"), default="-", show_default=True,
              help="Head poses, one line per frame at 30 frames/s: 'x y z qw qx qy qz' (metres; commas "
                   "or spaces), optionally led by a time in seconds; '#' lines and a header are skipped. "
                   "'-': standard input, e.g. piped from a headset's SDK.")
@click.option("--world-up", type=click.Choice(["z", "y"]), default=None,
              help="The poses' world up axis (default: Z; with --camera-axes unity Y, unreal Z).")
@click.option("--camera-axes", type=click.Choice(["head", "opencv", "opengl", "aria", "unity", "unreal"]),
              default="head", show_default=True,
              help="How a pose's rotation is written (kinpoly.egocentric.trajectory); unity / unreal: a "
                   "left-handed game engine's poses (Unreal's in cm), mirrored, objects too.")
@click.option("--eye-height", type=float, default=1.6, show_default=True,
              help="Eye height of the first pose above the floor (m).")
@click.option("--scale", type=float, default=1.0, show_default=True, help="Multiplies positions.")
@click.option("--lookahead", type=click.IntRange(min=2), default=2, show_default=True,
              help="For a policy file without a restart encoder: frames a restart may wait for (30 gives "
                   "the offline estimate exactly). The shipped one has one: every frame is 2 poses late "
                   "and the motion is the offline estimate.")
@click.option("--action", type=click.Choice(ACTIONS), default=None)
@objects_option
@click.option("--video", default=None,
              help="The head camera's frames, one per pose line: a video file, a folder or quoted pattern of "
                   "frames or a Project Aria .vrs recording, at 30 frames/s, or a camera index (0, 1, ...). The policy then reads image features (default: "
                   "checkpoints/kinematic/policy.pt, the method's; it has no restart encoder, see --lookahead).")
@click.option("--video-rotation", type=click.Choice(["0", "90", "180", "270"]), default="0", show_default=True,
              help="Degrees clockwise that turn the --video frames upright (Project Aria's RGB camera: 90). A "
                   "stream cannot look ahead to tell, as `kinpoly estimate --video` does.")
@video_lens_option
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="Kinematic policy (default: checkpoints/kinematic_head_only, reading no image features; "
                   "with --video checkpoints/kinematic).")
@click.option("--controller", type=click.Path(path_type=Path), default=None,
              help="Tracking-controller checkpoint (default: checkpoints/uhc/policy.pt).")
@click.option("--joints", is_flag=True, help="Also print the 24 joint positions (m) of each frame.")
@click.option("--smpl", is_flag=True,
              help="Also print each frame as SMPL parameters: \"smpl_pose\" (72, axis-angle, SMPL's joint "
                   "order) and \"smpl_trans\" (3), as `motion export --format amass` writes them.")
@click.option("--max-frames", type=click.IntRange(min=2), default=None,
              help="Stop with an error after this many poses (default: no limit).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="At the end, write the whole estimate here as `kinpoly estimate` does (clips, BVH, "
                   "SMPL parameters, contacts).")
@click.option("--name", default="stream", show_default=True, help="Name of the estimate in --out.")
@click.option("--view", is_flag=True, help="Also show each frame in MuJoCo's viewer as it comes (needs a display).")
def stream_command(source, world_up, camera_axes, eye_height, scale, lookahead, action, objects_file, video,
                   video_rotation, video_lens, checkpoint, controller, joints, smpl, max_frames, out, name,
                   view) -> None:
    """Estimate full-body motion live from head poses, one line in, one JSON line out per
    frame: {"frame", "qpos" (76: root position, quaternion wxyz, 69 hinge angles), "restart"
    (the fall that put the body back on a pose there, or null)[, "joints" (24 x 3)][, "smpl_pose",
    "smpl_trans"]}. Each frame comes 2 poses after its own (1 s for the first, the context
    window). With --objects, a line may go on with each object's pose now (x y z qw qx qy qz,
    in the file's order); a moving object's (one with a track) must."""
    import sys

    from ..egocentric.lens import load_lens
    from ..egocentric.take import EgoDataError
    from ..humanoid.kinematics import forward_kinematics
    from ..motion.clip import MotionClip
    from ..motion.smpl import clip_to_smpl
    from .estimate import SHIPPED_POLICY
    from .streaming import StreamingEstimator

    if out is not None:
        check_output(out, folder=True)
    if video is not None and checkpoint is None:
        checkpoint = SHIPPED_POLICY
    try:
        scene = ()
        if objects_file is not None:
            from ..egocentric.objects import read_objects

            scene = read_objects(objects_file)
        stream = StreamingEstimator(checkpoint, controller, lookahead=lookahead, world_up=world_up,
                                    camera_axes=camera_axes, eye_height=eye_height, scale=scale, action=action,
                                    objects=scene, max_frames=max_frames, name=name)
    except (FileNotFoundError, ValueError, EgoDataError) as e:
        raise click.ClickException(str(e)) from None
    if stream.estimator.policy.cfg.feature_dim and video is None:
        raise click.ClickException(f"{stream.estimator.checkpoint}: this policy reads image features, which a "
                                   f"pose stream has none of (give the head camera's --video, or use a "
                                   f"head-trajectory-only policy)")
    if video is not None and not stream.estimator.policy.cfg.feature_dim:
        raise click.ClickException(f"{stream.estimator.checkpoint}: this policy reads no image features; "
                                   f"--video needs one that does (the default with --video)")
    if video_lens is not None and video is None:
        raise click.UsageError("--video-lens goes with --video")
    try:
        lens = None if video_lens is None else load_lens(video_lens)
    except EgoDataError as e:
        raise click.ClickException(str(e)) from None
    frames = _video_frames(video, int(video_rotation), lens) if video is not None else None
    body = stream.take.body
    window = None
    if view:
        from ..visualization.viewer import LiveView, ViewerUnavailable

        try:
            window = LiveView(body)
        except ViewerUnavailable as e:
            raise click.ClickException(str(e)) from None

    def emit(frames) -> None:
        for f in frames:
            if window is not None:
                window.show(f.qpos, f"frame {f.frame}" + (f" (restarted: {f.restart})" if f.restart else ""))
            row = {"frame": f.frame, "qpos": np.round(f.qpos, 6).tolist(), "restart": f.restart}
            if joints:
                row["joints"] = np.round(forward_kinematics(f.qpos, body).positions[0], 5).tolist()
            if smpl:
                params = clip_to_smpl(MotionClip(name=name, qpos=f.qpos[None], body=body))
                row["smpl_pose"] = np.round(params["poses"][0], 6).tolist()
                row["smpl_trans"] = np.round(params["trans"][0], 6).tolist()
            click.echo(json.dumps(row))
        sys.stdout.flush()

    try:
        _stream_lines(stream, source, emit, frames)
    finally:
        if window is not None:
            window.close()
        if frames is not None:
            frames.close()
    if out is not None:
        from .estimate import write_estimate

        out.mkdir(parents=True, exist_ok=True)
        write_estimate(stream.estimate(), out)
        click.echo(f"wrote the estimate of {len(stream.frames)} frames to {out}", err=True)


def _video_frames(video: str, rotation: int = 0, lens=None):
    """The head camera's frames, one per ``next``, as the flow encoder reads them (RGB, turned
    ``rotation`` degrees clockwise; through a ``lens`` (:mod:`kinpoly.egocentric.lens`) the
    encoder's pinhole view, black beyond what it covers): from a video file, a folder or pattern
    of frames or a Project Aria VRS recording (with its own lens) at 30 frames/s, or a camera
    index; a generator (``close`` releases the capture)."""
    import cv2

    from ..egocentric.take import EgoDataError
    from ..egocentric.video import VIDEO_SIZE, VideoSource, encoder_view, turn_upright
    from .streaming import STREAM_FPS

    if not video.isdigit():
        try:
            source = VideoSource.open(video, rotation=rotation, lens=lens)
        except EgoDataError as e:
            raise click.ClickException(f"--video {video}: {e}") from None
        if abs(source.fps - STREAM_FPS) > 0.01 * STREAM_FPS:
            raise click.ClickException(f"--video {video}: {source.fps:g} frames/s; a stream is {STREAM_FPS:g} "
                                       f"(estimate it with `kinpoly estimate --video`, which resamples)")
        return (f for _, f in source.timed_views(*VIDEO_SIZE, narrow=False))
    cap = cv2.VideoCapture(int(video))
    if not cap.isOpened():
        raise click.ClickException(f"--video {video}: cannot open it (no such camera)")

    def frames():
        view = None
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    return
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                if view is None:
                    view = (VideoSource(Path(video), STREAM_FPS, lens=lens).viewer(
                        (rgb.shape[1], rgb.shape[0]), *VIDEO_SIZE, narrow=False) if lens is not None else
                        (lambda f: encoder_view(f, *VIDEO_SIZE)))
                yield turn_upright(view(rgb), rotation)
        finally:
            cap.release()

    return frames()


def _stream_lines(stream, source, emit, frames=None) -> None:
    """Push each pose line of ``source`` into ``stream`` (see ``kinpoly stream --help``), then
    close it; ``emit`` gets the frames each push finishes. ``frames``: the head camera's images,
    one per pose (:func:`_video_frames`)."""
    from ..egocentric.take import EgoDataError
    from .streaming import STREAM_FPS

    last_time, pushed = None, 0
    for line_no, line in enumerate(source, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            values = [float(v) for v in text.replace(",", " ").split()]
        except ValueError:
            if stream.frames or line_no > 1:
                raise click.ClickException(f"line {line_no}: not numbers: {text[:60]!r}") from None
            continue  # a header
        K = len(stream.objects)
        if len(values) not in (7, 8, 7 + 7 * K, 8 + 7 * K) or (len(values) < 7 + 7 * K and stream.scene.moving):
            objects = (f", then x y z qw qx qy qz of each of the --objects ({K}){'' if stream.scene.moving else ', or none'}"
                       if K else "")
            raise click.ClickException(f"line {line_no}: {len(values)} values; a pose is 'x y z qw qx qy qz', "
                                       f"optionally led by a time in seconds{objects}")
        if len(values) % 7 == 1:
            t, values = values[0], values[1:]
            if last_time is not None and not 0.8 <= (t - last_time) * STREAM_FPS <= 1.25:
                raise click.ClickException(f"line {line_no}: {t - last_time:.4f} s after the previous pose; "
                                           f"a stream is one pose per 1/{STREAM_FPS:g} s (resample it, or "
                                           f"estimate the file with `kinpoly estimate --head-poses`)")
            last_time = t
        objects = np.reshape(values[7:], (K, 7)) if len(values) > 7 else None
        image = None
        if frames is not None:
            try:
                image = next(frames, None)
            except EgoDataError as e:  # a --video-lens calibration for frames of another shape
                raise click.ClickException(f"--video: {e}") from None
            if image is None:
                raise click.ClickException(f"line {line_no}: the video has no frame for this pose "
                                           f"(it has {pushed}; one frame per pose)")
        try:
            emit(stream.push(values[:3], values[3:7], object_poses=objects, image=image))
            pushed += 1
        except (EgoDataError, ValueError) as e:
            raise click.ClickException(f"line {line_no}: {e}") from None
    try:
        emit(stream.close())
    except EgoDataError as e:
        raise click.ClickException(str(e)) from None


def _takes_without_features(path: Path) -> bool:
    """Whether a take folder's manifest (or a take file) says that none of its takes has image
    features (e.g. made by `kinpoly ego import-trajectory`): they need the head-only policy."""
    from ..egocentric.take import EgoDataError, EgoTake, read_manifest

    try:
        if path.is_file():
            return EgoTake.load(path).image_features is None
        takes = read_manifest(path).get("takes", [])
    except EgoDataError:
        return False  # the loader says what is wrong
    return bool(takes) and all("image_features" in t and t["image_features"] is None for t in takes)


@train.command("export")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--float32", is_flag=True, help="Keep float32 weights (default: float16, half the size).")
def export_command(checkpoint, out, float32) -> None:
    """Write a shippable kinematic-policy file (weights + architecture) from a training checkpoint."""
    from ..errors import check_output
    from .estimate import export_policy

    check_output(out, option="OUT")
    path = export_policy(checkpoint, out, half=not float32)
    click.echo(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
