"""Pose estimation from egocentric takes: the kinematic policy in the dynamics-regulated loop
(:mod:`.regulated`; physics on), alone (``physics=False``: the policy's own poses, no
simulation) or its own motion tracked in physics afterwards (``feedback=False``), and the files
``kinpoly estimate`` writes.

Output folder of :func:`write_estimates`::

    clips/          one clip per take, named as the take (project format; `kinpoly eval` reads it)
    bvh/            the same motions as BVH
    smpl/<take>.npz the same motions as SMPL parameters (AMASS layout: poses (T, 72), trans,
                    mocap_framerate; `kinpoly motion export --format amass`)
    ground_truth/   the takes' ground-truth clips, when they have one
    proposals/      the kinematic policy's proposed poses (physics mode)
    states/<take>.npz  per frame: body_contact (T, 24), object_contact (T, K), object_poses
                    (T, K, 7), penetration (T,), fall_frames and fall_reasons; in physics,
                    residual_wrench (T-1, 6): the root force (N) and torque (N m) applied per
                    control step; seconds: the estimate's time
    videos/<take>.mp4  ground truth | estimate | head camera (or the input video)
    metrics.json, metrics.md   `kinpoly eval`'s report of clips/ against ground_truth/, the
                    speed, the residual root force per take (physics; help from outside the
                    body, also as a share of its weight) and the takes that failed (with the reason)

Every file is written atomically; a take that fails is listed and the others go on. A take's
clip is written last, so its presence marks a complete take: with ``resume`` a killed run goes
on where it stopped, taking the takes already there from their files when the estimator's
settings (stored in each clip's meta) are the same.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..config import CHECKPOINTS, read_checkpoint
from ..egocentric.take import EgoDataError
from ..errors import InputError
from ..motion.clip import ClipFolder, MotionClip, atomic_write_npz, atomic_write_text
from ..processes import process_map
from .data import TakeTensors, placeholder_objects, take_tensors
from .model import ContextEncoder, KinematicPolicy, PolicyConfig
from .supervised import rollout
from .torch_kinematics import TorchFK

log = logging.getLogger(__name__)
SHIPPED_POLICY = CHECKPOINTS / "kinematic" / "policy.pt"
SHIPPED_HEAD_ONLY_POLICY = CHECKPOINTS / "kinematic_head_only" / "policy.pt"  # reads no image features
SHIPPED_CONTROLLER = CHECKPOINTS / "uhc" / "policy.pt"  # the estimator's controller (trained in its loop)
SHIPPED_MOCAP_CONTROLLER = CHECKPOINTS / "uhc_mocap_global" / "policy.pt"  # the best tracker of mocap
# frames (Gaussian sigma) of the policy's motion smoothing without feedback, measured on the 28
# test takes: 0 / 1 / 1.5 / 3 -> skate 5.21 / 3.31 / 2.91 / 2.84 mm/frame, MPJPE 135.1 / 136.0 /
# 135.2 / 136.7 mm (docs/estimation.md)
NO_FEEDBACK_SMOOTHING = 1.5


def policy_from_blob(ck: dict) -> tuple[KinematicPolicy, ContextEncoder]:
    """Policy + context encoder from a checkpoint dict (supervised, dynamics-regulated or
    shipped: all carry ``policy``, ``context`` and ``policy_config``)."""
    cfg = PolicyConfig(**ck["policy_config"])
    policy, context = KinematicPolicy(cfg), ContextEncoder(cfg)
    policy.load_state_dict({k: v.float() for k, v in ck["policy"].items()})
    context.load_state_dict({k: v.float() for k, v in ck["context"].items()})
    return policy.eval(), context.eval()


def _checked_policy(ck: dict, path: str | Path) -> tuple[KinematicPolicy, ContextEncoder]:
    """:func:`policy_from_blob`, with a checkpoint of another kind an :class:`InputError`."""
    try:
        return policy_from_blob(ck)
    except (KeyError, RuntimeError, TypeError, EOFError) as e:
        raise InputError(f"{path}: not a kinematic-policy checkpoint ({type(e).__name__}: {e})") from None


def load_policy(path: str | Path) -> tuple[KinematicPolicy, ContextEncoder]:
    return _checked_policy(read_checkpoint(path, "kinematic-policy checkpoint"), path)


def restart_context_from_blob(ck: dict) -> ContextEncoder | None:
    """The checkpoint's restart encoder (``restart_context``, :mod:`.restart_context`), or None."""
    if "restart_context" not in ck:
        return None
    enc = ContextEncoder(PolicyConfig(**ck["policy_config"]))
    enc.load_state_dict({k: v.float() for k, v in ck["restart_context"].items()})
    return enc.eval()


