"""`kinpoly view`: playback logic, the viewer loop with a stand-in window, and the CLI."""

from __future__ import annotations

import contextlib
from dataclasses import replace

import mujoco
import numpy as np
import pytest
from click.testing import CliRunner

from kinpoly.cli import main
from kinpoly.demo import SAMPLE_CLIPS
from kinpoly.errors import InputError
from kinpoly.motion.clip import ClipFolder
from kinpoly.visualization import viewer
from kinpoly.visualization.viewer import (KEY_FASTER, KEY_HOME, KEY_NEXT, KEY_PAUSE, KEY_PREVIOUS, KEY_SLOWER,
                                          Playback, view)


@pytest.fixture(scope="module")
def step_clip():
    return ClipFolder(SAMPLE_CLIPS).load("step_03_03")  # has objects (a step and a bar)


@pytest.fixture(scope="module")
def walk_clip():
    return ClipFolder(SAMPLE_CLIPS).load("walk_02_01")


def test_playback_plays_loops_pauses_and_steps(walk_clip):
    p = Playback(walk_clip)
    T, fps = walk_clip.num_frames, walk_clip.fps
    assert p.advance(0.0) == 0
    assert p.advance(10.5 / fps) == 10
    assert p.advance(T / fps) == 10  # a whole clip later: wrapped around to the same frame
    p.key(KEY_PAUSE)
    assert p.paused and p.advance(1.0) == 10
    p.key(KEY_PREVIOUS)
    assert p.frame == 9
    p.time = 0.0
    p.key(KEY_PREVIOUS)
    assert p.frame == T - 1  # stepping back from the first frame wraps
    p.key(KEY_NEXT)
    assert p.frame == 0 and p.paused
    p.key(KEY_HOME)
    assert p.time == 0.0
    for _ in range(10):
        p.key(KEY_FASTER)
    assert p.speed == 16.0
    for _ in range(20):
        p.key(KEY_SLOWER)
    assert p.speed == 1 / 16
    assert "frame 1/" in p.status() and "paused" in p.status()


def test_playback_once_ends_on_the_last_frame(walk_clip):
    p = Playback(walk_clip, loop=False, speed=2.0)
    assert not p.finished
    assert p.advance(walk_clip.duration) == walk_clip.num_frames - 1
    assert p.finished
    p.step(5)
    assert p.frame == walk_clip.num_frames - 1  # clamped, not wrapped


def test_ghost_must_match(walk_clip, step_clip):
    p = Playback.of(walk_clip, step_clip)
    assert p.ghost.shape == (step_clip.num_frames, 24, 3)
    assert np.array_equal(p.ghost_positions(10_000), p.ghost[-1])  # the shorter one holds its last frame
    with pytest.raises(InputError, match="frame rate"):
        Playback.of(walk_clip, replace(step_clip, fps=60.0))
    with pytest.raises(InputError, match="joint positions"):
        Playback(walk_clip, ghost=np.zeros((5, 3)))


class FakeWindow:
    """Stands in for mujoco.viewer's passive handle: records what each sync would show."""

    def __init__(self, model, data, key_callback, syncs, keys=()):
        self.model, self.data, self.key_callback = model, data, key_callback
        self.cam = mujoco.MjvCamera()
        self.perturb = mujoco.MjvPerturb()  # inactive: no mouse push
        self.user_scn = mujoco.MjvScene(model, maxgeom=100)
        self.syncs, self.keys = syncs, dict(keys)
        self.shown, self.ghost_geoms, self.texts = [], [], []

    def close(self):
        self.closed = True

    def is_running(self):
        return len(self.shown) < self.syncs

    def lock(self):
        return contextlib.nullcontext()

    def set_texts(self, texts):
        self.texts.append(texts[2])

    def sync(self):
        if len(self.shown) in self.keys:
            self.key_callback(self.keys[len(self.shown)])
        self.shown.append(self.data.qpos.copy())
        self.ghost_geoms.append(self.user_scn.ngeom)


def run_view(playback, syncs, keys=()):
    windows = []

    def launch(model, data, key_callback):
        windows.append(FakeWindow(model, data, key_callback, syncs, keys))
        return windows[0]

    now = [0.0]

    def sleep(seconds):  # each frame takes exactly one frame period
        now[0] += 1 / playback.clip.fps

    n = view(playback, launch=launch, clock=lambda: now[0], sleep=sleep)
    return n, windows[0]


def test_view_shows_every_frame_in_real_time_with_objects_and_ghost(step_clip, walk_clip):
    n, win = run_view(Playback.of(step_clip, walk_clip), syncs=12)
    assert n == 12
    for i, qpos in enumerate(win.shown):
        assert np.allclose(qpos[:76], step_clip.qpos[i])
    assert set(win.ghost_geoms) == {24 + 23}  # a sphere per joint, a capsule per bone
    assert win.cam.type == mujoco.mjtCamera.mjCAMERA_TRACKING
    assert win.texts[0].startswith("step_03_03  frame 1/")
    # the scene's objects are in it, at the clip's poses
    names = {win.model.body(i).name for i in range(win.model.nbody)}
    assert {t.object.name for t in step_clip.objects} <= names


