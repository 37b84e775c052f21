"""Headless rendering of motion clips: single frames, reusable renderers and MP4 videos.

Rendering is offscreen with MuJoCo's own OpenGL renderer. Without a display this needs EGL
(Mesa's software rasteriser is enough: Debian/Ubuntu packages ``libegl1 libegl-mesa0
libgl1-mesa-dri libgles2``) or, failing that, OSMesa (``libosmesa6``, ``MUJOCO_GL=osmesa``).
The backend is chosen when MuJoCo is first imported, so this module sets ``MUJOCO_GL`` before
importing it; if MuJoCo was already imported without a headless backend, the EGL context class
is swapped in before the first renderer is made (see :func:`check_rendering`).

* :class:`ClipRenderer` holds one compiled scene (humanoid + objects), its ``MjData`` and one
  ``mujoco.Renderer``; :meth:`ClipRenderer.frame` poses the scene and returns an RGB image.
  Other stages reuse it (e.g. 128x128 head-camera video for the egocentric data).
* :func:`render_frame` renders one frame of a clip.
* :func:`render_clips` writes an MP4 of one clip (third-person tracking camera), or of several
  side by side with the same camera motion (e.g. reference vs simulated), optionally with a
  head-camera panel of the first clip in a walled room.
"""

from __future__ import annotations

import copy
import ctypes.util
import logging
import math
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence


def _default_gl_backend() -> str:
    """EGL if its library is present, else OSMesa if present, else EGL (fails with a hint)."""
    if ctypes.util.find_library("EGL"):
        return "egl"
    if ctypes.util.find_library("OSMesa"):
        return "osmesa"
    return "egl"


APT_HINT = ("install EGL (apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri libgles2) and "
            "run with MUJOCO_GL=egl, or install OSMesa (apt-get install libosmesa6) and run with "
            "MUJOCO_GL=osmesa")


if sys.platform.startswith("linux"):
    os.environ.setdefault("MUJOCO_GL", _default_gl_backend())

try:
    import mujoco  # noqa: E402
except ImportError:
    raise
except Exception as _e:  # e.g. MUJOCO_GL=osmesa without libOSMesa fails inside PyOpenGL
    raise ImportError(
        f"importing MuJoCo with MUJOCO_GL={os.environ.get('MUJOCO_GL')} failed "
        f"({type(_e).__name__}: {_e}); to render headless, {APT_HINT}") from _e
import numpy as np  # noqa: E402

from .. import rotations as rot  # noqa: E402
from ..errors import check_output  # noqa: E402
from ..humanoid.mjcf import ModelOptions, ScenePoser, build_model  # noqa: E402
from ..humanoid.scene import SceneObject  # noqa: E402
from ..humanoid.skeleton import QPOS_DIM, BodyShape  # noqa: E402
from ..motion.clip import MotionClip  # noqa: E402

log = logging.getLogger(__name__)

HEAD_CAMERA = "head_camera"
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov")
HEAD_GEOM_GROUP = 5  # the head-camera renderer hides this group (the wearer's own head)


class RenderingUnavailable(RuntimeError):
    """Offscreen OpenGL rendering cannot be set up on this machine."""


# --- OpenGL backend ------------------------------------------------------------------------
_GL_STATE: dict[str, object] = {}


def _ensure_headless_backend() -> None:
    """Make sure MuJoCo's Renderer will use a headless GL context.

    If MuJoCo was imported before this module with ``MUJOCO_GL`` unset it picked GLFW, which
    needs a display. Without one, swap in the EGL (else OSMesa) context class; this only works
    before any context was created, which is the case when nothing rendered yet.
    """
    if _GL_STATE.get("checked"):
        return
    _GL_STATE["checked"] = True
    try:
        from mujoco.rendering.classic import gl_context
    except ImportError:  # older layouts: nothing to adjust
        return
    chosen = str(getattr(gl_context, "_MUJOCO_GL", os.environ.get("MUJOCO_GL", ""))).lower()
    has_display = bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    if chosen in ("egl", "osmesa") or has_display or not sys.platform.startswith("linux"):
        return
    for backend in ("egl", "osmesa"):
        try:
            module = __import__(f"mujoco.{backend}", fromlist=["GLContext"])
        except Exception as e:  # noqa: BLE001 - any import failure means: try the next one
            log.debug("GL backend %s unavailable: %s", backend, e)
            continue
        gl_context.GLContext = module.GLContext
        log.info("MuJoCo was imported with MUJOCO_GL=%r and no display; using %s", chosen, backend)
        return