@torch.no_grad()
def estimate_kinematic(policy: KinematicPolicy, context: ContextEncoder, take: TakeTensors,
                       start_from_truth: bool = False) -> MotionClip:
    """The policy's motion for a whole take: first pose from the context encoder (or the
    ground truth), then one policy step per frame."""
    batch = {"head_pose": take.head_pose[None], "head_vels": take.head_vels[None], "obj": take.obj[None],
             "action": take.action[None], "offsets": take.offsets[None], "eye": take.eye[None],
             "feature": None if (take.feature is None or policy.cfg.feature_dim == 0) else take.feature[None]}
    q0 = take.qpos[None, 0] if (start_from_truth and take.qpos is not None) else context.take_pose(take)
    qpos = rollout(policy, TorchFK(), batch, q0, 1.0 / take.fps)[0].double().numpy()
    return MotionClip(name=take.name, qpos=np.asarray(qpos), fps=take.fps, body=take.body,
                      meta={"estimator": "kinematic_policy"})


@dataclass
class Estimate:
    """The estimate of one take."""

    name: str
    clip: MotionClip  # the estimated motion (simulated in physics mode)
    ground_truth: MotionClip | None
    proposals: MotionClip | None  # kinematic proposals (physics mode)
    falls: list = field(default_factory=list)
    seconds: float = 0.0
    wrench: np.ndarray | None = None  # (T-1, 6) residual root wrench applied per step (physics mode)

    @property
    def frames_per_second(self) -> float:
        return self.clip.num_frames / max(self.seconds, 1e-9)

    def residual(self) -> dict | None:
        """Mean residual root force (N) and torque (N m) per control step, and the force as a
        share of the body's weight; None without physics."""
        if self.wrench is None or not len(self.wrench):
            return None
        from ..simulation.evaluate import residual_means
        from ..simulation.model import body_weight_n

        force, torque = residual_means(self.wrench)
        return {"force_n": force, "torque_nm": torque, "share_of_weight": force / body_weight_n(self.clip.body)}


def policy_motion(policy: KinematicPolicy, context: ContextEncoder, take: TakeTensors,
                  smoothing: float = 0.0) -> torch.Tensor:
    """(T, 76) float32: the policy's own motion over the take (:func:`estimate_kinematic`),
    smoothed over ``smoothing`` frames: what the no-feedback mode tracks."""
    return torch.as_tensor(estimate_kinematic(policy, context, take).smoothed(smoothing).qpos, dtype=torch.float32)


def ground_truth_clip(take, objects=None) -> MotionClip | None:
    """The take's ground-truth body (and scene objects) as a clip named as the take."""
    from .regulated import take_objects

    if take.qpos is None:
        return None
    objects = take_objects(take.meta, take.object_world) if objects is None else objects
    return MotionClip(name=take.name, qpos=take.qpos, fps=take.fps, body=take.body, action=take.action,
                      objects=list(objects), source=f"egocentric take {take.name}",
                      meta={"ground_truth": True})


