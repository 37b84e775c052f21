"""``kinpoly ego build``: motion clips -> egocentric takes (scenes, head-camera video, features).

Per clip: recentre it in the room, synthesise its scene (:mod:`.scenes`), render the head
camera offscreen at ``width`` x ``height`` (:class:`kinpoly.visualization.render.ClipRenderer`,
``view="head"``, walled room), compute DIS optical flow between consecutive frames, encode it
with the flow encoder (image features), and derive the head features from the (optionally
SLAM-noised) head trajectory. One take per clip, named after the clip (``<clip>_<k>`` only when
``take_seconds`` splits a long clip). With ``mirror``, every take also gets a left-right mirrored
twin ``<take>_mirror`` (:func:`kinpoly.motion.augment.mirror_clip`, its own scene and video) in
the split of its source clip; mirrored twins of test clips are kept out of ``test``.

The build is parallel over processes, resumable (a take whose file exists with the same
settings hash is kept), deterministic given the seed (per-take random streams derive from the
seed and the take name, never from the order of work), and records failures in the manifest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import check_output, did_you_mean
from ..motion.augment import mirror_clip
from ..motion.clip import ClipError, ClipFolder, MotionClip, ObjectTrack
from .scenes import SceneConfig, ScenePlacementError, synthesize_scene
from .take import EgoDataError, EgoTake, write_manifest

log = logging.getLogger(__name__)


@dataclass
class NoiseConfig:
    enabled: bool = False
    drift_m_per_s: float = 0.02
    drift_deg_per_s: float = 0.5
    jitter_m: float = 0.005
    jitter_deg: float = 0.3


@dataclass
class EgoConfig:
    seed: int = 0
    width: int = 128
    height: int = 128
    fovy: float = 100.0  # degrees, vertical field of view of the head camera
    flow_size: int = 32  # pooled flow grid (encoder input)
    flow_preset: str = "ultrafast"
    encoder: str | None = None  # checkpoint; None: the shipped one (checkpoints/flow_encoder)
    features: bool = True  # compute image features (needs an encoder checkpoint)
    save_flow: bool = False  # keep the pooled flows in each take (to train the encoder)
    min_frames: int = 10
    take_seconds: float | None = None  # split clips longer than this into several takes
    test_fraction: float = 0.2
    mirror: bool = False  # also build every clip's left-right mirror image (training augmentation)
    recentre: bool = True  # move the clip's path to the middle of the room
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    scene: SceneConfig = field(default_factory=SceneConfig)

    def __post_init__(self) -> None:  # a ValueError here is a one-line ConfigError of load_config
        if not 0 < self.fovy < 180:
            raise ValueError(f"fovy {self.fovy:g}: expected degrees between 0 and 180")
        if self.width < 1 or self.height < 1 or self.flow_size < 1:
            raise ValueError(f"width {self.width}, height {self.height}, flow_size {self.flow_size}: "
                             f"expected positive pixel counts")
        if not 0 <= self.test_fraction <= 1:
            raise ValueError(f"test_fraction {self.test_fraction:g}: expected 0 to 1")
        if self.take_seconds is not None and not self.take_seconds > 0:
            raise ValueError(f"take_seconds {self.take_seconds:g}: expected a positive duration or null")

    def digest(self) -> str:
        d = dataclasses.asdict(self)
        if not d["mirror"]:  # added later: builds made before it keep their hash
            del d["mirror"]
        return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:12]


def take_rng(seed: int, name: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def split_takes(entries: list[dict], seed: int, fraction: float) -> dict[str, list[str]]:
    """Train/test lists: a take is in test when a hash of (seed, source clip) says so, so the
    takes of one clip stay together and the split does not depend on the order of work. Then
    stratified: every action with takes from at least 2 clips gets at least one test clip (the
    one with the smallest hash) and keeps at least one training clip. Mirrored takes
    (``"mirror": true``) follow their source clip into train; those of test clips are listed
    apart, under ``test_mirror``, so the test split stays the unaugmented takes."""
    if fraction <= 0:
        return {"train": sorted(e["name"] for e in entries), "test": []}
    h = {e["source_clip"]: zlib.crc32(f"{seed}:{e['source_clip']}".encode()) % 10000 for e in entries}
    test_clips = {c for c, v in h.items() if v < fraction * 10000}
    by_action: dict[str, set[str]] = {}
    for e in entries:
        by_action.setdefault(e.get("action") or "none", set()).add(e["source_clip"])
    for clips in by_action.values():
        if len(clips) < 2:
            continue
        ordered = sorted(clips, key=lambda c: (h[c], c))
        if not clips & test_clips:
            test_clips.add(ordered[0])
        if clips <= test_clips:
            test_clips.discard(ordered[-1])
    split: dict[str, list[str]] = {"train": [], "test": []}
    for e in entries:
        key = "test" if e["source_clip"] in test_clips else "train"
        if e.get("mirror") and key == "test":
            key = "test_mirror"
        split.setdefault(key, []).append(e["name"])
    return {k: sorted(v) for k, v in split.items()}


def recentre(clip: MotionClip) -> tuple[MotionClip, np.ndarray]:
    """The clip moved horizontally so its pelvis path's bounding box is centred at the origin."""
    xy = clip.qpos[:, :2]
    off = -(xy.min(0) + xy.max(0)) / 2
    q = clip.qpos.copy()
    q[:, :2] += off
    objs = []
    for t in clip.objects:
        p = t.poses.copy()
        p[:, :2] += off
        objs.append(ObjectTrack(t.object, p))
    return dataclasses.replace(clip, qpos=q, objects=objs), off