def make_renderer(model: mujoco.MjModel, height: int, width: int) -> mujoco.Renderer:
    """An offscreen ``mujoco.Renderer`` for ``model`` on a headless GL backend, or
    :class:`RenderingUnavailable` with the packages to install."""
    _ensure_headless_backend()
    try:
        return mujoco.Renderer(model, height=height, width=width)
    except Exception as e:  # noqa: BLE001 - GL failures come as several exception types
        backend = os.environ.get("MUJOCO_GL", "(unset)")
        raise RenderingUnavailable(
            f"offscreen rendering failed with MUJOCO_GL={backend}: {type(e).__name__}: {e}. "
            f"To render headless, {APT_HINT}.") from e


def check_rendering() -> str | None:
    """None if offscreen rendering works here, else the reason (for skipping tests)."""
    if "ok" in _GL_STATE:
        return _GL_STATE["ok"]  # type: ignore[return-value]
    try:
        model = mujoco.MjModel.from_xml_string(
            '<mujoco><worldbody><geom type="sphere" size="0.1"/></worldbody></mujoco>')
        r = make_renderer(model, 16, 16)
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        r.update_scene(data)
        r.render()
        r.close()
        reason = None
    except Exception as e:  # noqa: BLE001
        reason = str(e)
    _GL_STATE["ok"] = reason
    return reason


# --- cameras -------------------------------------------------------------------------------
@dataclass
class CameraTrack:
    """A free camera following a point: ``lookat`` per frame, fixed angles and distance."""

    lookat: np.ndarray  # (T, 3)
    azimuth: float  # degrees, MuJoCo convention (direction the camera looks, about +Z)
    elevation: float  # degrees, negative looks down
    distance: float

    def apply(self, cam: mujoco.MjvCamera, index: int) -> mujoco.MjvCamera:
        i = int(np.clip(index, 0, len(self.lookat) - 1))
        cam.type = mujoco.mjtCamera.mjCAMERA_FREE
        cam.lookat[:] = self.lookat[i]
        cam.distance = self.distance
        cam.azimuth = self.azimuth
        cam.elevation = self.elevation
        return cam


def _smooth(x: np.ndarray, sigma_frames: float) -> np.ndarray:
    """Zero-phase Gaussian smoothing along axis 0 (edges held), no lag behind the subject."""
    if sigma_frames < 0.5 or len(x) < 3:
        return x.copy()
    radius = int(math.ceil(3 * sigma_frames))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma_frames) ** 2)
    k /= k.sum()
    padded = np.concatenate([np.repeat(x[:1], radius, 0), x, np.repeat(x[-1:], radius, 0)])
    return np.stack([np.convolve(padded[:, j], k, mode="valid") for j in range(x.shape[1])], 1)


def tracking_camera(clip: MotionClip, *, distance: float = 3.5, elevation: float = -15.0,
                    smoothing_s: float = 0.4, azimuth: float | None = None) -> CameraTrack:
    """Third-person camera following the pelvis smoothly, looking from the side.

    The azimuth is fixed for the clip: perpendicular to the main direction of travel (start to
    end of the pelvis path) so the person crosses the image left to right; for a clip that
    travels less than 0.3 m, perpendicular to the initial facing instead.
    """
    pelvis = clip.qpos[:, :3]
    lookat = _smooth(pelvis, smoothing_s * clip.fps)
    if azimuth is None:
        travel = pelvis[-1, :2] - pelvis[0, :2]
        if np.linalg.norm(travel) >= 0.3:
            heading = math.atan2(travel[1], travel[0])
        else:
            heading = float(rot.heading_angle(rot.quat_to_matrix(clip.qpos[0, 3:7])))
        # looking along the person's left axis = standing on their right side
        azimuth = math.degrees(heading) + 90.0
    return CameraTrack(lookat=lookat, azimuth=float(azimuth), elevation=float(elevation),
                       distance=float(distance) * max(1.0, clip.body.scale))