class Estimator:
    """Kinematic policy (+ tracking controller) ready to run on takes.

    ``checkpoint``: kinematic policy (default: the shipped one); ``controller``: UHC checkpoint
    (default: the shipped one; "" = the training-free controller), ``controller_overrides``
    ``key=value`` changes to its settings; ``physics=False``: the kinematic policy alone;
    ``leg_refiner``: a :mod:`~kinpoly.policy.leg_refiner` checkpoint that corrects the
    proposals' hips and knees before the controller tracks them (None: off).
    ``feedback=False``: the kinematic policy runs on its own poses, without physics, and the
    controller then tracks that motion (``RegulatedLoop.run(motion=...)``): not the
    dynamics-regulated method, whose policy reads the simulated pose, but a frame-to-frame
    consistent reference, so the controller's inverse-dynamics ``feedforward`` can be on.
    Defaults by mode: with feedback ``checkpoints/uhc`` and no feed-forward, without it the
    mocap tracker ``checkpoints/uhc_mocap_global`` and the full feed-forward (``feedforward``:
    "off", "static" or "full"; measured in README, "Egocentric pose estimation"), and the
    policy's motion smoothed over ``smoothing`` frames (:meth:`MotionClip.smoothed`; its
    frame-to-frame jitter made the tracked feet skate) before it is tracked. ``anchor``: the
    reference frame the body is at (from which the controller's targets and feed-forward
    run) is rewritten to the simulated pose, not left at the previous proposal
    (``RegulatedLoop.anchor_on_simulation``; measured in docs/estimation.md).
    ``restart_context`` True: after a fall, restart from the pose the checkpoint's restart
    encoder reads from the second *before* the fall (:mod:`.restart_context`), not the
    context encoder's from the second after it; None (default): when the checkpoint has one
    (the shipped head-trajectory-only policy does; measured a little better offline too,
    docs/estimation.md); False: never. ``placeholder_object``: a take without objects shows
    the policy a :class:`~.data.PlaceholderTable` (a table that is not there, behind the
    wearer), the input it was trained on; "no object" it reads far worse (README, "With the
    recording's objects").
    """

    def __init__(self, checkpoint: str | Path | None = None, controller: str | Path | None = None,
                 physics: bool = True, threads: int = 1, feedforward: bool | str | None = None,
                 controller_overrides=(), leg_refiner: str | Path | None = None, feedback: bool = True,
                 smoothing: float | None = None, anchor: bool = False, restart_context: bool | None = None,
                 placeholder_object: bool = True):
        from .dynamics import load_controller
        from .regulated import RegulatedLoop, loop_env_config

        if not feedback and leg_refiner:
            raise ValueError("the leg refiner corrects proposals from the simulated state: it needs feedback")
        if feedback and smoothing:
            raise ValueError("smoothing (--smooth) applies to the policy's own motion: "
                             "it needs feedback=False (--no-feedback)")
        if threads:
            torch.set_num_threads(threads)
        # what a worker process needs to build the same estimator (estimate_takes(workers=N))
        self.init_args = {"checkpoint": checkpoint, "controller": controller, "physics": physics,
                          "feedforward": feedforward, "controller_overrides": tuple(controller_overrides),
                          "leg_refiner": leg_refiner, "feedback": feedback, "smoothing": smoothing,
                          "anchor": anchor, "restart_context": restart_context,
                          "placeholder_object": placeholder_object}
        self.placeholder_object = bool(placeholder_object)
        self.checkpoint = Path(checkpoint or SHIPPED_POLICY)
        blob = read_checkpoint(self.checkpoint, "kinematic-policy checkpoint")
        self.policy, self.context = _checked_policy(blob, self.checkpoint)
        restart = restart_context_from_blob(blob) if (restart_context is not False and physics and feedback) else None
        if restart_context and restart is None:
            raise ValueError(f"{self.checkpoint}: " + ("has no restart encoder (make a policy file with one: kinpoly "
                                                       "train restart-context)" if physics and feedback else
                                                       "a restart encoder needs the dynamics-regulated loop"))
        self.restart_context = restart is not None
        self.physics = physics
        self.feedback = feedback
        if feedback:
            self.smoothing = 0.0
        else:
            self.smoothing = NO_FEEDBACK_SMOOTHING if smoothing is None else float(smoothing)
        default = SHIPPED_CONTROLLER if feedback else SHIPPED_MOCAP_CONTROLLER
        self.controller_path = str(default if controller is None else controller)
        if feedforward is None:
            feedforward = "off" if feedback else "full"
        self.feedforward = {False: "off", True: "full"}.get(feedforward, feedforward)
        if anchor and not physics:
            raise ValueError("anchoring the reference on the simulated pose (--anchor-reference) needs physics")
        self.anchor = bool(anchor)
        self.loop = None
        if physics:
            env_cfg, ctrl = load_controller(self.controller_path, controller_overrides)
            self.loop = RegulatedLoop(self.policy, self.context, loop_env_config(env_cfg, self.feedforward), ctrl)
            self.loop.anchor_on_simulation = self.anchor
            self.loop.restart_context = restart
            if leg_refiner:
                from .leg_refiner import load_refiner

                refiner = load_refiner(leg_refiner)
                self.loop.target_filter = lambda targets, sim, take, frame: refiner.correct(targets, sim.qpos, sim.qvel)
        self._own_target_filter = self.loop.target_filter if self.loop is not None else None
        self.leg_refiner = str(leg_refiner) if leg_refiner else None
        self.controller_overrides = [str(o) for o in controller_overrides]
        # no-feedback mode: an edit of the policy's motion before it is tracked, called as
        # ``motion_filter(motion, take)`` -> motion ((T, 76) tensors; None: tracked as it is).
        # For experiments (benchmarks/no_feedback_legs.py), like ``loop.target_filter``.
        self.motion_filter = None

    @property
    def portable(self) -> bool:
        """Whether :attr:`init_args` rebuild this estimator (no hooks were set on it since)."""
        own_filter = self.loop is None or self.loop.target_filter is self._own_target_filter
        return self.motion_filter is None and own_filter

    @property
    def settings(self) -> dict:
        """What decides the estimates (stored in each clip's meta: a resumed run reuses a take's
        files only when they are the same)."""
        physics = {"controller": self.controller_path, "controller_overrides": self.controller_overrides,
                   "feedforward": self.feedforward, "anchor": self.anchor, "leg_refiner": self.leg_refiner,
                   "smoothing": self.smoothing, "restart_context": self.restart_context} if self.physics else {}
        return {"checkpoint": str(self.checkpoint), "physics": self.physics, "feedback": self.feedback,
                "placeholder_object": self.placeholder_object, **physics}

    def estimate(self, take) -> Estimate:
        """Estimate one :class:`~kinpoly.egocentric.take.EgoTake`."""
        from .regulated import episode_clip, take_objects

        tt = take_tensors(take, use_features=self.policy.cfg.feature_dim > 0)
        if self.placeholder_object and not bool(tt.obj[:, 7].any()):
            tt.obj = torch.as_tensor(placeholder_objects(take.head_pose))
        if self.policy.cfg.feature_dim and tt.feature is None:
            raise EgoDataError(f"{take.name}: the policy reads image features but the take has none "
                             f"(run `kinpoly ego features` on it, or use the head-trajectory-only policy: "
                             f"--checkpoint {SHIPPED_HEAD_ONLY_POLICY})")
        if tt.feature is not None and tt.feature.shape[1] != self.policy.cfg.feature_dim:
            raise EgoDataError(f"{take.name}: image features are {tt.feature.shape[1]}-d, the policy "
                             f"expects {self.policy.cfg.feature_dim}")
        objects = take_objects(take.meta, take.object_world)
        gt = ground_truth_clip(take, objects)
        meta = {"checkpoint": str(self.checkpoint), "take": take.name, "estimator": self.settings}
        t0 = time.perf_counter()
        if self.physics:
            motion = None if self.feedback else policy_motion(self.policy, self.context, tt, self.smoothing)
            if motion is not None and self.motion_filter is not None:
                motion = self.motion_filter(motion, take)
            ep = self.loop.run(tt, objects, motion=motion)
            clip = episode_clip(ep, tt, objects, meta)
            proposals = episode_clip(ep, tt, objects, meta, kinematic=True)
            falls, wrench = ep.falls, ep.wrench
        else:
            clip = estimate_kinematic(self.policy, self.context, tt)
            clip.objects, clip.meta = list(objects), {**clip.meta, **meta}
            proposals, falls, wrench = None, [], None
        seconds = time.perf_counter() - t0
        clip.action = take.action
        if proposals is not None:
            proposals.action = take.action
        return Estimate(take.name, clip, gt, proposals, falls, seconds, wrench)