# --- per-worker state ---------------------------------------------------------------------------
_ENCODERS: dict[str, object] = {}


def _encoder(cfg: EgoConfig):
    from .flow import load_encoder

    key = str(cfg.encoder)
    if key not in _ENCODERS:
        _ENCODERS[key] = load_encoder(cfg.encoder)
    return _ENCODERS[key]


def _worker_init() -> None:
    os.environ.setdefault("MUJOCO_GL", "egl")
    import torch

    torch.set_num_threads(1)


def render_take_video(clip: MotionClip, tracks: list[ObjectTrack], cfg: EgoConfig,
                      video_path: Path | None = None) -> tuple[np.ndarray, dict]:
    """Render the head camera over the clip and compute pooled flows; returns
    ((T-1, 2, s, s) float32 flows of frame pairs, timings) and writes an MP4 if asked."""
    from ..visualization.render import ClipRenderer
    from .flow import FlowComputer

    t_render = t_flow = 0.0
    flows = []
    fc = FlowComputer(cfg.flow_size, cfg.flow_preset)
    writer = tmp = None
    if video_path is not None:
        import imageio.v2 as imageio

        video_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = video_path.with_name(f".{video_path.stem}.{os.getpid()}.tmp.mp4")
        writer = imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=clip.fps, codec="libx264",
                                    pixelformat="yuv420p", quality=7, macro_block_size=2,
                                    ffmpeg_log_level="error")
    r = ClipRenderer(clip.body, [t.object for t in tracks], width=cfg.width, height=cfg.height,
                     view="head", room=True, head_camera_fovy=cfg.fovy)
    try:
        img = np.empty((cfg.height, cfg.width, 3), np.uint8)
        obj = np.stack([t.poses for t in tracks], 1) if tracks else None
        for i in range(clip.num_frames):
            t0 = time.perf_counter()
            r.frame(clip.qpos[i], None if obj is None else obj[i], out=img)
            t1 = time.perf_counter()
            f = fc.push(img)
            if f is not None:
                flows.append(f)
            t_flow += time.perf_counter() - t1
            t_render += t1 - t0
            if writer is not None:
                writer.append_data(img)
    finally:
        r.close()
        if writer is not None:
            writer.close()
            os.replace(tmp, video_path)
    return np.stack(flows), {"render_s": t_render, "flow_s": t_flow}


def features_from_flows(pair_flows: np.ndarray, cfg: EgoConfig) -> tuple[np.ndarray | None, np.ndarray | None, float]:
    """Per-frame image features (T, D) and predicted head velocity (T, 6) from pair flows."""
    from .flow import flows_per_frame

    if not cfg.features:
        return None, None, 0.0
    t0 = time.perf_counter()
    enc = _encoder(cfg)
    per_frame = flows_per_frame(pair_flows)
    feats, vel = enc.encode(per_frame)
    return feats, vel, time.perf_counter() - t0


