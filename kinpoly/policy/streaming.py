"""Live estimation: full-body motion from a head-pose stream, one frame at a time.

An AR/VR application gets a headset's 6-DoF pose every frame and wants the body now, not after
the recording. :class:`StreamingEstimator` runs the same dynamics-regulated loop as
:class:`~kinpoly.policy.estimate.Estimator` (:meth:`RegulatedLoop.rollout`, the one
implementation of both) on poses as they arrive::

    est = StreamingEstimator()                      # head-trajectory-only policy, 30 frames/s
    for position, quaternion in headset:            # metres, wxyz; head X forward, Z up
        for frame in est.push(position, quaternion):
            show(frame.qpos)                        # (76) simulated pose of frame.frame
    est.close()                                     # the last frames
    est.clip().save("live")                         # the whole motion, as `kinpoly estimate` writes it

**Latency.** The loop reads two frames ahead (the proposal and the controller's look-ahead
target), and a head velocity is the difference to the next pose, so frame ``f`` is final once
pose ``f + 2`` has arrived: 67 ms at 30 frames/s. The first frame waits for the context
encoder's window (``context_frames``, 30: one second) once. When the simulated body loses the
camera and restarts (the loop's ``"lost_head"``), a policy file with a restart encoder (the
shipped head-trajectory-only one; :mod:`.restart_context`) restarts from the second *before*
the fall, which needs no waiting: the stream is then the offline estimate of the same policy
file, frame for frame (tested). Without one, the context encoder reads the frames after the
restart and the stream waits for at most ``lookahead`` of them (default 2): with
``lookahead`` at least the context window it is again the offline estimate exactly; below
it, the same until the first restart.

**Input.** One pose per 1/30 s (resample other rates first), positions in metres. By default
(``level=True``) the world is made kinpoly's from the first pose as ``kinpoly estimate
--head-poses`` does (:func:`~kinpoly.egocentric.trajectory.first_frame_levelling`): the declared
``world_up`` ("z" or "y"; a live stream cannot level by the whole trajectory's mean head up axis)
turned to +Z, the first frame facing +X with its eyes ``eye_height`` above the origin, which
stands for the floor. ``camera_axes`` says how the pose's rotation is written ("head": kinpoly's
X forward / Y left / Z up; "opencv", "opengl", "aria"; "unity", "unreal": a left-handed game
engine's poses and objects, mirrored, with the engine's own up when ``world_up`` is None;
:mod:`kinpoly.egocentric.trajectory`).
``level=False``: poses already in kinpoly's world (Z up, floor at z = 0, head axes), e.g. a
take's ``head_pose``. Scene objects (``objects``) are given in the same world as the poses and
levelled with them; a moving one's pose can come with each frame. A policy that reads image
features takes the head camera's image with each pose (or a ready feature): the stream computes
the optical flow to the next image and the flow encoder's feature, as a video import does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from .. import rotations as rot
from ..egocentric.take import ACTIONS, EgoDataError, action_one_hot
from ..egocentric.video import MAX_HEAD_SPEED
from ..humanoid.scene import SceneObject
from ..humanoid.skeleton import BodyShape
from ..motion.clip import MotionClip, ObjectTrack
from .data import PlaceholderTable, TakeTensors

STREAM_FPS = 30.0
INITIAL_FRAMES = 1024  # per-frame buffers at the start (34 s); they double when full
MIN_LOOKAHEAD = 2  # frames the loop reads beyond the one it simulates (see the module docstring)


@dataclass
class StreamFrame:
    """One simulated frame of a stream."""

    frame: int  # index of the pose it answers (0 = the first pushed)
    qpos: np.ndarray  # (76) the simulated humanoid's pose (root position, quaternion wxyz, 69 hinges)
    restart: str | None = None  # the fall that put the body back on a pose at this frame ("lost_head", ...)


@dataclass
class _LiveTake(TakeTensors):
    """A take whose frames arrive one at a time: tensors of ``capacity`` rows of which the first
    ``num_frames`` have their observation (a head velocity needs the next pose)."""

    available: int = 0

    @property
    def num_frames(self) -> int:
        return self.available


class StreamingEstimator:
    """Full-body motion from head poses pushed one frame at a time (see the module docstring).

    ``checkpoint``: kinematic policy (default: the head-trajectory-only policy; a policy that
    reads image features needs ``feature`` with every push); ``controller``: as
    :class:`~kinpoly.policy.estimate.Estimator`. ``action``: the take's action label (None:
    generic locomotion). ``objects``: :class:`~kinpoly.humanoid.scene.SceneObject` s in the
    input world, or a :class:`~kinpoly.egocentric.objects.SceneInput` (an objects file read:
    those on the floor are put on kinpoly's, as an import does; a moving object's pose comes
    with each push, its track is not read). ``max_frames``: the longest stream (None: no limit;
    the buffers grow by doubling, about 4 KB a frame). ``restart_context``: restarts from the policy file's restart
    encoder (None: when it has one; see the module docstring). ``placeholder_object``: without
    objects, the policy reads a table that is not there, as :class:`~.estimate.Estimator` does.
    """

    def __init__(self, checkpoint=None, controller=None, *, lookahead: int = MIN_LOOKAHEAD, level: bool = True,
                 world_up: str | None = None, camera_axes: str = "head", eye_height: float = 1.6, scale: float = 1.0,
                 action: str | None = None, objects=(), body: BodyShape | None = None,
                 max_frames: int | None = None, name: str = "stream", restart_context: bool | None = None,
                 placeholder_object: bool = True):
        from ..egocentric.trajectory import (CAMERA_AXES, ENGINES, Levelling, default_world_up,
                                             world_up_rotation)
        from .estimate import SHIPPED_HEAD_ONLY_POLICY, Estimator

        if action is not None and action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}: one of {', '.join(ACTIONS)} (or None)")
        if int(lookahead) < MIN_LOOKAHEAD:
            raise ValueError(f"lookahead {lookahead}: the loop reads {MIN_LOOKAHEAD} frames ahead, at least that")
        if camera_axes not in CAMERA_AXES:
            raise ValueError(f"camera axes {camera_axes!r}: one of {', '.join(CAMERA_AXES)}")
        world_up = world_up or default_world_up(camera_axes)
        engine = camera_axes if camera_axes in ENGINES else None
        if not (np.isfinite(scale) and scale > 0 and np.isfinite(eye_height)):
            raise ValueError(f"scale ({scale}) must be positive and eye_height ({eye_height}) finite")
        # level: the world's up turned to +Z now, the rest from the first pose (_levelled);
        # else the poses' own world, only scaled
        self.world = world_up_rotation(world_up, name) if level else None
        self._levelling = None if level else Levelling(np.eye(3), None, None, float(scale), engine=engine)
        self._engine = engine
        self.camera_axes, self.eye_height, self.scale = camera_axes, float(eye_height), float(scale)
        self.lookahead, self.name, self.action = int(lookahead), name, action
        self.max_frames = None if max_frames is None else int(max_frames)
        self.estimator = Estimator(checkpoint or SHIPPED_HEAD_ONLY_POLICY, controller, restart_context=restart_context,
                                   placeholder_object=placeholder_object)
        self.loop = self.estimator.loop
        from ..egocentric.objects import SceneInput

        if not isinstance(objects, SceneInput):  # objects as given: none moved onto the floor
            objects = SceneInput(list(objects), [None] * len(objects), [False] * len(objects), name)
        self.scene = objects
        self.objects = objects.objects
        self._floor = np.zeros(len(objects))  # heights putting objects on the floor, from the first frame
        self._placeholder = PlaceholderTable() if self.estimator.placeholder_object and not len(objects) else None
        self._placeholder_rel = None
        body = body or BodyShape()
        n = INITIAL_FRAMES if self.max_frames is None else min(INITIAL_FRAMES, self.max_frames + 1)
        feature_dim = self.estimator.policy.cfg.feature_dim
        zeros = lambda *shape: torch.zeros(shape, dtype=torch.float32)  # noqa: E731
        self.take = _LiveTake(
            name=name, fps=STREAM_FPS, head_pose=zeros(n, 7), head_vels=zeros(n, 6), obj=zeros(n, 8),
            obj_world=zeros(n, 8), action=torch.as_tensor(action_one_hot(action), dtype=torch.float32),
            feature=zeros(n, feature_dim) if feature_dim else None, qpos=None,
            offsets=torch.as_tensor(body.offsets, dtype=torch.float32),
            eye=torch.as_tensor(body.eye_offset(), dtype=torch.float32), body=body)
        self._head = np.zeros((n, 7))  # float64, as a take file holds them
        self._object_world = np.zeros((n, len(self.objects), 7))
        self._object_rel = np.zeros((n, len(self.objects), 7))  # relative to the head, as the policy reads them
        self._flow = self._encoder = None  # image input: optical flow and the flow encoder
        self._pushed = 0
        self._closed = False
        self._rollout = None
        self._request = None  # (take frame, kind) the rollout waits for
        self._outbox: list[StreamFrame] = []
        self._frames: list[StreamFrame] = []
        self._tracks: list[ObjectTrack] = []
        self.episode = None

    # --- input ----------------------------------------------------------------------------
    def push(self, position, quaternion, feature=None, object_poses=None, image=None) -> list[StreamFrame]:
        """Add the next head pose (``position`` (3) m, ``quaternion`` (4) wxyz, in the input
        world and camera axes); returns the frames that became final, in order (often none
        while the first second fills the context window, then about one per push).
        ``object_poses`` (K, 7): where the scene objects are now (default: where declared).
        A policy that reads image features needs, with every pose, either the head camera's
        ``image`` (H, W, 3) RGB, upright, from which the stream computes them as ``kinpoly estimate
        --video`` does (``encoder_view``, optical flow to the next image, the flow encoder), or
        the ``feature``. A stream cannot look ahead to tell a turned camera from the motion, so
        turn the images upright first (``kinpoly.egocentric.video.turn_upright``, as ``kinpoly
        stream --video-rotation`` does)."""
        if self._closed:
            raise RuntimeError(f"{self.name}: the stream is closed")
        k = self._pushed
        if self.max_frames is not None and k >= self.max_frames:
            raise EgoDataError(f"{self.name}: the stream is longer than max_frames={self.max_frames} "
                               f"({self.max_frames / STREAM_FPS:.0f} s); make the StreamingEstimator with a larger one")
        if k + 2 > len(self._head):  # room for this pose and the last frame's velocity
            self._grow(2 * len(self._head))
        pos = np.asarray(position, dtype=np.float64).reshape(-1)
        quat = np.asarray(quaternion, dtype=np.float64).reshape(-1)
        if pos.shape != (3,) or quat.shape != (4,):
            raise ValueError(f"{self.name} frame {k}: a position (3) and a quaternion wxyz (4), "
                             f"got {pos.shape} and {quat.shape}")
        if not (np.isfinite(pos).all() and np.isfinite(quat).all()):
            raise EgoDataError(f"{self.name} frame {k}: the head pose contains NaN/inf")
        if abs(np.linalg.norm(quat) - 1.0) > 1e-2:
            raise EgoDataError(f"{self.name} frame {k}: non-unit quaternion (norm {np.linalg.norm(quat):.4f}; wxyz)")
        head = self._levelled(pos, quat)
        if k:  # the same hemisphere as the pose before, as a whole take's
            head[3:] = rot.quat_continuous(np.stack([self._head[k - 1, 3:], head[3:]]))[1]
        step = np.linalg.norm(head[:3] - self._head[k - 1, :3]) if k else 0.0
        if step * STREAM_FPS > MAX_HEAD_SPEED:
            raise EgoDataError(f"{self.name} frame {k}: the head moved {step:.2f} m in one frame, faster than a "
                               f"person's {MAX_HEAD_SPEED:g} m/s (a tracking jump, or not metres at 30 frames/s)")
        self._head[k] = head
        self.take.head_pose[k] = torch.as_tensor(head, dtype=torch.float32)
        self._set_objects(k, object_poses)
        self._set_feature(k, feature, image)
        self._pushed = k + 1
        if k:
            self._set_velocity(k - 1)
        self.take.available = k  # frame k's velocity waits for pose k + 1
        return self._advance()

    def close(self) -> list[StreamFrame]:
        """End the stream: simulate the frames left; returns them."""
        if self._closed:
            return []
        self._closed = True
        n = self._pushed
        if n < 2:
            raise EgoDataError(f"{self.name}: a stream needs at least 2 poses, got {n}")
        self._set_velocity(n - 1, last=True)
        if self._flow is not None:  # the last frame repeats the flow before it, as a video's does
            self.take.feature[n - 1] = self.take.feature[n - 2]
        self.take.available = n
        self._fit_reference()
        return self._advance()

    # --- output ---------------------------------------------------------------------------
    @property
    def frames(self) -> list[StreamFrame]:
        """Every final frame so far."""
        return list(self._frames)

    def estimate(self):
        """The closed stream's :class:`~kinpoly.policy.estimate.Estimate` (the simulated motion
        with its objects and falls, the proposals, the residual wrench; no ground truth), which
        :func:`~kinpoly.policy.estimate.write_estimate` writes as ``kinpoly estimate`` does."""
        from .estimate import Estimate
        from .regulated import episode_clip

        if self.episode is None:
            raise RuntimeError(f"{self.name}: close() the stream first")
        ep = self.episode
        meta = {"checkpoint": str(self.estimator.checkpoint), "take": self.name,
                "estimator": {**self.estimator.settings, "live_lookahead": self.lookahead}}
        clip = episode_clip(ep, self.take, self._tracks, meta)
        proposals = episode_clip(ep, self.take, self._tracks, meta, kinematic=True)
        clip.action = proposals.action = self.action
        return Estimate(self.name, clip, None, proposals, ep.falls, ep.seconds, ep.wrench)

    def clip(self) -> MotionClip:
        """The whole simulated motion of a closed stream (objects, falls in ``meta``)."""
        return self.estimate().clip

    # --- internals ------------------------------------------------------------------------
    def _levelled(self, pos: np.ndarray, quat: np.ndarray) -> np.ndarray:
        from ..egocentric.trajectory import Trajectory, first_frame_levelling, head_rotations

        R, p = head_rotations(Trajectory(pos=pos[None], quat=quat[None], camera_axes=self.camera_axes,
                                         source=self.name))
        if self._levelling is None:  # the first pose
            self._levelling = replace(first_frame_levelling(R[0], self.world, p, self.scale, self.eye_height),
                                      engine=self._engine)
        return self._levelling.head_poses(R, p)[0]

    def _set_objects(self, k: int, object_poses) -> None:
        from ..egocentric.features import objects_relative_to_head
        from .data import _first_object

        K = len(self.objects)
        if object_poses is None:
            if not K:
                self.take.obj[k] = self.take.obj_world[k] = torch.as_tensor(_first_object(None, 1)[0])
                if self._placeholder is not None:  # as Estimator.estimate: a table that is not there
                    self._placeholder_rel = self._placeholder.relative(self._head[k], self._placeholder_rel)
                    self.take.obj[k] = torch.as_tensor(self._placeholder_rel.astype(np.float32))
                return
            object_poses = [np.r_[o.pos, o.quat] for o in self.objects]
        poses = np.asarray(object_poses, dtype=np.float64)
        if poses.shape != (K, 7) or not np.isfinite(poses).all():
            raise EgoDataError(f"{self.name} frame {k}: object poses must be finite ({K}, 7) for the {K} "
                               f"object(s) declared, got {poses.shape}")
        if self.world is None and self._engine is None:  # kinpoly's world already: as given (a
            world = poses.copy()                             # rotation would round the quaternions)
            world[:, :3] *= self.scale
        else:
            world = self._levelling.poses(poses)
        if k == 0:
            from ..egocentric.objects import floor_offsets

            self._floor = floor_offsets(self.scene, world)
        world[:, 2] += self._floor
        self._object_world[k] = world
        rel = objects_relative_to_head(self._head[k:k + 1], world[None])[0]
        if k:  # continuous over time, as objects_relative_to_head makes a whole take's
            rel[:, 3:] = rot.quat_continuous(np.stack([self._object_rel[k - 1, :, 3:], rel[:, 3:]]))[1]
        self._object_rel[k] = rel
        rel = rel[None]
        self.take.obj[k] = torch.as_tensor(_first_object(rel, 1)[0])
        self.take.obj_world[k] = torch.as_tensor(_first_object(world[None], 1)[0])

    def _set_feature(self, k: int, feature, image) -> None:
        dim = self.estimator.policy.cfg.feature_dim
        if not dim:
            return
        if (feature is None) == (image is None) or (k and (image is None) != (self._flow is None)):
            raise EgoDataError(f"{self.name} frame {k}: the policy reads image features: give the head camera's "
                               f"image or the {dim}-d feature with every pose, the same one each time (or use "
                               f"the head-trajectory-only policy, the default)")
        if image is not None:
            return self._set_image(k, image)
        f = np.asarray(feature, dtype=np.float32).reshape(-1)
        if f.shape != (dim,) or not np.isfinite(f).all():
            raise EgoDataError(f"{self.name} frame {k}: image feature must be finite ({dim},), got {f.shape}")
        self.take.feature[k] = torch.as_tensor(f)

    def _set_image(self, k: int, image) -> None:
        """Frame ``k - 1``'s feature: the flow from image k - 1 to image ``k`` through the flow
        encoder (:mod:`kinpoly.egocentric.flow`), as ``import_video`` computes a whole video's."""
        from ..egocentric.flow import FlowComputer, load_encoder
        from ..egocentric.video import VIDEO_SIZE, encoder_view

        rgb = np.asarray(image)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise EgoDataError(f"{self.name} frame {k}: an image is (H, W, 3) RGB uint8, got {rgb.shape} {rgb.dtype}")
        if self._flow is None:
            self._encoder = load_encoder()
            self._flow = FlowComputer(self._encoder.size)
        if rgb.shape[:2] != (VIDEO_SIZE[1], VIDEO_SIZE[0]):
            rgb = encoder_view(rgb, *VIDEO_SIZE)  # as import_video reads a video's frames
        flow = self._flow.push(rgb)
        if flow is not None:
            self.take.feature[k - 1] = torch.as_tensor(self._encoder.encode(flow[None])[0][0])

    def _set_velocity(self, k: int, last: bool = False) -> None:
        """Frame ``k``'s head velocity, from poses k and k + 1 (``last``: k - 1 and k, the end of
        the stream), as :func:`~kinpoly.egocentric.features.head_velocities` gives a whole take."""
        from ..egocentric.features import head_velocities

        pair = head_velocities(self._head[k - 1:k + 1] if last else self._head[k:k + 2], STREAM_FPS)
        self.take.head_vels[k] = torch.as_tensor(pair[1 if last else 0], dtype=torch.float32)

    def _ready(self) -> bool:
        """Whether the rollout's next request can be served now."""
        frame, kind = self._request
        if self._closed or frame < self.take.available:
            return True
        # a restart's context window: at most ``lookahead`` frames after the restart frame
        restart = frame - (self.loop.context.cfg.context_frames - 1)
        return kind == "context" and restart > 0 and self.take.available >= restart + self.lookahead

    def _advance(self) -> list[StreamFrame]:
        if self._rollout is None:
            if self.take.available < 2 and not self._closed:
                return []
            objects = [ObjectTrack(_levelled_object(o, self._object_world[0, i]), self._object_world[:, i])
                       for i, o in enumerate(self.objects)]
            self._tracks = objects
            self._rollout = self.loop.rollout(self.take, objects, capacity=len(self._head),
                                              on_frame=self._emit)
            self._request = (0, "start")
        while self._request[1] == "start" or (self._request[1] != "done" and self._ready()):
            try:
                self._request = next(self._rollout)
                self._fit_reference()  # loaded just now: nothing is written before the next request
            except StopIteration as done:
                self.episode = done.value
                self._request = (np.inf, "done")
                break
        out, self._outbox = self._outbox, []
        return out

    def _grow(self, n: int) -> None:
        """Make every per-frame buffer ``n`` frames long (the rows so far kept)."""
        def more(x):
            pad = (n - x.shape[0],) + tuple(x.shape[1:])
            return torch.cat([x, x.new_zeros(pad)]) if isinstance(x, torch.Tensor) else np.concatenate([x, np.zeros(pad)])

        t = self.take
        t.head_pose, t.head_vels, t.obj, t.obj_world = map(more, (t.head_pose, t.head_vels, t.obj, t.obj_world))
        if t.feature is not None:
            t.feature = more(t.feature)
        self._head, self._object_world, self._object_rel = map(more, (self._head, self._object_world, self._object_rel))
        ref = self.loop.sim.ref if self._rollout is not None else None
        for tracks in (self._tracks, ref.clip.objects if ref is not None else ()):
            for i, track in enumerate(tracks):  # the simulation reads a free object's pose at a reset
                track.poses = self._object_world[:, i]
        self._fit_reference()

    def _fit_reference(self) -> None:
        """The rollout's reference (None until it loads the scene) as long as the buffers while
        the stream runs, and ending with its last frame once closed, as a take's does."""
        ref = self.loop.sim.ref if self._rollout is not None else None
        if ref is not None:
            n = self._pushed if self._closed else len(self._head)
            if ref.num_frames != n:
                ref.resize(n)

    def _emit(self, t: int, reason: str | None) -> None:
        f = StreamFrame(t, self.loop.sim.qpos.copy(), reason)
        self._outbox.append(f)
        self._frames.append(f)


def _levelled_object(obj: SceneObject, pose: np.ndarray) -> SceneObject:
    from dataclasses import replace

    return replace(obj, pos=tuple(pose[:3]), quat=tuple(pose[3:7]))
