"""The dynamics-regulated loop (SPEC section 3): every frame the kinematic policy reads the
*simulated* pose and the egocentric observation and proposes the next pose; the tracking
controller (:mod:`kinpoly.simulation`) drives the humanoid in MuJoCo towards it; the simulated
pose is the next state. The output obeys physics because it *is* the simulation.

Per frame t (simulated state s_t, policy hidden h_t):

1. the policy proposes the next pose ``q_{t+1} = integrate(s_t, a_t)`` (committed; during
   training ``a_t`` is sampled around the policy's mean) and, from ``q_{t+1}`` with a copy of
   the hidden state, a look-ahead pose ``q_{t+2}`` (not committed): the controller reads its
   target two frames ahead and the next frame's velocity;
2. both are written into an :class:`~kinpoly.simulation.reference.OnlineReference` (which
   updates velocities and inverse-dynamics feed-forward for exactly those frames);
3. the controller (PD, plus the learned residual policy when given) steps the simulation to
   t+1. The inverse-dynamics feed-forward of the training-free controller is off in the loop
   by default (:func:`loop_env_config`): measured on 6 held-out takes with the supervised
   policy, with it the humanoid falls 5.7 times per 100 frames (MPJPE 211 mm), without it
   0.5 times (133 mm): finite differences of frame-by-frame proposals are too noisy for
   inverse dynamics. Integrating each proposal from the previous proposal instead of the
   simulated pose was measured too, and is worse (4.3 falls per 100 frames).

Falls. Two things end tracking at a frame, recorded as a fall ``(frame, reason)``:

- ``"fell"`` / ``"unstable"``: the humanoid cannot follow the proposals (mean body distance to
  the kinematic pose > 0.5 m, or a numerical blow-up); it is put back on the kinematic pose;
- ``"lost_head"``: the simulated eyes are more than ``head_fall_distance`` (0.4 m) from the
  observed camera position. Feeding the simulated pose back means a body that sags under
  gravity takes its proposals down with it, so the body-to-proposal distance alone cannot see
  it; the camera trajectory can. The estimate restarts from a pose the context encoder infers
  from the observations at that frame (during training: from the ground truth), moving with
  the camera (:meth:`RegulatedLoop.restart`). The camera is checked again ``restart_grace``
  (5) frames after a restart, not at once: a restart pose that cannot reach the camera (a
  standing pose for a wearer who squats, since a pose is lifted out of the floor) would
  otherwise restart every frame, a teleport per frame (measured on a real Aria trajectory;
  the 28 test takes never restart twice within 5 frames, so their estimates are unchanged).

So every take still yields a whole motion; "no-fall success" counts takes without a fall.

Rewards for dynamics-regulated training (:meth:`RegulatedLoop.reward_terms` and
:meth:`RegulatedLoop.reward`, SPEC weights) are computed on the way when ground truth is given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import rotations as rot
from ..humanoid.kinematics import forward_kinematics
from ..humanoid.scene import SceneObject
from ..humanoid.skeleton import BODY_INDEX, NUM_BODIES
from ..motion.clip import MotionClip, ObjectTrack
from .data import TakeTensors
from .model import ContextEncoder, KinematicPolicy, Observation, integrate, policy_state
from .torch_kinematics import TorchFK

HEAD = BODY_INDEX["Head"]


@dataclass
class RewardConfig:
    """SPEC section 3: weight and gain of each ``exp(-k err)`` term."""

    w_head_pos: float = 0.15
    k_head_pos: float = 45.0  # squared eye position error (m^2)
    w_head_rot: float = 0.15
    k_head_rot: float = 45.0  # squared head rotation angle (rad^2)
    w_rot_kin: float = 0.2
    k_rot_kin: float = 50.0  # mean squared body rotation angle to the kinematic pose
    w_pos_kin: float = 0.2
    k_pos_kin: float = 50.0  # mean squared body position error to the kinematic pose
    w_rot_gt: float = 0.2
    k_rot_gt: float = 5.0  # mean squared body rotation angle to the ground truth
    w_angvel: float = 0.1
    k_angvel: float = 0.05  # squared root angular velocity error to the kinematic motion


@dataclass
class Episode:
    """One take run through the loop (T frames)."""

    name: str
    sim_qpos: np.ndarray  # (T, 76) the simulated motion (the estimate)
    kin_qpos: np.ndarray  # (T, 76) the kinematic policy's proposals
    object_poses: np.ndarray  # (T, K, 7) simulated scene objects
    falls: list[tuple[int, str]]  # (frame, reason) where the humanoid was put back
    wrench: np.ndarray  # (T-1, 6) applied residual root wrench
    seconds: float
    # training record (filled when ``record`` is set), one row per transition t -> t+1
    states: np.ndarray | None = None  # (T-1, S) policy input
    hiddens: np.ndarray | None = None  # (T-1, H) policy hidden state before the step
    actions: np.ndarray | None = None  # (T-1, 82)
    means: np.ndarray | None = None  # (T-1, 82) the policy's mean action
    rewards: np.ndarray | None = None  # (T-1,)
    reward_terms: dict = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return not self.falls


def lift_above_floor(q: torch.Tensor, body) -> torch.Tensor:
    """Raise a (1, 76) pose so that no foot body is below its standing height (a start pose in
    the floor would be shot out of it by the contact solver); never lowers it."""
    from ..simulation.reference import FOOT_BODIES

    idx = [BODY_INDEX[n] for n in FOOT_BODIES]
    rest = body.pelvis_height() + body.rest_positions()[idx, 2]
    z = forward_kinematics(q[0].double().numpy(), body).positions[0, idx, 2]
    lift = max(0.0, float(np.max(rest - z)))
    out = q.clone()
    out[0, 2] += lift
    return out


def pose_on_motion(motion: torch.Tensor, frame: int, body) -> torch.Tensor:
    """The (1, 76) start or restart pose at ``frame`` of a tracked motion, lifted out of the floor."""
    return lift_above_floor(motion[frame:frame + 1].float(), body)


def motion_targets(motion: torch.Tensor, start: int, t: int, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The targets written after window frame ``t`` when a given motion is tracked (a window of
    ``T`` frames from take frame ``start``): its frames ``t + 1`` and ``t + 2`` (the first
    twice at the window's end), each (1, 76)."""
    q1 = motion[start + t + 1][None].float()
    return q1, (motion[start + t + 2][None].float() if t + 2 < T else q1)


