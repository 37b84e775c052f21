"""Gymnasium environment: the humanoid tracks reference clips sampled from a motion set.

Registered as ``kinpoly/HumanoidTracking-v0`` when :mod:`kinpoly` is imported::

    import gymnasium as gym
    import kinpoly  # noqa: F401  (registers the environment)

    env = gym.make("kinpoly/HumanoidTracking-v0", motions="data/motions", render_mode="rgb_array")

``motions`` is a clip folder (``kinpoly motion import`` writes one), a list of clips, or left out
for the three clips bundled with the package; ``config`` an :class:`EnvConfig` or a dict of its
fields (as in ``configs/uhc.yaml``'s ``env`` block). With ``render_mode="rgb_array"``
``render()`` returns an RGB frame of the simulated body from a camera that follows it; with
``render_mode="human"`` every ``reset`` and ``step`` shows the simulation in MuJoCo's viewer
window at the environment's 30 frames/s, the reference drawn over it as a translucent skeleton
(needs a display). One episode follows one clip from a random
start frame (reference state init) until the clip ends, ``max_episode_steps`` pass
(truncation), or a termination (:mod:`kinpoly.simulation.sim`: ``fell``, ``unstable``,
``reference_discontinuity``; the reason is in ``info["reason"]``).

**Action** (75, in [-1, 1]): a residual on top of the training-free controller
(:mod:`kinpoly.simulation.controller`): 69 hinge-target offsets times ``action_scale`` rad,
and 6 root-wrench offsets times ``residual_scale`` (N, N m), the sum clipped to the residual
bound. A zero action is the training-free controller, so a policy whose mean starts at zero
starts from the baseline's success (warm start without behaviour cloning).

**Observation** (:func:`observe`, 302-d, all in the heading frame of the simulated root):
root height (1), root orientation without heading (6: two matrix columns), hinge angles (69),
root linear velocity (3), root angular velocity (3, pelvis axes), hinge velocities (69, x0.1),
next reference hinge angles minus current (69), next reference body positions minus current
(72), next reference root velocity (3), next reference root orientation without heading (6),
next reference root height minus current (1). With ``EnvConfig.future_frames`` (offsets from
the current frame, each beyond the next) it goes on with 79 per offset (:data:`FUTURE_FRAME_DIM`):
that frame's body positions minus the current simulated ones (72), its root orientation without
heading (6) and its root height minus the current one (1), so the policy sees a take-off or a
landing coming; :func:`obs_dim` gives the length.

**Reward** (:func:`reward_terms`, SPEC section 2): weighted sum of ``exp(-k err)`` terms:
pose 0.3 (k 2, squared hinge-angle error summed: the hinges are the Euler angles of the local
rotations), velocity 0.1 (k 0.005, squared generalised-velocity error), end-effector 0.45
(k 5, squared position error of hands, toes and head, root-relative), root 0.1 (k 100,
squared root position error), residual force 0.05 (k 1, squared wrench / residual_scale).
Weights and gains are in :class:`RewardConfig`.

**Degraded reference legs** (:class:`ReferenceLegsConfig`, off by default): in a share of the
episodes the controller is shown, and its training-free part (PD targets, feed-forward) follows,
a copy of the clip whose legs swing less and lag (as an estimate's legs do,
:func:`kinpoly.motion.augment.degraded_legs`), while the reward and the fall test score the
true clip and the body starts in its state: a controller trained so is to take full steps under
legs that shuffle (measured, it did not learn to: ``benchmarks/results/degraded_legs_tracker.json``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace

import gymnasium as gym
import numpy as np

from .. import TRACKING_ENV_ID
from ..config import PACKAGE_DIR, from_dict
from ..humanoid.skeleton import BODY_INDEX
from ..motion.augment import degraded_legs
from ..motion.clip import ClipFolder, MotionClip
from .controller import ControllerConfig, baseline_action
from .reference import Reference, feedforward_mode, prepare_reference
from .sim import SimConfig, TrackingSim

ENV_ID = TRACKING_ENV_ID
OBS_DIM = 302  # without future frames
FUTURE_FRAME_DIM = 79  # per frame of EnvConfig.future_frames
ACT_DIM = 75
SAMPLE_CLIPS = PACKAGE_DIR / "assets" / "clips"
END_EFFECTORS = np.array([BODY_INDEX[n] for n in ("L_Hand", "R_Hand", "L_Toe", "R_Toe", "Head")])


@dataclass
class RewardConfig:
    w_pose: float = 0.3
    k_pose: float = 2.0
    w_vel: float = 0.1
    k_vel: float = 0.005
    w_ee: float = 0.45
    k_ee: float = 5.0
    w_root: float = 0.1
    k_root: float = 100.0
    w_residual: float = 0.05
    k_residual: float = 1.0


@dataclass
class ReferenceLegsConfig:
    """Degraded reference legs for training (see the module docstring). Per episode, with
    probability ``probability``: a swing factor drawn uniformly from ``swing_scale`` and a
    delay from ``delay_frames`` (inclusive), the swing taken about a ``window``-frame moving average."""

    probability: float = 0.0
    swing_scale: list[float] = field(default_factory=lambda: [0.5, 1.0])
    delay_frames: list[int] = field(default_factory=lambda: [0, 5])
    window: int = 31

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"reference_legs.probability must be in [0, 1], got {self.probability}")
        for key, lo_min in (("swing_scale", 0.0), ("delay_frames", 0)):
            v = getattr(self, key)
            if len(v) != 2 or not lo_min <= v[0] <= v[1]:
                raise ValueError(f"reference_legs.{key} must be [low, high] with {lo_min} <= low <= high, got {v}")
        if self.window < 1:
            raise ValueError(f"reference_legs.window must be >= 1 frame, got {self.window}")


@dataclass
class EnvConfig:
    sim: SimConfig = field(default_factory=SimConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    action_scale: float = 0.25  # rad per unit of hinge action
    residual_scale: float = 100.0  # N / N m per unit of root action (SPEC: x100)
    max_episode_steps: int = 300  # 10 s
    random_start: bool = True  # reference state init at a random frame
    # A clip is drawn with probability proportional to its length (times the trainer's
    # hard-clip weight), the length clamped to [clip_weight_min_frames, clip_weight_max_frames]
    # (0: unbounded): uncapped, a few long clips take most episodes (the seven CMU climbs, 5%
    # of the clips, drew 53% of them) and 2-second acrobatics almost none.
    clip_weight_min_frames: int = 0
    clip_weight_max_frames: int = 0
    reference_legs: ReferenceLegsConfig = field(default_factory=ReferenceLegsConfig)
    # Reference frames further ahead in the observation: offsets from the current frame (each
    # >= 2, increasing), clamped at the clip's end. Empty: the next frame only (SPEC).
    future_frames: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        f = list(self.future_frames)
        if any(not isinstance(k, int) or k < 2 for k in f) or f != sorted(set(f)):
            raise ValueError(f"future_frames must be increasing whole frame offsets >= 2 (1, the next "
                             f"frame, is always observed), got {self.future_frames}")


def obs_dim(future_frames=()) -> int:
    """Length of the observation with reference frames ``future_frames`` ahead as well."""
    return OBS_DIM + FUTURE_FRAME_DIM * len(future_frames)


def _yaw_inv(rot: np.ndarray) -> np.ndarray:
    """World -> heading frame rotation (3, 3) of a root orientation (yaw = atan2 of the
    forward axis' horizontal part; heading +X where it points straight up or down)."""
    c, s = float(rot[0, 0]), float(rot[1, 0])
    n = math.hypot(c, s)
    c, s = (c / n, s / n) if n > 1e-12 else (1.0, 0.0)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def observe(sim: TrackingSim, ref: Reference | None = None, future_frames=()) -> np.ndarray:
    """The observation (module docstring) of the simulator's current state and next reference
    frame (of the reference it tracks, or of another one on the same frame clock, ``ref``), and
    of the frames ``future_frames`` ahead."""
    ref, t = (sim.ref if ref is None else ref), sim.t
    last = ref.num_frames - 1
    tn = min(t + 1, last)
    q, v = sim.qpos, sim.qvel
    rot = sim.data.xmat[1].reshape(3, 3)
    hinv = _yaw_inv(rot)
    ref_rot = ref.root_rot[tn]
    ref_hinv = _yaw_inv(ref_rot)
    dpos = (ref.body_pos[tn] - sim.body_pos) @ hinv.T
    parts = [
        q[2:3], (hinv @ rot)[:, :2].ravel(), q[7:],
        hinv @ v[:3], v[3:6], 0.1 * v[6:],
        ref.qpos[tn, 7:] - q[7:], dpos.ravel(), hinv @ ref.qvel[tn, :3],
        (ref_hinv @ ref_rot)[:, :2].ravel(), ref.qpos[tn, 2:3] - q[2:3],
    ]
    for k in future_frames:
        tk = min(t + k, last)
        rot_k = ref.root_rot[tk]
        parts += [((ref.body_pos[tk] - sim.body_pos) @ hinv.T).ravel(), (_yaw_inv(rot_k) @ rot_k)[:, :2].ravel(),
                  ref.qpos[tk, 2:3] - q[2:3]]
    return np.concatenate(parts).astype(np.float32)


def reward_terms(sim: TrackingSim, wrench_scale: float, ref: Reference | None = None) -> dict[str, float]:
    """Named error terms (before weighting) at the simulator's current frame, against the
    reference it tracks (or another one on the same frame clock, ``ref``)."""
    ref, t = (sim.ref if ref is None else ref), sim.t
    q, v = sim.qpos, sim.qvel
    bp, rp = sim.body_pos, ref.body_pos[t]
    ee = ((bp[END_EFFECTORS] - bp[0]) - (rp[END_EFFECTORS] - rp[0])).ravel()
    return {
        "pose": _squared_norm(q[7:] - ref.qpos[t, 7:]),
        "vel": _squared_norm(v - ref.qvel[min(t, ref.num_frames - 2)]),
        "ee": _squared_norm(ee),
        "root": _squared_norm(bp[0] - rp[0]),
        "residual": _squared_norm(sim.last_wrench) / wrench_scale ** 2,
    }


def _squared_norm(x: np.ndarray) -> float:
    return float(x @ x)  # a third of np.sum(x ** 2)'s time on these small vectors


def reward(terms: dict[str, float], cfg: RewardConfig) -> float:
    return (cfg.w_pose * np.exp(-cfg.k_pose * terms["pose"]) + cfg.w_vel * np.exp(-cfg.k_vel * terms["vel"])
            + cfg.w_ee * np.exp(-cfg.k_ee * terms["ee"]) + cfg.w_root * np.exp(-cfg.k_root * terms["root"])
            + cfg.w_residual * np.exp(-cfg.k_residual * terms["residual"]))


def compose_action(sim: TrackingSim, action: np.ndarray | None, cfg: EnvConfig):
    """PD targets, root wrench and root PD (``TrackingSim.step``'s arguments): the
    training-free controller plus the scaled policy action (clipped to [-1, 1]; None: the
    training-free controller alone)."""
    ctrl, wrench, root_pd = baseline_action(sim.ref, sim.t, cfg.controller, sim.qpos, sim.qvel)
    if action is not None:
        a = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        ctrl += cfg.action_scale * a[:69]
        wrench = wrench + cfg.residual_scale * a[69:]
    return ctrl, wrench, root_pd


@functools.lru_cache(maxsize=8)
def _folder_references(path: str, names: tuple[str, ...] | None) -> tuple[Reference, ...]:
    folder = ClipFolder(path)
    return tuple(prepare_reference(folder.load(n)) for n in (names or tuple(folder)))


def load_references(motions: str | list[MotionClip] | list[Reference],
                    names: list[str] | None = None) -> list[Reference]:
    """References from a clip folder (optionally only ``names``), clips, or references."""
    if isinstance(motions, (str, bytes)) or hasattr(motions, "__fspath__"):
        return list(_folder_references(str(motions), tuple(names) if names else None))
    out = []
    for m in motions:
        out.append(m if isinstance(m, Reference) else prepare_reference(m))
    return out


class HumanoidTrackingEnv(gym.Env):
    """See the module docstring."""

    metadata = {"render_modes": ["rgb_array", "human"], "render_fps": 30}

    def __init__(self, motions=None, config: EnvConfig | dict | None = None, names: list[str] | None = None,
                 render_mode: str | None = None, width: int = 480, height: int = 360):
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode {render_mode!r} is not one of {self.metadata['render_modes']}")
        self.cfg = from_dict(EnvConfig, config) if isinstance(config, dict) else (config or EnvConfig())
        self.refs = load_references(SAMPLE_CLIPS if motions is None else motions, names)
        if not self.refs:
            raise ValueError("no reference clips to track")
        self.render_mode, self._render_size, self._renderer = render_mode, (height, width), None
        self._window, self._shown_at = None, 0.0
        if render_mode == "human":
            from ..visualization.viewer import check_display

            check_display()  # now, not at the first step
        self.sim = TrackingSim(self.cfg.sim)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim(self.cfg.future_frames),), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32)
        lo, hi = self.cfg.clip_weight_min_frames, self.cfg.clip_weight_max_frames
        self._lengths = np.clip([r.num_frames - 1 for r in self.refs], lo, hi or None).astype(np.float64)
        self.set_clip_weights(None)
        self._steps = 0
        self.ref_index = 0

    def set_clip_weights(self, weights: np.ndarray | None) -> None:
        """Sample clips with probability proportional to their (clamped) length x ``weights``
        (one per clip; None: by length alone). The trainer raises the weight of clips that keep failing."""
        p = self._lengths if weights is None else self._lengths * np.asarray(weights, np.float64)
        self._clip_p = p / p.sum()

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        rng = self.np_random
        if "clip" in options:
            idx = int(options["clip"])
        else:
            idx = int(rng.choice(len(self.refs), p=self._clip_p))
        ref = self.refs[idx]
        if "frame" in options:
            start = int(options["frame"])
        elif self.cfg.random_start:
            start = int(rng.integers(0, max(1, ref.num_frames - 1)))
        else:
            start = 0
        self.ref_index = idx
        legs = self.cfg.reference_legs
        true = None
        info = {"clip": ref.name, "frame": start}
        if legs.probability and rng.random() < legs.probability:
            scale = float(rng.uniform(*legs.swing_scale))
            shift = int(rng.integers(legs.delay_frames[0], legs.delay_frames[1] + 1))
            stop = min(ref.num_frames, start + self.cfg.max_episode_steps + 2)
            true = reference_window(ref, start, stop)
            ref = degraded_reference(ref, start, stop, scale, shift, legs.window, self.cfg.controller)
            start = 0
            info.update(swing_scale=scale, delay_frames=shift)
        self.sim.load(ref)
        self.sim.reset(start)
        if true is not None:  # a fall is a fall from the true clip, and the body starts in its state
            self.sim.fall_reference = true
            self.sim.set_state(true.qpos[0], true.qvel[0])
        self._steps = 0
        if self.render_mode == "human":
            self._show()
        return observe(self.sim, future_frames=self.cfg.future_frames), info

    @property
    def true_reference(self) -> Reference | None:
        """The true clip's window the reward (and the fall test) scores when the reference shown
        is degraded; None when the reference shown is the true one."""
        return self.sim.fall_reference

    def step(self, action):
        sim, cfg = self.sim, self.cfg
        reason = sim.step(*compose_action(sim, action, cfg))
        self._steps += 1
        terms = reward_terms(sim, cfg.residual_scale, self.true_reference)
        r = float(reward(terms, cfg.reward))
        terminated = reason is not None
        truncated = not terminated and (sim.done or self._steps >= cfg.max_episode_steps)
        info = {"reason": reason, "frame": sim.t, "wrench": float(np.linalg.norm(sim.last_wrench)),
                "completed": bool(truncated)}
        if self.render_mode == "human":
            self._show()
        return observe(sim, future_frames=cfg.future_frames), (0.0 if reason == "unstable" else r), terminated, truncated, info

    def _show(self) -> None:
        """``render_mode="human"``: the current state in the viewer window (one per scene model),
        the reference frame the body follows as a ghost, paced to ``render_fps``."""
        import time

        from ..visualization.viewer import Window

        sim = self.sim
        if self._window is None or self._window.model is not sim.model:  # scenes compile their own models
            self._close_window()
            self._window = Window(sim.model, sim.data)
        ghost = sim.ref.body_pos[min(sim.t, sim.ref.num_frames - 1)]
        self._window.show(None, ghost, f"{sim.ref.name}  frame {sim.t}")
        wait = self._shown_at + 1.0 / self.metadata["render_fps"] - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        self._shown_at = time.perf_counter()

    def _close_window(self) -> None:
        if self._window is not None:
            self._window.close()
            self._window = None

    def render(self) -> np.ndarray | None:
        """The simulated body (and its scene) from a camera 3.5 m away that follows the pelvis
        from its left side, as an RGB array; None unless made with ``render_mode="rgb_array"``
        (``"human"`` shows every step in a window by itself)."""
        if self.render_mode != "rgb_array":
            return None
        import mujoco

        from ..visualization.render import make_renderer

        sim = self.sim
        if self._renderer is None or self._renderer.model is not sim.model:  # scenes compile their own models
            if self._renderer is not None:
                self._renderer.close()
            self._renderer = make_renderer(sim.model, *self._render_size)
        cam = mujoco.MjvCamera()
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        cam.lookat[:] = sim.data.qpos[:3]
        forward = sim.data.xmat[1].reshape(3, 3)[:, 0]  # pelvis x axis, world frame
        cam.azimuth = math.degrees(math.atan2(forward[1], forward[0])) - 90.0
        cam.elevation, cam.distance = -15.0, 3.5
        self._renderer.update_scene(sim.data, camera=cam)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self._close_window()


def reference_window(ref: Reference, start: int, stop: int) -> Reference:
    """Frames ``start .. stop - 1`` of ``ref`` as a reference of their own (frame 0 = ``start``)."""
    w = slice(start, stop)
    return replace(ref, clip=ref.clip.slice(start, stop), qpos=ref.qpos[w], qvel=ref.qvel[w], qacc=ref.qacc[w],
                   body_pos=ref.body_pos[w], root_rot=ref.root_rot[w], ff_ctrl=ref.ff_ctrl[w],
                   root_wrench=ref.root_wrench[w],
                   discontinuities=ref.discontinuities[(ref.discontinuities >= start) & (ref.discontinuities < stop - 1)] - start)


def degraded_reference(ref: Reference, start: int, stop: int, scale: float, shift: int, window: int,
                       controller) -> Reference:
    """Frames ``start .. stop - 1`` of ``ref``'s clip with degraded legs (:func:`degraded_legs`
    over the whole clip, so the delay and the moving average see the frames before ``start``),
    prepared with the feed-forward ``controller`` reads."""
    clip = replace(ref.clip, qpos=degraded_legs(ref.qpos, scale, shift, window))
    return prepare_reference(clip.slice(start, stop), feedforward_mode(controller))