def make_take(name: str, clip: MotionClip, source: str, cfg: EgoConfig, out: Path,
              save_video: bool) -> dict:
    """Build one take (scene, video, features) and write it; returns its manifest entry."""
    from .features import head_local_velocities, head_velocities, objects_relative_to_head, slam_noise

    t_start = time.perf_counter()
    if abs(clip.fps - 30.0) > 1e-6:
        raise EgoDataError(f"{source}: clip is at {clip.fps} fps; egocentric takes are built at 30 fps")
    if clip.num_frames < max(cfg.min_frames, 2):
        raise EgoDataError(f"{source}: {clip.num_frames} frames is too short for features "
                           f"(at least {max(cfg.min_frames, 2)})")
    offset = np.zeros(2)
    if cfg.recentre:
        clip, offset = recentre(clip)
    rng = take_rng(cfg.seed, name)
    t0 = time.perf_counter()
    scene = synthesize_scene(clip, cfg.scene, rng)
    t_scene = time.perf_counter() - t0
    tracks = scene.tracks
    video = out / "videos" / f"{name}.mp4" if save_video else None
    pair_flows, timing = render_take_video(clip, tracks, cfg, video)
    feats, _, t_enc = features_from_flows(pair_flows, cfg)
    gt_head = clip.head_pose()
    head = gt_head
    if cfg.noise.enabled:
        n = cfg.noise
        head = slam_noise(gt_head, clip.fps, rng, drift_m_per_s=n.drift_m_per_s,
                          drift_deg_per_s=n.drift_deg_per_s, jitter_m=n.jitter_m, jitter_deg=n.jitter_deg)
    obj_world = np.stack([t.poses for t in tracks], 1) if tracks else np.zeros((clip.num_frames, 0, 7))
    extent = float(np.abs(clip.qpos[:, :2]).max())
    take = EgoTake(
        name=name, head_pose=head, head_vels=head_velocities(head, clip.fps), fps=clip.fps,
        action=scene.action, object_poses=objects_relative_to_head(head, obj_world),
        object_kinds=[t.object.kind for t in tracks], object_names=[t.object.name for t in tracks],
        object_world=obj_world, image_features=feats, gt_head_pose=gt_head, qpos=clip.qpos,
        source_clip=source,
        meta={"config_hash": cfg.digest(), "seed": cfg.seed, "recentre_offset": offset.tolist(),
              "scene": scene.report(), "action_intervals": [list(iv) for iv in scene.intervals],
              "objects": [t.object.to_dict() for t in tracks], "body": clip.body.to_dict(),
              "camera": {"width": cfg.width, "height": cfg.height, "fovy": cfg.fovy},
              "noise": dataclasses.asdict(cfg.noise), "leaves_room": extent > 5.5,
              "encoder": None if feats is None else str(cfg.encoder or "shipped")})
    arrays_extra = {}
    if cfg.save_flow:
        arrays_extra["flow"] = pair_flows.astype(np.float16)
        arrays_extra["head_local_vels"] = head_local_velocities(gt_head, clip.fps)[:-1].astype(np.float32)
    take.extras = arrays_extra
    take.save(out / "takes" / f"{name}.npz")
    entry = take.summary(file=f"takes/{name}.npz")
    entry.update({"config_hash": cfg.digest(), "source_clip": source,
                  "timing_s": {"scene": round(t_scene, 4), "render": round(timing["render_s"], 4),
                               "flow": round(timing["flow_s"], 4), "encode": round(t_enc, 4),
                               "total": round(time.perf_counter() - t_start, 4)},
                  "scene": {"objects": [t.object.kind for t in tracks], "detected": scene.detected,
                            "max_object_penetration_m": round(scene.max_penetration_m, 5)}})
    return entry


def _job(args) -> tuple[str, list[dict], list[dict]]:
    """Worker: all takes of one clip -> (clip name, entries, failures)."""
    clip_path, clip_name, cfg, out, save_video = args
    entries, failures = [], []
    try:
        clip = MotionClip.load(clip_path)
    except ClipError as e:
        return clip_name, [], [{"clip": clip_name, "file": str(clip_path), "error": str(e)}]
    pieces = [(clip_name, clip, False)]
    if cfg.take_seconds and clip.duration > cfg.take_seconds:
        n = int(round(cfg.take_seconds * clip.fps))
        pieces = [(f"{clip_name}_{k:03d}", clip.slice(s, min(s + n, clip.num_frames)), False)
                  for k, s in enumerate(range(0, clip.num_frames - cfg.min_frames + 1, n))]
    if cfg.mirror:
        pieces += [(f"{name}_mirror", mirror_clip(piece, f"{name}_mirror"), True) for name, piece, _ in pieces]
    for name, piece, mirrored in pieces:
        try:
            entry = make_take(name, piece, clip_name, cfg, Path(out), save_video)
            entries.append({**entry, "mirror": True} if mirrored else entry)
        except (ScenePlacementError, EgoDataError, ClipError, ValueError) as e:
            failures.append({"take": name, "clip": clip_name, "file": str(clip_path),
                             "error": str(e), "kind": type(e).__name__})
        except Exception as e:  # noqa: BLE001 - one bad clip must not stop the build
            failures.append({"take": name, "clip": clip_name, "file": str(clip_path),
                             "error": f"{type(e).__name__}: {e}", "kind": type(e).__name__})
    return clip_name, entries, failures