def loop_env_config(env_cfg, feedforward: bool | str = False):
    """A copy of a controller's EnvConfig for the loop. ``feedforward``: False / ``"off"``
    (the default; see the module docstring), True / ``"full"`` (the motion's inverse dynamics)
    or ``"static"`` (the torques that hold each proposal still against gravity:
    ``ControllerConfig.static_feedforward``)."""
    import copy

    from ..simulation.reference import FEEDFORWARD_MODES

    mode = {False: "off", True: "full"}.get(feedforward, feedforward)
    if mode not in FEEDFORWARD_MODES:
        raise ValueError(f"feed-forward {feedforward!r}: expected one of {FEEDFORWARD_MODES}")
    cfg = copy.deepcopy(env_cfg)
    cfg.controller.feedforward = mode != "off"
    cfg.controller.static_feedforward = mode == "static"
    return cfg


def take_objects(meta: dict, object_world: np.ndarray | None) -> list[ObjectTrack]:
    """The take's scene objects with their world poses (none when the take has no scene)."""
    specs = meta.get("objects") or []
    if object_world is None or not specs or object_world.ndim != 3 or object_world.shape[1] != len(specs):
        return []
    return [ObjectTrack(SceneObject.from_dict(d), np.asarray(object_world[:, k], dtype=np.float64))
            for k, d in enumerate(specs)]


def _angle_sq(Ra: np.ndarray, Rb: np.ndarray) -> np.ndarray:
    """Squared rotation angle between (..., 3, 3) rotations."""
    tr = np.einsum("...ij,...ij->...", Ra, Rb)
    return np.arccos(np.clip((tr - 1.0) / 2.0, -1.0, 1.0)) ** 2


