"""``kinpoly render``: write an MP4 of one clip, or of two side by side."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import Command
from ..motion.clip import ClipError, MotionClip, resolve_clip


def _time_slice(clip: MotionClip, start: float | None, end: float | None) -> MotionClip:
    if start is None and end is None:
        return clip
    i0 = 0 if start is None else max(0, int(round(start * clip.fps)))
    i1 = clip.num_frames if end is None else min(clip.num_frames, int(round(end * clip.fps)))
    if i1 <= i0:
        raise ClipError(f"{clip.name}: no frames between {start or 0:g} s and "
                        f"{end if end is not None else clip.duration:g} s "
                        f"(clip is {clip.duration:.2f} s long)")
    return clip.slice(i0, i1)


@click.command("render", cls=Command)
@click.argument("clip")
@click.argument("clip2", required=False)
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output video (.mp4). Default: <clip name>.mp4 in the current folder.")
@click.option("--head-camera", is_flag=True, help="Add a panel with the first clip's head camera.")
@click.option("--width", type=click.IntRange(16, 1920), default=320, show_default=True,
              help="Width of each panel (pixels).")
@click.option("--height", type=click.IntRange(16, 1080), default=240, show_default=True,
              help="Height of each panel (pixels).")
@click.option("--start", type=click.FloatRange(min=0), default=None, help="Start time (s).")
@click.option("--end", type=click.FloatRange(min=0), default=None, help="End time (s).")
@click.option("--fps", type=click.FloatRange(min=1, max=240), default=None,
              help="Video frame rate (default: the clip's).")
@click.option("--label", "labels", multiple=True, help="Panel label (repeat per panel).")
@click.option("--no-shadows", is_flag=True, help="Faster rendering without shadows.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def render(clip: str, clip2: str | None, out: Path | None, head_camera: bool, width: int,
           height: int, start: float | None, end: float | None, fps: float | None,
           labels: tuple[str, ...], no_shadows: bool, quiet: bool) -> None:
    """Render CLIP (a clip .npz, or DIR/name in a clip folder) to an MP4 video.

    With CLIP2 (e.g. reference and simulated motion) both are shown side by side with the same
    camera motion; the shorter one holds its last frame.
    """
    clips = [_time_slice(resolve_clip(s), start, end) for s in (clip, clip2) if s]
    try:
        from .render import RenderingUnavailable, render_clips
    except ImportError as e:
        raise click.ClickException(f"rendering unavailable: {e}") from None

    out = out or Path(f"{clips[0].name}.mp4")
    try:
        stats = render_clips(clips, out, width=width, height=height, head_camera=head_camera,
                             fps=fps, labels=list(labels) or None, show_progress=not quiet,
                             shadows=not no_shadows)
    except RenderingUnavailable as e:
        raise click.ClickException(str(e)) from None
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"{out}: {e}") from None
    click.echo(f"{stats.path}  ({stats.frames} frames, {stats.width}x{stats.height}, "
               f"{stats.frames_per_second:.1f} frames/s)")
