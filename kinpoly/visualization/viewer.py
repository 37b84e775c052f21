"""Interactive viewing of clips in MuJoCo's own viewer (``mujoco.viewer``; needs a display).

:class:`Playback` is what is shown: a clip's frames played at its frame rate (looping, paused,
stepped, faster or slower from the keyboard), optionally with a second motion drawn as a
translucent skeleton over it (a *ghost*: the reference a controller tracked, or the ground
truth of an estimate). :func:`view` opens the passive viewer on the clip's scene (humanoid +
objects) and plays it until the window is closed; it takes the viewer's launcher as an argument
so that the whole loop runs in tests without a display.

Keys (besides the viewer's own: mouse to orbit, double-click to select, Tab / Shift-Tab for the
panels): ``P`` pause / play, ``.`` / ``,`` one frame forward / back (pauses), ``]`` / ``[``
twice / half the speed, ``Home`` back to the first frame.

Unlike :mod:`kinpoly.visualization.render` this module does not pick a headless OpenGL backend:
the viewer opens a GLFW window on the display.
"""

from __future__ import annotations

import copy
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

import mujoco
import numpy as np

from ..errors import InputError
from ..humanoid.mjcf import ModelOptions, ScenePoser, build_model
from ..humanoid.skeleton import PARENTS
from ..motion.clip import MotionClip

# GLFW key codes (the viewer passes them to the key callback)
KEY_PAUSE, KEY_NEXT, KEY_PREVIOUS, KEY_FASTER, KEY_SLOWER, KEY_HOME = 80, 46, 44, 93, 91, 268
GHOST_RGBA = (0.95, 0.45, 0.15, 0.45)
CONTROL_FPS = 30.0  # the controller's rate: live tracking runs one control step per frame
MIN_SPEED, MAX_SPEED = 1 / 16, 16.0


class ViewerUnavailable(RuntimeError):
    """No interactive window can be opened here (no display, or no GLFW)."""


@dataclass
class Playback:
    """A clip played in time, with an optional ghost: (T', 24, 3) joint positions drawn over it.

    The ghost is matched frame by frame (the clips share their frame rate); where one of the
    two is shorter it holds its last frame.
    """

    clip: MotionClip
    ghost: np.ndarray | None = None
    speed: float = 1.0
    loop: bool = True
    paused: bool = False
    time: float = 0.0  # seconds into the clip

    def __post_init__(self) -> None:
        if self.ghost is not None:
            self.ghost = np.asarray(self.ghost, dtype=np.float64)
            if self.ghost.ndim != 3 or self.ghost.shape[1:] != (len(PARENTS), 3) or not len(self.ghost):
                raise InputError(f"ghost must be (T, {len(PARENTS)}, 3) joint positions, got {self.ghost.shape}")

    @classmethod
    def of(cls, clip: MotionClip, ghost: MotionClip | None = None, **kwargs) -> "Playback":
        """``clip``, with ``ghost``'s bodies drawn over it (the same frame rate is required)."""
        if ghost is not None and abs(ghost.fps - clip.fps) > 1e-6:
            raise InputError(f"{ghost.name} is at {ghost.fps:g} fps and {clip.name} at {clip.fps:g}: "
                             "a ghost must have the clip's frame rate")
        return cls(clip, None if ghost is None else ghost.body_states().positions, **kwargs)

    @property
    def frame(self) -> int:
        """The frame shown at :attr:`time`."""
        return min(int(self.time * self.clip.fps + 1e-9), self.clip.num_frames - 1)

    @property
    def finished(self) -> bool:
        """Played to its end without looping."""
        return not self.loop and self.time >= self.clip.duration

    def advance(self, seconds: float) -> int:
        """Move on by ``seconds`` of wall-clock time (nothing while paused); the frame to show."""
        if not self.paused:
            self.time += seconds * self.speed
            if self.time >= self.clip.duration:
                self.time = self.time % self.clip.duration if self.loop else self.clip.duration
        return self.frame

    def step(self, frames: int) -> None:
        """Pause and move ``frames`` frames (negative: back), wrapping around when looping."""
        self.paused = True
        f = self.frame + frames
        f = f % self.clip.num_frames if self.loop else min(max(f, 0), self.clip.num_frames - 1)
        self.time = f / self.clip.fps

    def key(self, keycode: int) -> None:
        """Handle one key press (see the module's docstring)."""
        if keycode == KEY_PAUSE:
            self.paused = not self.paused
        elif keycode == KEY_NEXT:
            self.step(1)
        elif keycode == KEY_PREVIOUS:
            self.step(-1)
        elif keycode == KEY_FASTER:
            self.speed = min(self.speed * 2, MAX_SPEED)
        elif keycode == KEY_SLOWER:
            self.speed = max(self.speed / 2, MIN_SPEED)
        elif keycode == KEY_HOME:
            self.time = 0.0

    def status(self) -> str:
        state = "paused" if self.paused else f"{self.speed:g}x"
        return f"{self.clip.name}  frame {self.frame + 1}/{self.clip.num_frames}  {state}"

    def ghost_positions(self, frame: int) -> np.ndarray | None:
        if self.ghost is None:
            return None
        return self.ghost[min(frame, len(self.ghost) - 1)]


