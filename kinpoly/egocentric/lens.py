"""Head-camera lenses: how a video's pixels map to viewing directions, and the view of a wide-angle
(fisheye) video that the flow encoder reads.

The flow encoder was trained on pinhole renders with a 100-degree vertical field of view
(:mod:`.build`). A fisheye lens (Project Aria's RGB camera, an action camera) puts a direction at
angle theta from the optical axis at a radius about proportional to theta, where a pinhole puts
it at tan(theta): near the middle a head turn moves the picture as a pinhole's, towards the
edges less, and along curves. :class:`Rectifier` resamples each frame as the encoder's pinhole
camera would have seen it, looking the same way (``benchmarks/video_geometry.py`` measures the
estimate with and without).

Camera axes: x right, y down, z forward (OpenCV's and Project Aria's). Models:

=========  ========================================================================================
model      pixel of a direction (x, y, z)
=========  ========================================================================================
pinhole    (a, b) = (x, y) / z, r = |(a, b)|; d = (a, b) (1 + k1 r^2 + k2 r^4 + k3 r^6) + tangential
           (OpenCV's Brown-Conrady model; ``distortion`` in OpenCV's order k1 k2 p1 p2 [k3])
fisheye    theta = angle from the axis; d = (theta + k1 theta^3 + k2 theta^5 + ...) (cos phi, sin phi),
           then tangential and thin-prism terms on d (Kannala-Brandt: OpenCV's fisheye model, k1-k4;
           Project Aria's FisheyeRadTanThinPrism, "FISHEYE624": k0-k5, p0 p1, s0-s3)
=========  ========================================================================================

and then ``pixel = (fx, fy) * d + (cx, cy)``, pixel centres at integers.

What :func:`load_lens` reads:

* A Project Aria recording, ``recording.vrs[#camera-label]``: its camera's factory calibration
  (:mod:`.vrs`; a video read from a VRS recording uses it unless another lens is given).
* ``fisheye:DEGREES``: an equidistant fisheye (pixel radius proportional to theta) whose field
  of view across the frame's shorter side is DEGREES, centred (no calibration at hand).
* A Project Aria calibration: the device calibration JSON (``CameraCalibrations``: ``Label``,
  ``Projection`` ``Name`` and ``Params``; as VRS files and MPS ``online_calibration.jsonl``
  lines hold it, ``ImageSizes`` where given), or ``projectaria_tools``' per-camera export
  (``{"camera-rgb": {"model", "projection_params", "image_size", "T_device_camera_4x4"}}``).
  The camera is ``camera-rgb`` unless the path names another after ``#``
  (``calib.json#camera-slam-left``). Its pose in the device (``T_Device_Camera``,
  ``T_device_camera_4x4``) says how it is mounted: with an Aria trajectory, which way its
  frames are upright (the import's rotation unless the flow clearly says otherwise).
* A YAML or JSON file of one camera::

      model: fisheye          # or pinhole; kannala_brandt, opencv_fisheye and fisheye624 mean fisheye
      width: 1408             # the frame size the intrinsics are for (frames of another size but
      height: 1408            #   the same shape are scaled to it)
      fx: 610.9               # fy: as fx when left out
      cx: 715.1
      cy: 716.7
      distortion: [0.406, -0.49, 0.175, 1.13]   # fisheye: k1 k2 ...; pinhole: k1 k2 p1 p2 [k3]

A calibration without the frame size it is for (an Aria device calibration outside MPS) is for
frames about twice its principal point: it is taken as it is for frames within 10% of that
size, and otherwise scaled by the ratio (to the 1-2% its principal point is off their centre).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .take import EgoDataError

FISHEYE_MODELS = ("fisheye", "kannala_brandt", "opencv_fisheye", "fisheye624", "fisheyeradtanthinprism",
                  "kannalabrandtk3")
PINHOLE_MODELS = ("pinhole", "opencv", "radtan", "linear")
ARIA_CAMERA = "camera-rgb"
# a calibration without its frame size: how far from the frames' centre its principal point may be
CENTRE_TOLERANCE = 0.10


@dataclass(frozen=True)
class Lens:
    """A camera's intrinsics and distortion (module docstring). ``size`` (width, height): the
    frames they are for; None for ``fov`` (an equidistant fisheye of that many degrees across the
    shorter side, centred) or a calibration that does not say (:meth:`fit` scales it by its
    principal point)."""

    model: str  # "pinhole" or "fisheye"
    fx: float = 1.0
    fy: float = 1.0
    cx: float = 0.0
    cy: float = 0.0
    radial: tuple[float, ...] = ()
    tangential: tuple[float, float] = (0.0, 0.0)  # coefficients of (2x^2 + r^2) in x and (2y^2 + r^2) in y
    thin_prism: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    size: tuple[int, int] | None = None
    fov: float | None = None
    source: str = ""
    mount: tuple[tuple[float, float, float], ...] | None = None  # camera axes in a Project Aria device frame (3x3)

    def __post_init__(self):
        if self.model not in ("pinhole", "fisheye"):
            raise EgoDataError(f"{self.source or 'lens'}: model {self.model!r}: expected pinhole or fisheye")
        values = [self.fx, self.fy, self.cx, self.cy, *self.radial, *self.tangential, *self.thin_prism]
        if not np.isfinite(values).all() or self.fx <= 0 or self.fy <= 0:
            raise EgoDataError(f"{self.source or 'lens'}: intrinsics must be finite with positive focal lengths")
        if self.fov is not None and not 0 < self.fov < 360:
            raise EgoDataError(f"{self.source or 'lens'}: field of view {self.fov:g} degrees: expected 0-360")

    # -- fitting to the frames -------------------------------------------------------------
    def fit(self, width: int, height: int) -> Lens:
        """This lens for frames of ``width`` x ``height`` pixels: the intrinsics of a calibration
        for another size of the same shape scaled to them; an error for another shape."""
        if self.fov is not None:
            f = min(width, height) / 2 / np.radians(self.fov / 2)
            return replace(self, fx=f, fy=f, cx=(width - 1) / 2, cy=(height - 1) / 2, size=(width, height), fov=None)
        if self.size is None:  # for frames of about twice its principal point, at their resolution or scaled
            sx, sy = width / (2 * self.cx + 1), height / (2 * self.cy + 1)
            if not (abs(sx / sy - 1) <= CENTRE_TOLERANCE and 0 < sx):
                raise EgoDataError(f"{self.source}: the calibration does not say which frame size it is for, and "
                                   f"its principal point ({self.cx:g}, {self.cy:g}) is not near the centre of "
                                   f"{width}x{height} frames: give the size (width, height)")
            s = np.sqrt(sx * sy)
            return self.scaled(1.0 if abs(s - 1) <= CENTRE_TOLERANCE else s, (width, height))
        w0, h0 = self.size
        if (w0, h0) == (width, height):
            return self
        if abs(width / w0 - height / h0) > 0.01 * width / w0:
            raise EgoDataError(f"{self.source}: the calibration is for {w0}x{h0} frames, the video's are "
                               f"{width}x{height}: another shape (not this camera, or cut)")
        return self.scaled(width / w0, (width, height))

    def scaled(self, s: float, size: tuple[int, int]) -> Lens:
        """The lens of the frames resized by ``s`` (pixel centres at integers)."""
        return replace(self, fx=self.fx * s, fy=self.fy * s, cx=s * (self.cx + 0.5) - 0.5,
                       cy=s * (self.cy + 0.5) - 0.5, size=size)

    # -- projection ------------------------------------------------------------------------
    def _radial(self, t2: np.ndarray) -> np.ndarray:
        """1 + k1 t2 + k2 t2^2 + ... (t2: r^2 of a pinhole, theta^2 of a fisheye)."""
        factor, power = np.ones_like(t2), np.ones_like(t2)
        for k in self.radial:
            power = power * t2
            factor = factor + k * power
        return factor

    def _off_axis(self, ref: np.ndarray) -> np.ndarray:
        """The tangential and thin-prism terms of the point ``ref`` (N, 2)."""
        rr = np.sum(ref ** 2, axis=1, keepdims=True)
        p, s = np.asarray(self.tangential), self.thin_prism
        return (2 * (ref @ p)[:, None] * ref + rr * p
                + np.concatenate([s[0] * rr + s[1] * rr ** 2, s[2] * rr + s[3] * rr ** 2], axis=1))

    def _distort(self, ab: np.ndarray) -> np.ndarray:
        """Normalised pinhole coordinates (a, b) = (x, y)/z -> distorted ones, (N, 2). A pinhole's
        tangential terms act on the ideal point (OpenCV), a fisheye's on the radially distorted
        one (Project Aria)."""
        r2 = np.sum(ab ** 2, axis=1, keepdims=True)
        if self.model == "fisheye":
            r = np.sqrt(r2)
            theta = np.arctan(r)
            d = ab * np.where(r > 1e-12, theta / np.maximum(r, 1e-300), 1.0) * self._radial(theta ** 2)
            return d + self._off_axis(d)
        return ab * self._radial(r2) + self._off_axis(ab)

    def project(self, rays: np.ndarray) -> np.ndarray:
        """Pixels (N, 2) of directions (N, 3); NaN for one the lens cannot see (behind a pinhole,
        90 degrees or more off a fisheye's axis)."""
        rays = np.asarray(rays, dtype=np.float64).reshape(-1, 3)
        z = rays[:, 2:3]
        ok = (z > 1e-9)[:, 0]
        ab = rays[:, :2] / np.where(z > 1e-9, z, 1.0)
        d = self._distort(ab)
        px = d * [self.fx, self.fy] + [self.cx, self.cy]
        if self.model == "fisheye":  # beyond where its polynomial stops growing, a calibration says nothing
            ok &= np.arctan(np.linalg.norm(ab, axis=1)) <= self._theta_max()
        px[~ok] = np.nan
        return px

    def _theta_max(self) -> float:
        """The angle (rad) up to which a fisheye's radius grows with theta (at most 90 degrees)."""
        theta = np.linspace(0.0, np.pi / 2, 901)
        r = theta * self._radial(theta ** 2)
        falls = np.nonzero(np.diff(r) <= 0)[0]
        return float(theta[falls[0]]) if len(falls) else np.pi / 2

    def unproject(self, pixels: np.ndarray, iterations: int = 50) -> np.ndarray:
        """Unit directions (N, 3) of pixels (N, 2) (Newton's method on the distortion)."""
        target = (np.asarray(pixels, dtype=np.float64).reshape(-1, 2) - [self.cx, self.cy]) / [self.fx, self.fy]
        if self.model == "pinhole":
            ab = _newton(self._distort, target, iterations)
            rays = np.concatenate([ab, np.ones((len(ab), 1))], axis=1)
            return rays / np.linalg.norm(rays, axis=1, keepdims=True)
        d = _newton(lambda x: x + self._off_axis(x), target, iterations)  # the radially distorted point
        rho = np.linalg.norm(d, axis=1)
        top = self._theta_max()
        theta = np.minimum(rho, top)  # from above where theta_d grows faster than theta, from below else
        for _ in range(iterations):
            t2 = theta ** 2
            g = theta * self._radial(t2[:, None])[:, 0] - rho
            dg = self._radial(t2[:, None])[:, 0] + theta * _radial_slope(self.radial, t2)
            step = g / np.where(np.abs(dg) > 1e-12, dg, 1e-12)
            theta = np.clip(theta - step, 0.0, top)
            if np.abs(step).max(initial=0) < 1e-13:
                break
        dirs = d / np.maximum(rho, 1e-300)[:, None]
        return np.concatenate([np.sin(theta)[:, None] * dirs, np.cos(theta)[:, None]], axis=1)

    def half_fov(self, width: int, height: int) -> float:
        """The smallest angle (degrees) from the optical axis to the frame's edge, left, right, up
        or down: the widest centred view the frames fully cover."""
        edges = np.array([[-0.5, self.cy], [width - 0.5, self.cy], [self.cx, -0.5], [self.cx, height - 0.5]])
        rays = self.unproject(edges)
        return float(np.degrees(np.arccos(np.clip(rays[:, 2], -1, 1))).min())


def _radial_slope(radial: tuple[float, ...], t2: np.ndarray) -> np.ndarray:
    """theta * d/dtheta of 1 + k1 theta^2 + k2 theta^4 + ... (t2 = theta^2)."""
    out, power = np.zeros_like(t2), np.ones_like(t2)
    for i, k in enumerate(radial, 1):
        power = power * t2
        out = out + 2 * i * k * power
    return out


def _newton(fn, target: np.ndarray, iterations: int) -> np.ndarray:
    """x with fn(x) = target, row by row (fn: (N, 2) -> (N, 2)), from x = target."""
    x = target.copy()
    h = 1e-7
    for _ in range(iterations):
        f = fn(x) - target
        if np.abs(f).max(initial=0) < 1e-12:
            break
        jx = (fn(x + [h, 0]) - fn(x - [h, 0])) / (2 * h)
        jy = (fn(x + [0, h]) - fn(x - [0, h])) / (2 * h)
        det = jx[:, 0] * jy[:, 1] - jy[:, 0] * jx[:, 1]
        det = np.where(np.abs(det) > 1e-12, det, 1e-12)
        x = x - np.stack([(jy[:, 1] * f[:, 0] - jy[:, 0] * f[:, 1]) / det,
                          (-jx[:, 1] * f[:, 0] + jx[:, 0] * f[:, 1]) / det], axis=1)
    return x


def pinhole_rays(width: int, height: int, fovy: float) -> np.ndarray:
    """Directions (height, width, 3) of the pixels of a centred pinhole camera with vertical
    field of view ``fovy`` degrees (the flow encoder's renders: 100)."""
    f = height / 2 / np.tan(np.radians(fovy) / 2)
    u, v = np.meshgrid((np.arange(width) - (width - 1) / 2) / f, (np.arange(height) - (height - 1) / 2) / f)
    return np.stack([u, v, np.ones_like(u)], axis=-1)


class Rectifier:
    """Frames of a ``lens`` (in their stored orientation) -> the view of a centred pinhole camera
    looking the same way, ``width`` x ``height`` pixels with a vertical field of view of ``fovy``
    degrees (``narrow``: narrowed to the widest the frames cover whole, when they cover less;
    ``self.fovy``; else the view's edges beyond them are black). Frames much larger than the view are first shrunk (area averaging) to
    about its resolution at the middle, so that the resampling does not alias."""

    def __init__(self, lens: Lens, frame_size: tuple[int, int], width: int, height: int, fovy: float,
                 narrow: bool = True):
        import cv2

        w, h = frame_size
        lens = lens.fit(w, h)
        half = np.radians(min(lens.half_fov(w, h), 89.0))  # the view's wider side must fit within it too
        covered = float(np.degrees(2 * np.arctan(np.tan(half) * min(1.0, height / width))))
        self.fovy = float(min(fovy, covered) if narrow else fovy)
        self.coverage = covered  # the widest vertical field of view the frames cover whole
        f_out = height / 2 / np.tan(np.radians(self.fovy) / 2)
        shrink = min(1.0, 1.5 * f_out / min(lens.fx, lens.fy))
        self.small = None
        if shrink < 1.0:
            self.small = (max(1, round(w * shrink)), max(1, round(h * shrink)))
            lens = lens.scaled(self.small[0] / w, self.small)
        px = lens.project(pinhole_rays(width, height, self.fovy).reshape(-1, 3)).reshape(height, width, 2)
        px = np.where(np.isfinite(px), px, -1e4).astype(np.float32)
        self.maps = cv2.convertMaps(px[..., 0], px[..., 1], cv2.CV_16SC2)
        self.lens = lens

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        import cv2

        if self.small is not None:
            frame = cv2.resize(frame, self.small, interpolation=cv2.INTER_AREA)
        return cv2.remap(frame, *self.maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def load_lens(spec: str | os.PathLike) -> Lens:
    """The lens ``spec`` names: ``fisheye:DEGREES`` or a calibration file (module docstring);
    a one-line error for a file that does not describe one."""
    text = str(spec)
    from .vrs import is_vrs

    if is_vrs(text):  # a Project Aria recording's own calibration of the camera
        from .vrs import open_camera

        return open_camera(text).lens()
    if text.lower().startswith("fisheye:"):
        try:
            fov = float(text.split(":", 1)[1])
        except ValueError:
            raise EgoDataError(f"--video-lens {text}: expected fisheye:DEGREES, e.g. fisheye:150") from None
        return Lens("fisheye", fov=fov, source=text)
    path, _, label = text.partition("#") if not Path(text).exists() else (text, "", "")
    path = Path(path)
    if not path.is_file():
        raise EgoDataError(f"{path}: no such lens calibration file (or give fisheye:DEGREES)")
    raw = path.read_text()
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(raw)
        elif path.suffix.lower() == ".jsonl":
            data = json.loads(next(line for line in raw.splitlines() if line.strip()))
        else:
            data = json.loads(raw)
    except (ValueError, StopIteration, ImportError) as e:
        raise EgoDataError(f"{path}: not a readable calibration file ({type(e).__name__}: {str(e)[:80]})") from None
    if not isinstance(data, dict):
        raise EgoDataError(f"{path}: a calibration is a mapping (YAML/JSON object)")
    try:
        if "CameraCalibrations" in data:
            return _aria_device(data, label or ARIA_CAMERA, str(path))
        if "model" not in data and any(isinstance(v, dict) and "projection_params" in v for v in data.values()):
            cam = data.get(label or ARIA_CAMERA)
            if not isinstance(cam, dict):
                raise EgoDataError(f"{path}: no camera {label or ARIA_CAMERA!r} (has: {', '.join(data)})")
            lens = aria_lens(str(cam.get("model", "")), cam["projection_params"], cam.get("image_size"), str(path))
            pose = cam.get("T_device_camera_4x4")
            return lens if pose is None else replace(lens, mount=rotation_rows(pose))
        return _plain(data, str(path))
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise EgoDataError(f"{path}: incomplete or malformed calibration ({type(e).__name__}: {e})") from None


def _aria_device(data: dict, label: str, source: str) -> Lens:
    cams = data["CameraCalibrations"]
    labels = [c.get("Label") for c in cams]
    if label not in labels:
        raise EgoDataError(f"{source}: no camera {label!r} (has: {', '.join(map(str, labels))})")
    i = labels.index(label)
    proj = cams[i]["Projection"]
    size = cams[i].get("ImageSize")
    sizes = data.get("ImageSizes")
    if size is None and isinstance(sizes, list) and len(sizes) == len(cams):
        size = sizes[i]
    lens = aria_lens(proj["Name"], proj["Params"], size, source)
    pose = cams[i].get("T_Device_Camera")
    if isinstance(pose, dict) and "UnitQuaternion" in pose:  # [w, [x, y, z]]
        from .. import rotations as rot

        w, (x, y, z) = pose["UnitQuaternion"]
        lens = replace(lens, mount=rotation_rows(rot.quat_to_matrix(np.array([w, x, y, z], dtype=np.float64))))
    return lens


def rotation_rows(R) -> tuple[tuple[float, float, float], ...]:
    """A rotation matrix as a tuple of rows, after checking it is one."""
    R = np.asarray(R, dtype=np.float64)[:3, :3]
    if not (np.isfinite(R).all() and np.allclose(R @ R.T, np.eye(3), atol=1e-3) and np.linalg.det(R) > 0):
        raise ValueError("the camera's pose in the device is not a rotation")
    return tuple(tuple(float(v) for v in row) for row in R)


def aria_lens(name: str, params, size, source: str) -> Lens:
    """Project Aria's projection models by name: FisheyeRadTanThinPrism (FISHEYE624: f cx cy
    k0-k5 p0 p1 s0-s3), KannalaBrandtK3 (fx fy cx cy k0-k3), Linear / pinhole (fx fy cx cy)."""
    p = [float(v) for v in params]
    key = name.rsplit(".", 1)[-1].replace("_", "").lower()
    size = None if size is None else (int(size[0]), int(size[1]))
    if key in ("fisheyeradtanthinprism", "fisheye624") and len(p) == 15:
        return Lens("fisheye", p[0], p[0], p[1], p[2], tuple(p[3:9]), (p[9], p[10]), tuple(p[11:15]), size,
                    source=source)
    if key == "fisheyeradtanthinprism" and len(p) == 16:  # with two focal lengths
        return Lens("fisheye", p[0], p[1], p[2], p[3], tuple(p[4:10]), (p[10], p[11]), tuple(p[12:16]), size,
                    source=source)
    if key in ("kannalabrandtk3", "kannalabrandt") and len(p) == 8:
        return Lens("fisheye", p[0], p[1], p[2], p[3], tuple(p[4:8]), size=size, source=source)
    if key in ("linear", "pinhole") and len(p) == 4:
        return Lens("pinhole", p[0], p[1], p[2], p[3], size=size, source=source)
    raise EgoDataError(f"{source}: projection {name!r} with {len(p)} parameters is not a model kinpoly reads "
                       f"(FisheyeRadTanThinPrism/FISHEYE624 with 15, KannalaBrandtK3 with 8, Linear with 4)")


def _plain(data: dict, source: str) -> Lens:
    model = str(data.get("model", "")).lower()
    if model not in FISHEYE_MODELS + PINHOLE_MODELS:
        raise EgoDataError(f"{source}: model {data.get('model')!r}: expected one of "
                           f"{', '.join(FISHEYE_MODELS + PINHOLE_MODELS)}")
    fisheye = model in FISHEYE_MODELS
    if data.get("fov") is not None and "fx" not in data:
        if not fisheye:
            raise EgoDataError(f"{source}: a pinhole lens by field of view is --video-fovy, not a calibration")
        return Lens("fisheye", fov=float(data["fov"]), source=source)
    size = None
    if data.get("width") is not None or data.get("height") is not None:
        size = (int(data["width"]), int(data["height"]))
    fx = float(data["fx"])
    fy = float(data.get("fy", fx))
    dist = [float(v) for v in data.get("distortion", []) or []]
    if fisheye:
        return Lens("fisheye", fx, fy, float(data["cx"]), float(data["cy"]), tuple(dist), size=size, source=source)
    if len(dist) not in (0, 4, 5):
        raise EgoDataError(f"{source}: pinhole distortion is OpenCV's k1 k2 p1 p2 [k3], got {len(dist)} values")
    radial = tuple(dist[:2] + dist[4:5]) if dist else ()
    tangential = (dist[3], dist[2]) if dist else (0.0, 0.0)  # OpenCV's p1 goes with y, p2 with x
    return Lens("pinhole", fx, fy, float(data["cx"]), float(data["cy"]), radial, tangential, size=size, source=source)