class RegulatedLoop:
    """A kinematic policy and a tracking controller run together over egocentric takes.

    ``controller``: a callable ``sim -> residual action`` (the learned controller, e.g.
    :class:`kinpoly.simulation.evaluate.PolicyController`) or None for the training-free one;
    ``env_cfg``: the controller's :class:`~kinpoly.simulation.env.EnvConfig`.
    """

    def __init__(self, policy: KinematicPolicy, context: ContextEncoder | None, env_cfg,
                 controller=None, reward_cfg: RewardConfig | None = None, head_fall_distance: float = 0.4):
        from ..simulation.sim import TrackingSim

        self.policy, self.context, self.env_cfg, self.controller = policy, context, env_cfg, controller
        # optional edit of the controller's targets before it tracks them (e.g. the leg refiner,
        # kinpoly.policy.leg_refiner): (targets (2, 76): the proposal and its look-ahead, sim,
        # take, take frame of the proposal) -> targets; None: the policy's proposals as they are
        self.target_filter = None
        # True: the reference frame the body is at is rewritten to the simulated pose before each
        # proposal is written, so the feed-forward's velocity and acceleration run from where the
        # body is to the proposal (False: from the previous proposal, another simulated anchor)
        self.anchor_on_simulation = False
        # an encoder of the pose at a restart from the observations *up to* it, newest first
        # (ContextEncoder.pose_before; kinpoly.policy.restart_context), or None: the context
        # encoder on the observations from the restart on, as at the first frame
        self.restart_context: ContextEncoder | None = None
        self.head_fall_distance = head_fall_distance
        self.restart_grace = 5  # frames after a restart before the camera is checked again
        self.reward_cfg = reward_cfg or RewardConfig()
        self.fk = TorchFK()
        self.sim = TrackingSim(env_cfg.sim)

    # --- pieces -----------------------------------------------------------------------------
    def first_pose(self, take: TakeTensors, start: int = 0, from_truth: bool = False) -> torch.Tensor:
        """The pose to start (or restart) at frame ``start``: the truth, or the context
        encoder's estimate lifted out of the floor (:func:`lift_above_floor`)."""
        if from_truth and take.qpos is not None:
            return take.qpos[start:start + 1].clone()
        if self.context is None:
            raise ValueError(f"{take.name}: no context encoder to estimate the first pose")
        with torch.no_grad():
            q = self.context.take_pose(take, start)
        return lift_above_floor(q, take.body)

    def restart_pose(self, take: TakeTensors, frame: int) -> torch.Tensor:
        """The pose to restart at ``frame`` from the observations up to it
        (:attr:`restart_context`), lifted out of the floor."""
        with torch.no_grad():
            q = self.restart_context.pose_before(take, frame)
        return lift_above_floor(q, take.body)

    def _feature(self, take: TakeTensors):
        return take.feature if (take.feature is not None and self.policy.cfg.feature_dim) else None

    def _obs(self, take: TakeTensors, t: int) -> Observation:
        feat = self._feature(take)
        return Observation(head_pose=take.head_pose[t:t + 1], head_vels=take.head_vels[t:t + 1],
                           obj=take.obj[t:t + 1], action=take.action[None],
                           feature=None if feat is None else feat[t:t + 1])

    def _propose(self, q: torch.Tensor, take: TakeTensors, t: int, h: torch.Tensor):
        """State and mean action at pose ``q`` for observation frame ``t``."""
        state = policy_state(q, self._obs(take, t), self.fk, take.offsets[None], take.eye[None])
        mean, h_new = self.policy.step(state, h)
        return state, mean, h_new

    def propose(self, take: TakeTensors, start: int, t: int, T: int, q_cur: torch.Tensor, h: torch.Tensor,
                noise: torch.Tensor | None):
        """From pose ``q_cur`` at window frame ``t``: the committed next pose (mean action plus
        ``noise``), the look-ahead pose after it, the new hidden state and the training record
        ``(state, hidden before, action, mean)``."""
        dt, cfg = 1.0 / take.fps, self.policy.cfg
        state, mean, h_next = self._propose(q_cur, take, start + t + 1, h)
        action = mean if noise is None else mean + noise
        q1 = integrate(q_cur, action, dt, cfg)
        q2 = q1
        if t + 2 < T:
            _, mean2, _ = self._propose(q1, take, start + t + 2, h_next)
            q2 = integrate(q1, mean2, dt, cfg)
        return q1, q2, h_next, (state, h, action, mean)

    # --- one take ---------------------------------------------------------------------------
    def run(self, take: TakeTensors, objects: list[ObjectTrack] = (), **options) -> Episode:
        """Run frames ``start .. start + length - 1`` of ``take`` (all by default); the
        options are :meth:`rollout`'s."""
        frames = self.rollout(take, objects, **options)
        while True:
            try:
                next(frames)
            except StopIteration as done:
                return done.value

    @torch.no_grad()
    def rollout(self, take: TakeTensors, objects: list[ObjectTrack] = (), *, start: int = 0,
                length: int | None = None, from_truth: bool = False, noise_std: float = 0.0,
                rng: np.random.Generator | None = None, record: bool = False,
                truth_proposals: bool | np.ndarray = False, motion: torch.Tensor | None = None,
                capacity: int | None = None, on_frame=None):
        """:meth:`run` as a generator that says before reading observations how far it reads:
        it yields ``(frame, kind)``, "the observations up to take frame ``frame`` are read
        next" (``kind``: "step", the next proposals; "context", the context encoder's window
        for a (re)start), and returns the :class:`Episode`. :meth:`run` resumes it at once;
        a live stream (:class:`kinpoly.policy.streaming.StreamingEstimator`) resumes it when
        those frames have arrived, reading ``take.num_frames`` as the frames with an
        observation so far. ``capacity``: reference frames to allocate (default: the take's);
        ``on_frame(t, reason)`` is called when simulated window frame ``t`` is final
        (``reason``: the fall that restarted it, or None).

        ``motion`` (take frames x 76, e.g. the kinematic policy's own motion, run without
        physics): track it instead of proposing from the simulated state. No feedback: the
        controller's targets are its frames, the body starts and restarts on it (lifted out of
        the floor), the policy does not run, and the reference is consistent from frame to
        frame, as the inverse-dynamics feed-forward needs.

        ``truth_proposals`` (a diagnosis, needs the ground truth): the controller's targets are
        the true next poses instead of the policy's, so the falls left are the controller's
        (the policy still runs, so the speed is the same); a boolean mask over the pose's
        values (76) takes only those from the truth, the rest from the policy (e.g. the true
        legs under the policy's upper body)."""
        from ..simulation.env import compose_action

        def window_frames() -> int:  # re-read: a live stream's take grows while it runs
            n = take.num_frames - start
            return n if length is None else min(length, n)

        T = window_frames()
        if T < 2:
            raise ValueError(f"{take.name}: needs at least 2 frames, has {T}")
        truth_mask = None
        if truth_proposals is not False:
            if take.qpos is None:
                raise ValueError(f"{take.name}: ground-truth proposals need the take's ground truth")
            truth_mask = torch.ones(take.qpos.shape[1], dtype=torch.bool) if truth_proposals is True \
                else torch.as_tensor(np.asarray(truth_proposals, dtype=bool))
            if truth_mask.shape != (take.qpos.shape[1],):
                raise ValueError(f"truth_proposals: a mask of {take.qpos.shape[1]} values, got {tuple(truth_mask.shape)}")
        if motion is not None and (record or truth_mask is not None):
            raise ValueError("a fixed motion is tracked without proposals: no record, no truth_proposals")
        if motion is not None and tuple(motion.shape) != (take.num_frames, 76):
            raise ValueError(f"{take.name}: a motion to track has one 76-value pose per frame of the take "
                             f"({take.num_frames}, 76), got {tuple(motion.shape)}")
        t_start = time.perf_counter()
        # the context window's last frame, counted from the frame it (re)starts at
        reach = self.context.cfg.context_frames - 1 if self.context is not None else 0
        yield start + reach, "context"
        q = self.first_pose(take, start, from_truth) if motion is None else pose_on_motion(motion, start, take.body)
        ref, objs = self.load_window(take, objects, start, capacity or T, q)
        sim = self.sim
        h = self.policy.initial_hidden(1)
        gt = take.qpos[start:start + T].double().numpy() if (record and take.qpos is not None) else None

        def commit(t: int, q_cur: torch.Tensor, h_cur: torch.Tensor):
            if motion is not None:
                return *motion_targets(motion, start, t, T), h_cur, None
            eps = None
            if noise_std > 0:
                eps = noise_std * torch.as_tensor(rng.standard_normal((1, 82)), dtype=torch.float32)
            q1, q2, h_new, row = self.propose(take, start, t, window_frames(), q_cur, h_cur, eps)
            if truth_mask is not None:
                last = take.num_frames - 1
                t1 = take.qpos[min(start + t + 1, last)][None]
                t2 = take.qpos[min(start + t + 2, last)][None] if t + 2 < T else t1
                q1, q2 = torch.where(truth_mask, t1, q1), torch.where(truth_mask, t2, q2)
            return q1, q2, h_new, row

        yield start + 2, "step"
        q1, q2, h_next, row = commit(0, q, h)
        ref.write(1, torch.cat([q1, q2]).double().numpy())
        sim.reset(0)
        rows, falls, wrench, objects_out, sim_q = [], [], [], [sim.object_poses()], [sim.qpos.copy()]
        if on_frame is not None:
            on_frame(0, None)
        rewards, terms_all = [], []
        kin = [q.double().numpy()[0], q1.double().numpy()[0]]
        last_restart = -self.restart_grace
        t = -1
        while t + 2 < window_frames():
            t += 1
            rows.append(row)
            action = self.controller(sim) if self.controller is not None else None
            reason = sim.step(*compose_action(sim, action, self.env_cfg))
            wrench.append(sim.last_wrench.copy())
            if reason is not None:  # could not follow: record, continue from the kinematic pose
                falls.append((t + 1, reason))
                sim.reset(t + 1)
            elif t + 1 - last_restart >= self.restart_grace and \
                    self.head_distance(take, start + t + 1) > self.head_fall_distance:
                falls.append((t + 1, "lost_head"))
                reason, last_restart = "lost_head", t + 1
                if motion is not None:
                    q_new = pose_on_motion(motion, start + t + 1, take.body)
                elif gt is not None or (from_truth and take.qpos is not None):
                    q_new = take.qpos[start + t + 1:start + t + 2]
                elif self.restart_context is not None:
                    q_new = self.restart_pose(take, start + t + 1)
                else:
                    yield start + t + 1 + reach, "context"
                    q_new = self.first_pose(take, start + t + 1)
                self.restart(take, start + t + 1, t + 1, q_new.double().numpy()[0])
                h_next = self.policy.initial_hidden(1)
            sim_q.append(sim.qpos.copy())
            objects_out.append(sim.object_poses())
            if on_frame is not None:
                on_frame(t + 1, reason)
            if gt is not None:
                terms = self.reward_terms(take, start + t + 1, gt[t + 1])
                terms_all.append(terms)
                rewards.append(0.0 if reason else self.reward(terms))
            if t + 2 >= window_frames():
                break
            yield start + t + 3, "step"
            q_sim = torch.as_tensor(sim.qpos, dtype=torch.float32)[None]
            q1, q2, h_next, row = commit(t + 1, q_sim, h_next)
            targets = torch.cat([q1, q2]).double().numpy()
            if self.target_filter is not None:
                targets = self.target_filter(targets, sim, take, start + t + 2)
            if self.anchor_on_simulation:
                ref.write(t + 1, np.concatenate([sim.qpos[None], targets]))
            else:
                ref.write(t + 2, targets)
            kin.append(targets[0])
        ep = Episode(name=take.name, sim_qpos=np.asarray(sim_q), kin_qpos=np.asarray(kin),
                     object_poses=np.asarray(objects_out).reshape(len(objects_out), len(objs), 7), falls=falls,
                     wrench=np.asarray(wrench).reshape(-1, 6), seconds=time.perf_counter() - t_start)
        if record:
            ep.states = torch.cat([r[0] for r in rows]).numpy()
            ep.hiddens = torch.cat([r[1] for r in rows]).numpy()
            ep.actions = torch.cat([r[2] for r in rows]).numpy()
            ep.means = torch.cat([r[3] for r in rows]).numpy()
            if rewards:
                ep.rewards = np.asarray(rewards)
                ep.reward_terms = {k: float(np.mean([x[k] for x in terms_all])) for k in terms_all[0]}
        return ep

    def load_window(self, take: TakeTensors, objects: list[ObjectTrack], start: int, T: int, q: torch.Tensor):
        """Load frames ``start .. start + T - 1`` of the take's scene into the simulator with an
        :class:`~kinpoly.simulation.reference.OnlineReference` of ``T`` frames (all ``q``
        until the proposals are written); returns it and the window's object tracks."""
        from ..simulation.reference import OnlineReference, feedforward_mode

        objs = [ObjectTrack(o.object, o.poses[start:start + T]) for o in objects]
        placeholder = MotionClip(name=take.name, qpos=np.repeat(q.double().numpy(), T, 0), fps=take.fps,
                                 body=take.body, objects=objs)
        ref = OnlineReference.create(placeholder, feedforward_mode(self.env_cfg.controller))
        self.sim.load(ref)
        return ref, objs

    def restart(self, take: TakeTensors, frame: int, t: int, q: np.ndarray) -> None:
        """Put the humanoid on pose ``q`` at window frame ``t`` (take frame ``frame``), its root
        moving horizontally at the observed camera's velocity there, and make the reference
        around ``t`` the same uniform motion. (Restarting at rest during a walk or a run leaves
        the body behind the camera at once and falls again: measured on the 28 test takes,
        3.38 -> 2.75 falls per 100 frames.)"""
        cam = take.head_pose[:, :3].double().numpy()
        a, b = max(frame - 1, 0), min(frame + 1, take.num_frames - 1)
        v = np.zeros(75)
        if b > a:
            v[:2] = (cam[b, :2] - cam[a, :2]) * take.fps / (b - a)
        step = np.zeros_like(q)
        step[:3] = v[:3] / take.fps
        self.sim.ref.write(t - 1, np.stack([q - step, q, q + step]))
        self.sim.set_state(q, v, frame=t)

    def _sim_eye(self, take: TakeTensors) -> np.ndarray:
        """World position of the simulated humanoid's eyes."""
        sim = self.sim
        return sim.body_pos[HEAD] + sim.data.xmat[HEAD + 1].reshape(3, 3) @ take.eye.double().numpy()

    def head_distance(self, take: TakeTensors, frame: int) -> float:
        """Distance (m) of the simulated eyes to the observed camera position at ``frame``."""
        return float(np.linalg.norm(self._sim_eye(take) - take.head_pose[frame, :3].double().numpy()))

    # --- rewards (SPEC section 3) ----------------------------------------------------------
    def reward_terms(self, take: TakeTensors, frame: int, gt_qpos: np.ndarray) -> dict[str, float]:
        """Error terms of the simulator's current state at take frame ``frame``."""
        sim, ref = self.sim, self.sim.ref
        t = sim.t
        R_sim = sim.data.xmat[1:NUM_BODIES + 1].reshape(-1, 3, 3)
        eye = self._sim_eye(take)
        obs = take.head_pose[frame].double().numpy()
        R_obs = rot.quat_to_matrix(obs[3:7])
        kin_states = forward_kinematics(ref.qpos[t], take.body)
        gt_states = forward_kinematics(gt_qpos, take.body)
        kin_w = ref.qvel[max(t - 1, 0), 3:6]
        return {
            "head_pos": float(np.sum((eye - obs[:3]) ** 2)),
            "head_rot": float(_angle_sq(R_sim[HEAD], R_obs)),
            "rot_kin": float(np.mean(_angle_sq(R_sim, kin_states.rotations[0]))),
            "pos_kin": float(np.mean(np.sum((sim.body_pos - ref.body_pos[t]) ** 2, -1))),
            "rot_gt": float(np.mean(_angle_sq(R_sim, gt_states.rotations[0]))),
            "angvel": float(np.sum((sim.qvel[3:6] - kin_w) ** 2)),
        }

    def reward(self, terms: dict[str, float]) -> float:
        c = self.reward_cfg
        return float(sum(getattr(c, "w_" + k) * np.exp(-getattr(c, "k_" + k) * v) for k, v in terms.items()))


def episode_clip(ep: Episode, take: TakeTensors, objects: list[ObjectTrack], meta: dict | None = None,
                 kinematic: bool = False) -> MotionClip:
    """The simulated (or, with ``kinematic``, the proposed) motion as a clip named as the take,
    with the simulated objects and the falls in ``meta``."""
    tracks = [ObjectTrack(o.object, ep.object_poses[:, k]) for k, o in enumerate(objects)]
    info = {"estimator": "kinematic proposals" if kinematic else "dynamics-regulated", "simulated": not kinematic,
            "falls": [[int(f), r] for f, r in ep.falls]}
    if ep.falls:
        info.update({"failed": True, "fail_frame": int(ep.falls[0][0]), "reason": ep.falls[0][1]})
    return MotionClip(name=take.name, qpos=ep.kin_qpos if kinematic else ep.sim_qpos, fps=take.fps,
                      body=take.body, objects=tracks, meta={**info, **(meta or {})})