def draw_skeleton(scene: mujoco.MjvScene, positions: np.ndarray, rgba=GHOST_RGBA, radius: float = 0.03) -> None:
    """Replace the geoms of ``scene`` (a viewer's ``user_scn``) with a skeleton: a sphere per
    joint of ``positions`` (24, 3) and a capsule per bone."""
    scene.ngeom = 0
    rgba = np.asarray(rgba, dtype=np.float32)
    eye3 = np.eye(3).ravel()
    for j, p in enumerate(positions):
        if scene.ngeom >= scene.maxgeom:
            return
        g = scene.geoms[scene.ngeom]
        mujoco.mjv_initGeom(g, mujoco.mjtGeom.mjGEOM_SPHERE, np.full(3, radius), p, eye3, rgba)
        scene.ngeom += 1
        parent = PARENTS[j]
        if parent >= 0 and scene.ngeom < scene.maxgeom:
            g = scene.geoms[scene.ngeom]
            mujoco.mjv_initGeom(g, mujoco.mjtGeom.mjGEOM_CAPSULE, np.zeros(3), np.zeros(3), eye3, rgba)
            mujoco.mjv_connector(g, mujoco.mjtGeom.mjGEOM_CAPSULE, radius * 0.6, positions[parent], p)
            scene.ngeom += 1


