"""Track whole clips with a controller and score them with :mod:`kinpoly.evaluation.metrics`.

Each clip is simulated from its first frame to its last (no random start); the simulated motion
becomes a :class:`MotionClip` (``meta["failed"]``/``fail_frame``/``reason`` when the episode
terminated) and every pose number comes from ``metrics.score_clip`` against the reference.
``success`` is "no termination over the whole clip"; the residual force is reported as the mean
norm of the applied root force (N) and torque (N m) per control step. With ``recover``, a
terminated episode goes on from the reference state of the frame it fell at (a restart,
recorded in ``meta["restarts"]``), so that the simulated motion covers the whole clip; the clip
still counts as failed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np

from ..evaluation import metrics
from ..motion.clip import MotionClip, ObjectTrack
from ..processes import process_map
from .env import EnvConfig, compose_action, observe
from .reference import Reference
from .sim import TrackingSim

SUMMARY_KEYS = ("mpjpe_global_mm", "mpjpe_mm", "accel_error", "velocity_error",
                "residual_force_n", "residual_torque_nm")


@dataclass
class Tracked:
    clip: MotionClip  # the simulated motion
    reason: str | None  # why it first fell, None if it never did
    wrench: np.ndarray  # (n, 6) applied root wrench per control step
    seconds: float
    restarts: list = field(default_factory=list)  # (frame, reason) of each fall it went on from (recover)


def controller_config(config_path=None, checkpoint=None, overrides=()):
    """The controller's settings (``UHCConfig``): the checkpoint's own config when it carries
    one (only its ``UHCConfig`` keys: a run of a subclass, e.g. one trained in the
    dynamics-regulated loop, also names its training data; controller settings it predates
    take their old values, :data:`~kinpoly.simulation.controller.LEGACY_CONTROLLER`), else the
    YAML file (or the defaults), with ``key=value`` overrides applied."""
    import dataclasses

    from ..config import apply_overrides, from_dict, load_config, read_checkpoint
    from .ppo import UHCConfig

    if checkpoint:
        blob = read_checkpoint(checkpoint, "controller checkpoint")
        data = blob.get("config") or blob.get("extra", {}).get("config")
        if data is not None:
            from .controller import LEGACY_CONTROLLER

            keys = {f.name for f in dataclasses.fields(UHCConfig)}
            data = {k: v for k, v in data.items() if k in keys}
            ctrl = data.get("env", {}).get("controller")
            if ctrl is not None:  # what it was trained with, not today's default
                data["env"]["controller"] = {**LEGACY_CONTROLLER, **ctrl}
            return from_dict(UHCConfig, apply_overrides(data, list(overrides)))
    return load_config(UHCConfig, config_path, list(overrides))


class PolicyController:
    """The learned residual policy (deterministic mean action), observing the reference frames
    ``future_frames`` ahead as well (``EnvConfig.future_frames``, as it was trained)."""

    def __init__(self, model, future_frames=()):
        from ..errors import InputError
        from .env import obs_dim

        if model.obs_dim != obs_dim(future_frames):
            raise InputError(f"the controller reads {model.obs_dim} observation values, env.future_frames "
                             f"{list(future_frames)} make {obs_dim(future_frames)}")
        self.model, self.future_frames = model, tuple(future_frames)

    def __call__(self, sim: TrackingSim) -> np.ndarray:
        return self.model.act(observe(sim, future_frames=self.future_frames))


def load_controller(checkpoint=None, config_path=None, overrides=()):
    """A controller to :func:`track` with: its settings (:func:`controller_config`) and its
    policy (:class:`PolicyController`; None without ``checkpoint``: the training-free one)."""
    cfg = controller_config(config_path, checkpoint, overrides)
    if not checkpoint:
        return cfg, None
    from .policy import load_policy

    return cfg, PolicyController(load_policy(checkpoint)[0], cfg.env.future_frames)


def track(ref: Reference, cfg: EnvConfig, policy=None, recover: bool = False) -> Tracked:
    """Simulate ``ref`` from frame 0 with the training-free controller plus ``policy`` (a
    callable sim -> action, or None); ``recover``: after a fall, go on from the reference state
    of that frame (module docstring)."""
    sim = TrackingSim(cfg.sim)
    sim.load(ref)
    sim.reset(0)
    frames = [sim.qpos.copy()]
    objects = [sim.object_poses()]
    wrenches, falls = [], []
    t0 = time.perf_counter()
    while not sim.done:
        action = policy(sim) if policy is not None else None
        reason = sim.step(*compose_action(sim, action, cfg))
        frames.append(sim.qpos.copy())
        objects.append(sim.object_poses())
        wrenches.append(sim.last_wrench.copy())
        if reason:
            falls.append((len(frames) - 1, reason))
            if not recover:
                break
            sim.reset(len(frames) - 1)  # each fall is at least a frame after the last restart: progress
            frames[-1], objects[-1] = sim.qpos.copy(), sim.object_poses()
    reason = falls[0][1] if falls else None
    meta = {"simulated": True}
    if falls:
        meta.update({"failed": True, "fail_frame": falls[0][0], "reason": reason})
    if recover:
        meta["restarts"] = [[int(f), r] for f, r in falls]
    poses = np.asarray(objects)  # (T, K, 7): the simulated scene, e.g. where a pushed box went
    tracks = [ObjectTrack(t.object, poses[:, k]) for k, t in enumerate(ref.clip.objects)]
    clip = replace(ref.clip, name=ref.clip.name, qpos=np.asarray(frames), objects=tracks, meta=meta)
    return Tracked(clip, reason, np.asarray(wrenches).reshape(-1, 6), time.perf_counter() - t0,
                   falls if recover else [])


def residual_means(wrench: np.ndarray) -> tuple[float, float]:
    """Mean norm of the residual root force (N) and torque (N m) over the control steps of a
    (n, 6) applied wrench (zero when it has no step)."""
    w = wrench if len(wrench) else np.zeros((1, 6))
    return float(np.linalg.norm(w[:, :3], axis=1).mean()), float(np.linalg.norm(w[:, 3:], axis=1).mean())


def score(tr: Tracked, ref: Reference) -> dict:
    s = metrics.score_clip(tr.clip, ref.clip)
    force, torque = residual_means(tr.wrench)
    return {
        "frames": ref.num_frames, "simulated_frames": tr.clip.num_frames,
        "success": tr.reason is None, "reason": tr.reason, "fail_frame": tr.clip.meta.get("fail_frame"),
        "restarts": len(tr.restarts),
        "mpjpe_global_mm": s["mpjpe_global_mm"], "mpjpe_mm": s["mpjpe_mm"],
        "accel_error": s["accel_error"], "velocity_error": s["velocity_error"],
        "residual_force_n": force, "residual_torque_nm": torque,
        "sim_seconds": round(tr.seconds, 3),
    }


def summarise(per_clip: dict[str, dict]) -> dict:
    rows = list(per_clip.values())
    out = {"clips": len(rows), "success_rate": float(np.mean([r["success"] for r in rows]))}
    for k in SUMMARY_KEYS:
        vals = [r[k] for r in rows if r[k] is not None and np.isfinite(r[k])]
        out[k] = float(np.mean(vals)) if vals else None
    ok = [r for r in rows if r["success"]]
    out["mpjpe_global_mm_successful"] = float(np.mean([r["mpjpe_global_mm"] for r in ok])) if ok else None
    out["failures"] = {n: r["reason"] for n, r in per_clip.items() if not r["success"]}
    out["restarts"] = int(sum(r.get("restarts", 0) for r in rows))
    return out


def evaluate(refs: list[Reference], cfg: EnvConfig, policy=None, progress: bool = True, workers: int = 1,
             recover: bool = False) -> tuple[dict, dict[str, Tracked]]:
    """Per-clip scores + overall summary, and the tracked motions. ``workers`` > 1: the clips
    are tracked in that many processes (each with a copy of ``cfg`` and ``policy``); the
    results are the same as in one, bar the timings. ``recover``: see :func:`track`."""
    from tqdm import tqdm

    per_clip, tracked = {}, {}
    workers = max(1, min(int(workers), len(refs)))
    if workers == 1:
        _WORKER.update(cfg=cfg, policy=policy, recover=recover)
        results = map(_track_and_score, refs)
    else:
        results = process_map(_track_and_score, refs, workers, _worker_init, (cfg, policy, recover))
    try:
        for ref, (tr, sc) in zip(refs, tqdm(results, total=len(refs), desc="uhc eval", disable=not progress)):
            tracked[ref.name] = tr
            per_clip[ref.name] = sc
    finally:
        _WORKER.clear()
        getattr(results, "close", lambda: None)()  # a worker pool: stop it
    return {"overall": summarise(per_clip), "per_clip": per_clip}, tracked


_WORKER: dict = {}  # this process's controller, for _track_and_score


def _track_and_score(ref: Reference) -> tuple[Tracked, dict]:
    tr = track(ref, _WORKER["cfg"], _WORKER["policy"], _WORKER.get("recover", False))
    return tr, score(tr, ref)


def _worker_init(cfg: EnvConfig, policy, recover: bool = False) -> None:
    import torch

    torch.set_num_threads(1)
    _WORKER.update(cfg=cfg, policy=policy, recover=recover)


def worst_clip(per_clip: dict[str, dict]) -> str:
    """The clip to look at: a failure that stopped earliest, else the highest global MPJPE."""
    failed = [n for n, r in per_clip.items() if not r["success"]]
    if failed:
        return min(failed, key=lambda n: (per_clip[n].get("fail_frame") or per_clip[n]["simulated_frames"])
                   / per_clip[n]["frames"])
    return max(per_clip, key=lambda n: per_clip[n]["mpjpe_global_mm"])