def write_estimate(est: Estimate, out: Path, video: bool = False, input_video=None,
                   width: int = 240, height: int = 240) -> str | None:
    """The files of one estimate (see the module docstring). Everything that can fail on the
    data (contacts, BVH) is computed before the first file is written; each file is written
    atomically. The video comes last: a rendering failure is returned as a message (the
    estimate's other files stay valid), not raised. ``input_video``: the head-camera video's
    :class:`~kinpoly.egocentric.video.VideoSource` (``ImportResult.video``) or a video file,
    shown beside the estimate."""
    import tempfile

    from ..evaluation.metrics import scan_contacts
    from ..motion.export import export_bvh
    from ..motion.smpl import clip_to_smpl

    scan = scan_contacts(est.clip)
    K = len(est.clip.objects)
    objects = (np.stack([o.poses for o in est.clip.objects], axis=1) if K
               else np.zeros((est.clip.num_frames, 0, 7)))
    (out / "bvh").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out / "bvh") as tmp:
        bvh = export_bvh(est.clip, Path(tmp) / f"{est.name}.bvh")
        states = {"body_contact": scan.body_contact, "object_contact": scan.object_contact,
                  "object_poses": objects, "penetration": scan.penetration,
                  "fall_frames": np.array([f for f, _ in est.falls], dtype=np.int64),
                  "fall_reasons": np.array([str(r) for _, r in est.falls], dtype=str),
                  "seconds": np.float64(est.seconds)}
        if est.wrench is not None:
            states["residual_wrench"] = est.wrench
        atomic_write_npz(out / "states" / f"{est.name}.npz", states)
        atomic_write_npz(out / "smpl" / f"{est.name}.npz", clip_to_smpl(est.clip))
        if est.ground_truth is not None:
            ClipFolder(out / "ground_truth", create=True).add(est.ground_truth)
        if est.proposals is not None:
            ClipFolder(out / "proposals", create=True).add(est.proposals)
        bvh.replace(out / "bvh" / f"{est.name}.bvh")
        ClipFolder(out / "clips", create=True).add(est.clip)  # last: its presence marks a complete take
    if video:
        try:
            render_estimate_video(est, out / "videos" / f"{est.name}.mp4", input_video, width, height)
        except Exception as e:  # noqa: BLE001 - no GL, codec problems, ...
            return f"{est.name}: video not written ({type(e).__name__}: {e})"
    return None