def test_view_keys_pause_and_once_stops_at_the_end(walk_clip):
    n, win = run_view(Playback(walk_clip), syncs=8, keys={3: KEY_PAUSE})
    shown = [int(np.argmin(np.abs(walk_clip.qpos[:, 0] - q[0]) + np.abs(walk_clip.qpos[:, 1] - q[1])))
             for q in win.shown]
    assert shown[:4] == [0, 1, 2, 3] and set(shown[4:]) == {3}  # paused after the 4th sync
    assert set(win.ghost_geoms) == {0}
    n, _ = run_view(Playback(walk_clip, loop=False, speed=4.0), syncs=10_000)
    assert n == pytest.approx(walk_clip.num_frames / 4, abs=2)


def test_view_without_a_display_is_a_one_line_error(monkeypatch, tmp_path):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    res = CliRunner().invoke(main, ["view", str(SAMPLE_CLIPS / "walk_02_01")])
    assert res.exit_code == 1
    assert "no display" in res.output and "kinpoly render" in res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize("args, message", [
    (["--controller", "x.pt"], "does not exist"),
    (["--training-free"], "apply with --track"),
    (["--track", "--ghost", "walk_02_01"], "leave out --ghost"),
    (["--track", "--training-free", "--speed", "100"], "100"),
    (["--live"], "apply with --track"),
    (["--track", "--live", "--once"], "no --speed or --once"),
])
def test_view_option_mistakes(args, message):
    res = CliRunner().invoke(main, ["view", str(SAMPLE_CLIPS / "walk_02_01"), *args])
    assert res.exit_code == 2 and message in res.output, res.output


def test_view_track_simulates_then_plays_with_the_reference_as_ghost(monkeypatch, walk_clip):
    seen = {}

    def fake_view(playback, **kwargs):
        seen["playback"] = playback
        return run_view(playback, syncs=5)[0]

    monkeypatch.setattr(viewer, "check_display", lambda: None)
    monkeypatch.setattr(viewer, "view", fake_view)
    res = CliRunner().invoke(main, ["view", str(SAMPLE_CLIPS / "walk_02_01"), "--track", "--training-free", "--once"])
    assert res.exit_code == 0, res.output
    assert "walk_02_01, training-free controller:" in res.output and "global MPJPE" in res.output
    p = seen["playback"]
    assert p.clip.meta.get("simulated") and not p.loop
    assert np.allclose(p.ghost, walk_clip.body_states().positions)


def test_env_human_mode_shows_each_step_with_the_reference_as_ghost(monkeypatch, walk_clip, step_clip):
    from kinpoly.simulation.env import HumanoidTrackingEnv

    windows = []

    def launch(model, data, key_callback):
        windows.append(FakeWindow(model, data, key_callback, syncs=10_000))
        return windows[-1]

    monkeypatch.setattr(viewer, "check_display", lambda: None)
    monkeypatch.setattr(viewer, "_launcher", lambda: launch)
    env = HumanoidTrackingEnv([walk_clip, step_clip], render_mode="human")
    env.reset(seed=0, options={"clip": 0, "frame": 5})
    for _ in range(3):
        env.step(np.zeros(env.action_space.shape, np.float32))
    assert len(windows) == 1 and len(windows[0].shown) == 4  # reset + 3 steps
    assert np.allclose(windows[0].shown[-1], env.sim.data.qpos)
    assert set(windows[0].ghost_geoms) == {47}
    assert env.render() is None
    env.reset(options={"clip": 1})  # another scene model: a new window, the old one closed
    assert len(windows) == 2 and getattr(windows[0], "closed", False)
    env.close()
    assert getattr(windows[1], "closed", False)


def test_env_human_mode_without_a_display_says_so(monkeypatch, walk_clip):
    from kinpoly.simulation.env import HumanoidTrackingEnv

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    with pytest.raises(viewer.ViewerUnavailable, match="no display"):
        HumanoidTrackingEnv([walk_clip], render_mode="human")


def test_a_viewer_that_cannot_start_is_a_clear_error(walk_clip):
    def launch(model, data, key_callback):
        raise RuntimeError("`launch_passive` requires that the Python script be run under `mjpython` on macOS")

    with pytest.raises(viewer.ViewerUnavailable, match="mjpython"):
        view(Playback(walk_clip), launch=launch)