# --- the reusable renderer -----------------------------------------------------------------
class ClipRenderer:
    """One humanoid (+ objects) scene with its ``MjData`` and one ``mujoco.Renderer``.

    ``view`` is ``"track"`` (a free camera, :attr:`camera`, set by the caller or by a
    :class:`CameraTrack`) or ``"head"`` (the humanoid's ``head_camera``; the wearer's own head
    geom is hidden so it does not block the view). Objects are those of the scene in order;
    :meth:`frame` takes their poses per frame: a free object's joint is set from its pose, a
    static object's body is moved to its pose. Create once, call :meth:`frame` per frame.
    """

    def __init__(self, body: BodyShape | None = None, objects: Sequence[SceneObject] = (), *,
                 width: int = 320, height: int = 240, view: str = "track", room: bool | None = None,
                 head_camera_fovy: float = 100.0, shadows: bool | None = None,
                 reflection: bool = False, slices: int = 16, multisample: int | None = None):
        if view not in ("track", "head"):
            raise ValueError(f"view must be 'track' or 'head', got {view!r}")
        if width < 8 or height < 8:
            raise ValueError(f"image size {width}x{height} is too small")
        self.body = body or BodyShape()
        self.objects = list(objects)
        self.view = view
        self.width, self.height = int(width), int(height)
        room = (view == "head") if room is None else room
        base = build_model(self.body, tuple(self.objects),
                           ModelOptions(room=room, head_camera_fovy=head_camera_fovy))
        model = copy.copy(base)  # build_model's model is cached and shared: never modify it
        model.vis.global_.offwidth = max(self.width, 1)
        model.vis.global_.offheight = max(self.height, 1)
        model.vis.quality.numslices = slices
        model.vis.quality.numstacks = max(4, slices // 2)
        # Multisample anti-aliasing: 4x for videos people watch; off for the head camera, whose
        # images feed optical flow (Mesa's llvmpipe renders 4x MSAA at about half the speed).
        model.vis.quality.offsamples = (0 if view == "head" else 4) if multisample is None else int(multisample)
        if view == "head":
            head = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "Head_geom")
            if head >= 0:
                model.geom_group[head] = HEAD_GEOM_GROUP
        # MuJoCo's clipping planes are fractions of the model extent, which the room makes
        # ~24 m: the near plane would then sit 0.24 m from the eyes and cut away the wearer's
        # own chest and arms. Use absolute distances instead.
        extent = max(float(model.stat.extent), 1e-3)
        model.vis.map.znear = (0.01 if view == "head" else 0.05) / extent
        model.vis.map.zfar = max(float(model.vis.map.zfar), 100.0 / extent)
        # Shadows: the directional "sun" casts them only inside a box around its position
        # (vis.map.shadowclip x extent), so it follows the pelvis with a fixed 2.5 m radius; and
        # it shines straight down, which puts the shadow under the feet (a contact cue) and
        # avoids the floor self-shadowing stripes that a slanted sun shows with Mesa's llvmpipe.
        # (Set before the renderer: its GL context copies these settings when created.)
        shadows = (view == "track") if shadows is None else bool(shadows)
        self._sun = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_LIGHT, "sun")
        self._sun_follows = shadows and self._sun >= 0
        self._sun_height = float(model.light_pos[self._sun][2]) if self._sun >= 0 else 0.0
        if self._sun_follows:
            model.light_dir[self._sun] = (0.0, 0.0, -1.0)
            model.vis.map.shadowclip = 2.5 / extent
            model.vis.quality.shadowsize = 1024  # 5 mm texels over the 5 m box: enough
            # a vertical sun leaves vertical limbs unlit: a brighter headlight makes up for it
            model.vis.headlight.ambient[:] = 0.25
            model.vis.headlight.diffuse[:] = 0.5
        self.model = model
        self.data = mujoco.MjData(model)
        self.renderer = make_renderer(model, self.height, self.width)
        flags = self.renderer.scene.flags
        flags[mujoco.mjtRndFlag.mjRND_SHADOW] = shadows
        flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = reflection
        self.option = mujoco.MjvOption()
        if view == "head":
            self.option.geomgroup[HEAD_GEOM_GROUP] = 0
        self.camera = mujoco.MjvCamera()
        mujoco.mjv_defaultFreeCamera(model, self.camera)
        self._poser = ScenePoser(model, self.objects)
        self.data.qpos[:] = model.qpos0
        self.set_state(self.data.qpos[:QPOS_DIM].copy())

    @classmethod
    def for_clip(cls, clip: MotionClip, **kwargs) -> "ClipRenderer":
        """A renderer for ``clip``'s body and objects."""
        return cls(clip.body, [t.object for t in clip.objects], **kwargs)

    # ---------------------------------------------------------------------------------
    def set_state(self, qpos: np.ndarray, object_poses: np.ndarray | None = None) -> None:
        """Pose the humanoid (``qpos`` (76,)) and objects (``object_poses`` (n_objects, 7))."""
        self._poser.pose(self.data, qpos, object_poses)
        if self._sun_follows:
            self.model.light_pos[self._sun] = (qpos[0], qpos[1], self._sun_height)
        mujoco.mj_kinematics(self.model, self.data)
        mujoco.mj_camlight(self.model, self.data)

    def render(self, camera: str | mujoco.MjvCamera | None = None,
               out: np.ndarray | None = None) -> np.ndarray:
        """Render the current state: (height, width, 3) uint8 RGB."""
        if camera is None:
            camera = HEAD_CAMERA if self.view == "head" else self.camera
        self.renderer.update_scene(self.data, camera=camera, scene_option=self.option)
        return self.renderer.render(out=out)

    def frame(self, qpos: np.ndarray, object_poses: np.ndarray | None = None, *,
              camera: str | mujoco.MjvCamera | None = None, out: np.ndarray | None = None) -> np.ndarray:
        """Pose the scene and render it: (height, width, 3) uint8 RGB."""
        self.set_state(qpos, object_poses)
        return self.render(camera, out)

    def close(self) -> None:
        self.renderer.close()

    def __enter__(self) -> "ClipRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def render_frame(clip: MotionClip, t: int = 0, *, width: int = 320, height: int = 240,
                 head_camera: bool = False, room: bool | None = None,
                 shadows: bool | None = None, camera: CameraTrack | None = None) -> np.ndarray:
    """RGB image (height, width, 3) of frame ``t`` (an index; negative counts from the end).

    Third-person tracking camera by default (as in :func:`render_clips`), or the head camera
    (in a walled room by default, so that the surroundings are visible).
    """
    n = clip.num_frames
    if not -n <= t < n:
        raise IndexError(f"{clip.name}: frame {t} out of range for {n} frames")
    t = t % n
    with ClipRenderer.for_clip(clip, width=width, height=height,
                               view="head" if head_camera else "track", room=room,
                               shadows=shadows) as r:
        if not head_camera:
            (camera or tracking_camera(clip)).apply(r.camera, t)
        return r.frame(clip.qpos[t], clip.object_poses_at(t)).copy()