def load_estimate(out: Path, name: str, settings: dict | None = None) -> Estimate | None:
    """The estimate of take ``name`` that :func:`write_estimate` wrote to ``out``, or None if it
    is not complete there (or, given ``settings``, was made with other estimator settings)."""
    from ..motion.clip import ClipError

    try:
        clip = MotionClip.load(out / "clips" / f"{name}.npz")
        if settings is not None and clip.meta.get("estimator") != settings:
            return None
        with np.load(out / "states" / f"{name}.npz", allow_pickle=False) as z:
            states = {k: z[k] for k in z.files}
        optional = {sub: MotionClip.load(out / sub / f"{name}.npz") if (out / sub / f"{name}.npz").is_file()
                    else None for sub in ("ground_truth", "proposals")}
    except (ClipError, OSError, ValueError):
        return None
    if "seconds" not in states:  # written before the states kept it: estimate it again
        return None
    falls = [(int(f), str(r)) for f, r in zip(states["fall_frames"], states["fall_reasons"])]
    return Estimate(name, clip, optional["ground_truth"], optional["proposals"], falls,
                    float(states["seconds"]), states.get("residual_wrench"))


def render_estimate_video(est: Estimate, path: Path, input_video=None, width: int = 240,
                          height: int = 240) -> Path:
    """Side by side: ground truth (when known) | estimate | head camera. The head-camera panel
    is the input video when given, else rendered from the ground-truth (observed) head."""
    from ..visualization.render import render_clips

    clips, labels = [est.clip], ["estimate (simulated)" if est.proposals is not None else "estimate"]
    if est.ground_truth is not None:
        clips, labels = [est.ground_truth] + clips, ["ground truth"] + labels
    if input_video is None and est.ground_truth is not None:
        render_clips(clips, path, width=width, height=height, head_camera=True,
                     labels=labels + ["head camera"], show_progress=False)
        return path
    render_clips(clips, path, width=width, height=height, labels=labels, show_progress=False)
    if input_video is not None:
        from ..egocentric.video import VideoSource

        source = input_video if isinstance(input_video, VideoSource) else VideoSource.open(input_video)
        _append_video_panel(path, source, width, height)
    return path