def _existing(out: Path, digest: str) -> dict[str, list[dict]]:
    """Entries of a previous (possibly killed) build with the same settings, by clip."""
    from .take import MANIFEST

    path = out / MANIFEST
    done: dict[str, list[dict]] = {}
    if path.is_file():
        try:
            for e in json.loads(path.read_text())["takes"]:
                if e.get("config_hash") == digest and (out / e["file"]).is_file():
                    done.setdefault(e["source_clip"], []).append(e)
        except (ValueError, KeyError):
            pass
    return done


def build_dataset(motions: str | os.PathLike, out: str | os.PathLike, cfg: EgoConfig | None = None, *,
                  workers: int | None = None, save_video: bool = False, progress: bool = True,
                  limit: int | None = None, clips: list[str] | None = None) -> dict:
    """Build (or resume) the take folder ``out`` from the clip folder ``motions``."""
    from tqdm import tqdm

    from ..processes import process_map

    cfg = cfg or EgoConfig()
    out = Path(out)
    folder = ClipFolder(motions)  # bad input ends the build before anything is written
    unknown = [c for c in clips or [] if c not in folder]
    if unknown:
        raise ClipError(f"{motions}: no clip named {unknown[0]!r}{did_you_mean(unknown[0], folder)}"
                        + (f" (nor {', '.join(map(repr, unknown[1:]))})" if unknown[1:] else ""))
    if not len(folder):
        raise ClipError(f"{motions}: no clips to build takes from (a clip folder of `kinpoly motion import`)")
    if limit is not None and limit < 1:
        raise ValueError(f"limit {limit}: expected at least 1 clip")
    names = [n for n in folder if clips is None or n in clips]
    if limit:
        names = names[:limit]
    check_output(out, folder=True)
    (out / "takes").mkdir(parents=True, exist_ok=True)
    digest = cfg.digest()
    done = _existing(out, digest)
    entries: dict[str, list[dict]] = {n: done[n] for n in names if n in done}
    failures: dict[str, list[dict]] = {}
    todo = [n for n in names if n not in entries]
    jobs = [(folder.path(n), n, cfg, str(out), save_video) for n in todo]
    workers = max(1, min(workers or os.cpu_count() or 1, len(jobs) or 1))
    info = {"config": dataclasses.asdict(cfg), "config_hash": digest, "motions": str(motions)}
    started = time.perf_counter()

    def flush():
        takes = [e for es in entries.values() for e in es]
        split = split_takes(takes, cfg.seed, cfg.test_fraction)
        write_manifest(out, takes, split, [f for fs in failures.values() for f in fs], info)

    bar = tqdm(total=len(names), initial=len(names) - len(todo), disable=not progress, desc="ego build",
               unit="clip")
    try:
        if workers > 1:
            results = process_map(_job, jobs, workers, _worker_init)
        else:
            _worker_init()
            results = map(_job, jobs)
        try:
            for name, es, fs in results:
                if es:
                    entries[name] = es
                if fs:
                    failures[name] = fs
                flush()
                bar.update(1)
        finally:
            getattr(results, "close", lambda: None)()  # a worker pool: stop it
    finally:
        bar.close()
    flush()
    takes = [e for es in entries.values() for e in es]
    new = [e for n in todo for e in entries.get(n, [])]
    timing = {k: float(sum(e["timing_s"][k] for e in new)) for k in ("scene", "render", "flow", "encode", "total")}
    frames_new = int(sum(e["frames"] for e in new))
    wall = time.perf_counter() - started
    return {"takes": len(takes), "frames": int(sum(e["frames"] for e in takes)), "new_takes": len(new),
            "new_frames": frames_new, "reused_takes": len(takes) - len(new),
            "failures": [f for fs in failures.values() for f in fs], "wall_s": round(wall, 2),
            "workers": workers, "timing_s": {k: round(v, 2) for k, v in timing.items()},
            "frames_per_s": round(frames_new / wall, 1) if wall > 0 and frames_new else None}