def check_display() -> None:
    """Raise :class:`ViewerUnavailable` with what to do when no window can be opened."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ViewerUnavailable("no display to open a window on (DISPLAY is not set); on a headless "
                                "machine write a video instead: kinpoly render CLIP [REFERENCE]")
    try:
        import glfw
        import mujoco.viewer  # noqa: F401  (needs the GLFW library)
    except (ImportError, RuntimeError) as e:
        raise ViewerUnavailable(f"MuJoCo's viewer cannot start: {e}") from None
    if sys.platform.startswith("linux"):  # a display that is set but cannot be opened (MuJoCo would exit)
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opened = glfw.init()
        if not opened:
            display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
            raise ViewerUnavailable(f"cannot open a window on display {display!r}; on a headless machine "
                                    "write a video instead: kinpoly render CLIP [REFERENCE]")
        # left initialised: the viewer's own glfw.init() is then a no-op (terminating here
        # and initialising again in the viewer's thread aborts in GLFW)


def _launcher():
    import mujoco.viewer

    return mujoco.viewer.launch_passive


class Window:
    """MuJoCo's passive viewer on ``model`` / ``data``, the camera following the pelvis.

    :meth:`show` updates the state under the viewer's lock (``update``: a callable that poses
    ``data``, or None when the caller's simulation already did), draws ``ghost`` joint positions over it and redraws. ``launch``: the viewer's
    ``launch_passive`` (default; checks for a display first) or a stand-in (tests).
    """

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, *, key_callback=None,
                 launch: Callable | None = None):
        if launch is None:
            check_display()
            launch = _launcher()
        self.model = model
        self._threads = set(threading.enumerate())
        try:
            self.handle = launch(model, data, key_callback=key_callback)
        except RuntimeError as e:  # e.g. macOS outside `mjpython`
            raise ViewerUnavailable(f"MuJoCo's viewer cannot start: {e}") from None
        self.handle.cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
        self.handle.cam.trackbodyid = 1  # the pelvis
        self.handle.cam.distance, self.handle.cam.elevation = 3.5, -15.0

    def is_running(self) -> bool:
        return self.handle.is_running()

    def show(self, update: Callable[[], None] | None = None, ghost: np.ndarray | None = None,
             status: str | None = None) -> None:
        with self.handle.lock():
            if update is not None:
                update()
            if ghost is not None:
                draw_skeleton(self.handle.user_scn, ghost)
            else:
                self.handle.user_scn.ngeom = 0
        if status is not None and hasattr(self.handle, "set_texts"):
            self.handle.set_texts((None, None, status, None))
        self.handle.sync()

    def close(self) -> None:
        self.handle.close()
        # the window's thread must finish tearing down GLFW before Python exits (else it hangs or crashes)
        for thread in set(threading.enumerate()) - self._threads:
            thread.join(timeout=5.0)


def view(playback: Playback, *, launch: Callable | None = None, clock: Callable[[], float] = time.perf_counter,
         sleep: Callable[[float], None] = time.sleep) -> int:
    """Show ``playback`` in MuJoCo's passive viewer until its window closes (or, without
    looping, the clip ends); returns the number of frames shown. ``launch``: see :class:`Window`."""
    clip = playback.clip
    objects = [t.object for t in clip.objects]
    model = copy.copy(build_model(clip.body, objects, ModelOptions(room=False)))  # ScenePoser moves static objects
    data = mujoco.MjData(model)
    poser = ScenePoser(model, objects)
    period = 1.0 / clip.fps

    def pose(frame: int) -> None:
        poser.pose(data, clip.qpos[frame], clip.object_poses_at(frame))
        mujoco.mj_kinematics(model, data)

    pose(playback.frame)
    window = Window(model, data, key_callback=playback.key, launch=launch)
    shown = 0
    try:
        last = clock()
        while window.is_running() and not playback.finished:
            now = clock()
            frame = playback.advance(now - last)
            last = now
            window.show(lambda: pose(frame), playback.ghost_positions(frame), playback.status())
            shown += 1
            sleep(max(0.0, period - (clock() - now)))
    finally:
        window.close()
    return shown


class LiveView:
    """Poses shown as they arrive, e.g. the frames of a live estimate (``kinpoly stream
    --view``): :meth:`show` one 76-value pose with a status line; nothing waits for a clock.
    ``launch``: see :class:`Window`."""

    def __init__(self, body, *, launch: Callable | None = None):
        self.model = copy.copy(build_model(body, [], ModelOptions(room=False)))
        self.data = mujoco.MjData(self.model)
        self._poser = ScenePoser(self.model)
        self.window = Window(self.model, self.data, launch=launch)

    def show(self, qpos: np.ndarray, status: str | None = None) -> bool:
        """Show ``qpos``; False once the window was closed (nothing is shown then)."""
        if not self.window.is_running():
            return False

        def pose() -> None:
            self._poser.pose(self.data, qpos)
            mujoco.mj_kinematics(self.model, self.data)

        self.window.show(pose, None, status)
        return True

    def close(self) -> None:
        self.window.close()


def track_live(ref, env_cfg, policy=None, *, launch: Callable | None = None,
               clock: Callable[[], float] = time.perf_counter, sleep: Callable[[float], None] = time.sleep,
               max_episodes: int | None = None, pause_after_end: float = 1.0) -> list[dict]:
    """Simulate a controller tracking ``ref`` (a prepared :class:`~kinpoly.simulation.reference.Reference`)
    in real time in the viewer, the reference drawn as a ghost. Drag a body with Ctrl and the
    right (push) or left (twist) mouse button to perturb it: the force acts on the simulation, so
    you see whether the controller recovers. A fall (or the clip's end) shows the reason for
    ``pause_after_end`` seconds and starts again from the first frame; keys: P pause, Home
    start again. Runs until the window closes (or ``max_episodes`` ended); returns each
    episode's ``frames`` and ``end`` (the termination reason, ``completed`` or ``restarted``).

    ``env_cfg``: the controller's :class:`~kinpoly.simulation.env.EnvConfig`; ``policy``: a
    callable sim -> action (None: the training-free controller).
    """
    from ..simulation.env import compose_action
    from ..simulation.sim import TrackingSim

    sim = TrackingSim(env_cfg.sim)
    sim.load(ref)
    sim.reset(0)
    keys = {"paused": False, "restart": False}

    def key(keycode: int) -> None:
        if keycode == KEY_PAUSE:
            keys["paused"] = not keys["paused"]
        elif keycode == KEY_HOME:
            keys["restart"] = True

    window = Window(sim.model, sim.data, key_callback=key, launch=launch)
    period = 1.0 / CONTROL_FPS
    episodes: list[dict] = []
    last = ref.num_frames - 1
    try:
        while window.is_running() and (max_episodes is None or len(episodes) < max_episodes):
            now = clock()
            end = None
            if not keys["paused"]:
                d = sim.data
                d.xfrc_applied[:] = 0.0
                pert = window.handle.perturb
                if pert.active:  # the user's mouse push, as MuJoCo's own viewer applies it
                    mujoco.mjv_applyPerturbForce(sim.model, d, pert)
                action = policy(sim) if policy is not None else None
                end = sim.step(*compose_action(sim, action, env_cfg)) or ("completed" if sim.done else None)
            if keys["restart"]:
                end, keys["restart"] = end or "restarted", False
            status = f"{ref.name}  frame {sim.t + 1}/{ref.num_frames}" + ("  paused" if keys["paused"] else "")
            if end:
                status += f"  {end}: again from the start"
            window.show(None, ref.body_pos[min(sim.t, last)], status)
            if end:
                episodes.append({"frames": sim.t, "end": end})
                sleep(pause_after_end)
                sim.reset(0)
            sleep(max(0.0, period - (clock() - now)))
    finally:
        window.close()
    return episodes