def _append_video_panel(path: Path, video, width: int, height: int) -> None:
    """Append the input video (a :class:`~kinpoly.egocentric.video.VideoSource`, upright, as
    the flow encoder reads it) as a right-hand panel of the rendered video at ``path``."""
    import imageio.v2 as imageio

    from ..visualization.render import draw_label

    src = imageio.get_reader(str(path))
    fps = src.get_meta_data().get("fps", 30.0)
    frames = [f for f in src]
    src.close()
    want = np.arange(len(frames)) / fps  # each rendered frame shows the input frame nearest its time
    cam_frames, prev, start = [], None, None
    for t, f in video.timed_views(width, height):  # a variable-frame-rate video's frames at their own times
        start = t if start is None else start
        if prev is not None:
            reps = int(np.searchsorted(want, (prev[0] + t - start) / 2, side="right")) - len(cam_frames)
            cam_frames += [prev[1]] * max(reps, 0)
        if len(cam_frames) >= len(want):
            break
        prev = (t - start, draw_label(f, "head camera (input)"))
    cam_frames += [prev[1]] * (len(want) - len(cam_frames))
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    with imageio.get_writer(str(tmp), fps=fps, codec="libx264", quality=6, macro_block_size=1) as w:
        for i, f in enumerate(frames):
            c = cam_frames[min(i, len(cam_frames) - 1)]
            h = min(f.shape[0], c.shape[0])
            row = np.concatenate([f[:h], c[:h]], axis=1)
            w.append_data(row[:row.shape[0] // 2 * 2, :row.shape[1] // 2 * 2])
    tmp.replace(path)


def unscored_metrics(est: Estimate, observed_head: np.ndarray) -> dict:
    """What an estimate is scored by without a ground-truth body: restarts (lost camera),
    the mean distance of its eyes from the observed camera (m), penetration and foot skate."""
    from ..evaluation.metrics import score_physical

    eyes = est.clip.head_pose()[:, :3]
    err = float(np.mean(np.linalg.norm(eyes - np.asarray(observed_head)[: len(eyes), :3], axis=1)))
    return {**score_physical(est.clip), "restarts": len(est.falls), "observed_head_err_m": err}


def _estimate_one(job) -> dict:
    """One take of :func:`estimate_takes` with the estimator of this process: estimated (or read
    back) and written; what the report needs of it."""
    item, out, video, input_video, resume = job
    estimator = _WORKER["estimator"]
    name = item[0] if isinstance(item, tuple) else item.name
    r = {"name": name, "failure": None, "warning": None, "resumed": False, "residual": None, "unscored": None}
    try:
        est = load_estimate(out, name, estimator.settings) if resume else None
        if est is not None:  # the take itself is needed only to score a take without ground truth
            r["resumed"] = True
            take = (item[1]() if isinstance(item, tuple) else item) if est.ground_truth is None else None
        else:
            take = item[1]() if isinstance(item, tuple) else item
            r["name"] = take.name
            est = estimator.estimate(take)
            r["warning"] = write_estimate(est, out, video=video, input_video=input_video)
        r.update(frames=est.clip.num_frames, seconds=est.seconds, residual=est.residual())
        if est.ground_truth is None:  # what can be scored without a ground-truth body
            r["unscored"] = unscored_metrics(est, take.head_pose)
    except Exception as e:  # one bad take must not stop the others
        log.debug("estimating %s failed", name, exc_info=True)
        r["failure"] = str(e) if isinstance(e, (ValueError, OSError)) else f"{type(e).__name__}: {e}"
        return r
    log.info("%s: %d frames at %.1f frames/s, %d fall(s)", est.name, est.clip.num_frames,
             est.frames_per_second, len(est.falls))
    return r


_WORKER: dict = {}  # this process's estimator, for _estimate_one


def _worker_init(init_args: dict) -> None:
    torch.set_num_threads(1)
    _WORKER["estimator"] = Estimator(**init_args)


def estimate_takes(takes, estimator: Estimator, out: str | Path, *, videos: int = 3,
                   input_video=None, progress: bool = True, resume: bool = False, workers: int = 1) -> dict:
    """Estimate every take (an iterable of EgoTake or of ``(name, loader)`` pairs, the loader
    a zero-argument callable returning the take), write the outputs and the metrics; returns
    the report written to ``metrics.json``. Videos are rendered for the first ``videos``
    takes. ``resume``: a take whose complete estimate ``out`` already holds from the same
    estimator settings is read back, not estimated again. ``workers`` > 1: takes are estimated
    in that many processes, each with its own copy of the estimator (one core each; the takes
    and loaders must pickle); the files and the report are the same as with one."""
    import json

    from tqdm import tqdm

    from ..evaluation.commands import _json_safe, evaluate_folders, markdown_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("metrics.json", "metrics.md"):  # an earlier run's: gone until this run's are written
        (out / stale).unlink(missing_ok=True)
    failures, warnings, timing, residual, unscored, names, resumed = [], [], [], {}, {}, [], []
    items = list(takes)
    jobs = [(item, out, i < videos, input_video, resume) for i, item in enumerate(items)]
    workers = max(1, min(int(workers), len(items)))
    if workers > 1 and not estimator.portable:
        raise ValueError("this estimator carries hooks set after it was made (motion_filter or a "
                         "target_filter): it cannot be rebuilt in worker processes; use workers=1")
    if workers == 1:
        _WORKER["estimator"] = estimator
        results = map(_estimate_one, jobs)
    else:
        results = process_map(_estimate_one, jobs, workers, _worker_init, (estimator.init_args,))
    try:
        for r in tqdm(results, total=len(jobs), desc="estimate", disable=not progress):
            if r["failure"]:
                failures.append({"take": r["name"], "reason": r["failure"]})
                continue
            if r["warning"]:
                warnings.append(r["warning"])
            if r["resumed"]:
                resumed.append(r["name"])
            names.append(r["name"])
            timing.append((r["frames"], r["seconds"]))
            if r["residual"] is not None:
                residual[r["name"]] = r["residual"]
            if r["unscored"] is not None:
                unscored[r["name"]] = r["unscored"]
    finally:
        _WORKER.clear()
        getattr(results, "close", lambda: None)()  # a worker pool: stop it
    done = len(names)
    frames = sum(f for f, _ in timing)
    report = {"takes": done, "resumed": resumed, "failures": failures, "warnings": warnings, "frames": frames,
              "frames_per_second": frames / max(sum(s for _, s in timing), 1e-9) if timing else None,
              "physics": estimator.physics, "feedback": estimator.feedback, "checkpoint": str(estimator.checkpoint),
              "controller": estimator.controller_path if estimator.physics else None}
    if unscored:
        report["without_ground_truth"] = unscored
    if residual:
        report["residual"] = {"takes": residual, **{k: float(np.mean([r[k] for r in residual.values()]))
                                                     for k in ("force_n", "torque_nm", "share_of_weight")}}
    mode = ("kinematic policy only" if not estimator.physics else "dynamics-regulated, physics on"
            if estimator.feedback else "the policy's own motion, then tracked in physics (no feedback)")
    md = [f"# kinpoly estimate\n\n{done} take(s), {frames} frames, "
          f"{report['frames_per_second'] or 0:.1f} frames/s on one core ({mode})"
          + (f"; {len(resumed)} take(s) read back from an earlier run's files" if resumed else "") + ".\n"]
    if residual:
        r = report["residual"]
        md.append(f"Residual root force (help from outside the body, which the metrics below do not see): "
                  f"mean {r['force_n']:.0f} N ({r['share_of_weight']:.0%} of the body's weight) and "
                  f"{r['torque_nm']:.0f} N m per control step over the takes.\n")
    if any((out / "ground_truth" / f"{n}.npz").is_file() for n in names):
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory(dir=out) as tmp:  # this run's takes only: OUT may hold older ones
            for sub in ("clips", "ground_truth"):
                (Path(tmp) / sub).mkdir()
                for n in names:
                    if (out / sub / f"{n}.npz").is_file():
                        shutil.copyfile(out / sub / f"{n}.npz", Path(tmp) / sub / f"{n}.npz")
            summary = evaluate_folders(Path(tmp) / "clips", Path(tmp) / "ground_truth")
        report["evaluation"] = summary
        md.append(markdown_report(summary))
    if unscored:
        md.append("\n## Takes without ground truth\n\nHead error: the simulated eyes against the observed "
                  "camera (what the estimate had to follow); restarts: the estimate lost the camera and was "
                  "started again.\n\n| take | frames | restarts | head error (m) | penetration (mm) | "
                  "skate (mm/frame) |\n|---|---|---|---|---|---|\n"
                  + "\n".join(f"| {n} | {m['frames']} | {m['restarts']} | {m['observed_head_err_m']:.3f} | "
                              f"{m['penetration_mm']:.2f} | {m['skate_mm']:.2f} |" for n, m in unscored.items()) + "\n")
    if warnings:
        md.append("\n## Warnings\n\n" + "\n".join(f"- {w}" for w in warnings) + "\n")
    if failures:
        md.append("\n## Takes that failed\n\n" + "\n".join(f"- `{f['take']}`: {f['reason']}" for f in failures) + "\n")
    atomic_write_text(out / "metrics.json", json.dumps(_json_safe(report), indent=1))
    atomic_write_text(out / "metrics.md", "\n".join(md))
    return report


def export_policy(src: str | Path, dst: str | Path, half: bool = True, extra: dict | None = None) -> Path:
    """A shippable copy of a (supervised or dynamics-regulated) checkpoint: policy + context
    encoder weights (float16 by default, ~half the size; loading restores float32) and the
    architecture, without optimiser or curves."""
    import io

    from ..motion.clip import atomic_write_bytes

    ck = read_checkpoint(src, "kinematic-policy training checkpoint")
    _checked_policy(ck, src)  # refuse anything that is not a kinematic-policy checkpoint
    cast = (lambda t: t.half() if t.is_floating_point() else t) if half else (lambda t: t)
    blob = {"policy": {k: cast(v) for k, v in ck["policy"].items()},
            "context": {k: cast(v) for k, v in ck["context"].items()},
            "policy_config": ck["policy_config"], "stage": ck.get("stage", "supervised"),
            "iteration": ck.get("iteration"), **(extra or {})}
    buf = io.BytesIO()
    torch.save(blob, buf)
    atomic_write_bytes(dst, buf.getvalue())
    return Path(dst)