# --- video ---------------------------------------------------------------------------------
@dataclass
class RenderStats:
    path: Path | None
    frames: int
    seconds: float  # wall-clock time spent rendering and encoding
    width: int  # of the whole video frame
    height: int

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict:
        return {"path": str(self.path) if self.path else None, "frames": self.frames,
                "seconds": round(self.seconds, 3), "width": self.width, "height": self.height,
                "frames_per_second": round(self.frames_per_second, 2)}


def draw_label(image: np.ndarray, text: str) -> np.ndarray:
    """Write ``text`` in the top-left corner, white on a dark translucent box, in place."""
    import cv2

    if not text:
        return image
    h = image.shape[0]
    scale = max(0.35, h / 480.0)
    thick = max(1, int(round(scale * 1.4)))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(2, int(4 * scale))
    x1, y1 = min(image.shape[1], tw + 3 * pad), min(h, th + base + 3 * pad)
    box = image[pad // 2:y1, pad // 2:x1]
    box[:] = (box.astype(np.float32) * 0.45).astype(np.uint8)
    cv2.putText(image, text, (pad + pad // 2, pad // 2 + pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale,
                (255, 255, 255), thick, cv2.LINE_AA)
    return image


def _tmp_path(out: Path) -> Path:
    """A unique hidden name next to ``out`` with the same suffix (ffmpeg picks the container
    from it); not pre-created, so the file gets ffmpeg's normal permissions."""
    return out.with_name(f".{out.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{out.suffix}")


def render_clips(clips: Sequence[MotionClip] | MotionClip, out: str | os.PathLike, *,
                 width: int = 320, height: int = 240, head_camera: bool = False,
                 fps: float | None = None, labels: Sequence[str] | None = None,
                 show_progress: bool = True, shadows: bool = True, quality: float = 6.0,
                 camera: CameraTrack | None = None) -> RenderStats:
    """Write an MP4 of one clip, or of several side by side (``width`` x ``height`` per panel).

    All panels share one camera motion, the tracking camera of the first clip. With
    ``head_camera`` a last panel shows the first clip's head camera in a walled room. Clips
    shorter than the longest hold their last frame. ``fps`` defaults to the first clip's frame
    rate; frames are picked by time from each clip. Panel labels default to the clip names
    when there are several panels. The file is written atomically (temporary name + rename).
    """
    import imageio.v2 as imageio
    from tqdm import tqdm

    clips = [clips] if isinstance(clips, MotionClip) else list(clips)
    if not clips:
        raise ValueError("no clip to render")
    out = Path(out)
    if out.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"{out}: unsupported video file type; use one of {', '.join(VIDEO_SUFFIXES)}")
    check_output(out)  # before ffmpeg starts: it would fail with its own log and a broken pipe
    out.parent.mkdir(parents=True, exist_ok=True)
    fps = float(fps or clips[0].fps)
    if not fps > 0:
        raise ValueError(f"invalid frame rate {fps}")
    duration = max(c.num_frames / c.fps for c in clips)
    n_frames = max(1, int(round(duration * fps)))
    times = np.arange(n_frames) / fps
    indices = [np.minimum(np.round(times * c.fps).astype(int), c.num_frames - 1) for c in clips]

    n_panels = len(clips) + int(head_camera)
    if labels is None:
        labels = [c.name for c in clips] + (["head camera"] if head_camera else [])
        if n_panels == 1:
            labels = [""]
    labels = list(labels) + [""] * (n_panels - len(labels))
    full_w, full_h = width * n_panels, height
    even_w, even_h = full_w + full_w % 2, full_h + full_h % 2  # yuv420p needs even sizes

    cam = camera or tracking_camera(clips[0])
    renderers: list[ClipRenderer] = []
    tmp: Path | None = None
    started = time.perf_counter()
    try:
        for c in clips:
            renderers.append(ClipRenderer.for_clip(c, width=width, height=height, view="track",
                                                   shadows=shadows))
        if head_camera:
            renderers.append(ClipRenderer.for_clip(clips[0], width=width, height=height,
                                                   view="head", room=True))
        panel_clips = clips + ([clips[0]] if head_camera else [])
        panel_index = indices + ([indices[0]] if head_camera else [])
        frame = np.zeros((even_h, even_w, 3), dtype=np.uint8)
        tmp = _tmp_path(out)
        writer = imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                    pixelformat="yuv420p", quality=quality, macro_block_size=2,
                                    ffmpeg_log_level="error")
        try:
            for k in tqdm(range(n_frames), desc=out.name, unit="frame", disable=not show_progress,
                          leave=False):
                for p, (r, c, idx) in enumerate(zip(renderers, panel_clips, panel_index)):
                    i = int(idx[k])
                    if r.view == "track":
                        cam.apply(r.camera, int(indices[0][k]))
                    img = r.frame(c.qpos[i], c.object_poses_at(i))  # a fresh contiguous array
                    if labels[p]:
                        draw_label(img, labels[p])
                    frame[:height, p * width:(p + 1) * width] = img
                writer.append_data(frame)
        finally:
            writer.close()
        os.replace(tmp, out)
        tmp = None
    finally:
        for r in renderers:
            r.close()
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    stats = RenderStats(path=out, frames=n_frames, seconds=seconds, width=even_w, height=even_h)
    log.info("rendered %s: %d frames in %.1f s (%.1f frames/s)", out, n_frames, seconds,
             stats.frames_per_second)
    return stats