REAL_WINDOW_SCRIPT = """
import numpy as np, gymnasium as gym, kinpoly
from kinpoly.demo import SAMPLE_CLIPS
from kinpoly.motion.clip import ClipFolder
from kinpoly.visualization.viewer import Playback, view
folder = ClipFolder(SAMPLE_CLIPS)
n = view(Playback.of(folder.load("step_03_03"), folder.load("walk_02_01"), loop=False, speed=8.0))
env = gym.make(kinpoly.TRACKING_ENV_ID, render_mode="human")
env.reset(seed=0)
for _ in range(5):
    env.step(np.zeros(75, np.float32))
env.close()
from kinpoly.simulation.evaluate import load_controller
from kinpoly.simulation.reference import prepare_reference
from kinpoly.visualization.viewer import track_live
cfg, policy = load_controller(None)
episodes = track_live(prepare_reference(folder.load("walk_02_01").slice(0, 15, name="w")), cfg.env, policy,
                      max_episodes=1, pause_after_end=0.0)
assert episodes and episodes[0]["end"] == "completed", episodes
from kinpoly.visualization.viewer import LiveView
walk = folder.load("walk_02_01")
live = LiveView(walk.body)
assert all(live.show(q, f"frame {k}") for k, q in enumerate(walk.qpos[:5]))
live.close()
print("shown", n)
"""


def test_the_real_viewer_opens_plays_and_closes_under_xvfb():
    """MuJoCo's own viewer window (not a stand-in), on a virtual X display when xvfb-run is
    installed (.ci/run installs it): kinpoly view's loop, live tracking, the env's human mode, the
    live stream's window (kinpoly stream --view), and a clean
    exit (the viewer thread is joined: without it Python hung or crashed on exit)."""
    import os
    import shutil
    import subprocess
    import sys

    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed (apt-get install xvfb)")
    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    res = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1024x768x24", sys.executable, "-c", REAL_WINDOW_SCRIPT],
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert int(res.stdout.split("shown")[-1]) >= 1


def _live(ref, syncs, keys=(), push=None, max_episodes=None):
    from kinpoly.simulation.evaluate import load_controller
    from kinpoly.visualization.viewer import track_live

    cfg, policy = load_controller(None)  # the training-free controller
    windows = []

    def launch(model, data, key_callback):
        windows.append(FakeWindow(model, data, key_callback, syncs, keys))
        if push is not None:
            push(model, data, windows[0].perturb)
        return windows[0]

    episodes = track_live(ref, cfg.env, policy, launch=launch, clock=lambda: 0.0, sleep=lambda s: None,
                          max_episodes=max_episodes, pause_after_end=0.0)
    return episodes, windows[0]


def test_live_tracking_runs_the_controller_and_starts_again_after_the_end(walk_clip):
    from kinpoly.simulation.reference import prepare_reference

    ref = prepare_reference(walk_clip.slice(0, 20, name="w20"))
    episodes, win = _live(ref, syncs=10_000, max_episodes=2)
    assert [e["end"] for e in episodes] == ["completed", "completed"]
    assert episodes[0]["frames"] == 19 and len(win.shown) == 38  # one control step per frame
    assert set(win.ghost_geoms) == {47}
    # the body moved with the reference, not stood still
    assert np.linalg.norm(win.shown[18][:2] - win.shown[0][:2]) > 0.1


def test_live_tracking_keys_pause_and_restart(walk_clip):
    from kinpoly.simulation.reference import prepare_reference

    ref = prepare_reference(walk_clip)
    episodes, win = _live(ref, syncs=12, keys={2: KEY_PAUSE, 6: KEY_PAUSE, 8: KEY_HOME})
    assert np.array_equal(win.shown[3], win.shown[5])  # paused: no step
    assert episodes[0]["end"] == "restarted"  # Home: started again
    assert np.allclose(win.shown[10], win.shown[0])  # from the first frame, as the first time


def test_a_mouse_push_reaches_the_simulation(walk_clip):
    from kinpoly.simulation.reference import prepare_reference

    ref = prepare_reference(walk_clip.slice(0, 40, name="w40"))

    def push(model, data, pert):  # a hard push on the pelvis, as Ctrl + right-drag makes one
        pert.select = 1
        pert.active = int(mujoco.mjtPertBit.mjPERT_TRANSLATE)
        mujoco.mj_kinematics(model, data)
        pert.refpos[:] = pert.refselpos[:] = data.xipos[1] + [0.0, 0.3, 0.0]  # dragged 30 cm to the left
        pert.localpos[:] = 0.0
        pert.localmass = model.body_subtreemass[1]  # what the viewer's mjv_initPerturb sets on a click

    _, calm = _live(ref, syncs=15)
    _, pushed = _live(ref, syncs=15, push=push)
    sideways = pushed.shown[-1][1] - calm.shown[-1][1]
    assert 0.05 < sideways < 1.0, sideways  # pushed towards +y, and held on by the controller


def test_a_display_that_cannot_be_opened_is_a_one_line_error(tmp_path):
    """DISPLAY set to a server that is not there (ssh without X forwarding): our message, not
    MuJoCo exiting from inside its viewer thread with 'could not initialize GLFW'."""
    import os
    import subprocess
    import sys

    env = {**{k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "WAYLAND_DISPLAY")}, "DISPLAY": ":97"}
    res = subprocess.run([sys.executable, "-m", "kinpoly.cli", "view", str(SAMPLE_CLIPS / "walk_02_01"), "--once"],
                         capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "cannot open a window on display ':97'" in res.stderr and "Traceback" not in res.stderr
