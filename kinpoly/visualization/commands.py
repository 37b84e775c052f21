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


@click.command("view", cls=Command)
@click.argument("clip")
@click.option("--ghost", default=None,
              help="A second clip drawn over CLIP as a translucent skeleton (e.g. the ground truth of "
                   "an estimate); same frame rate.")
@click.option("--track", is_flag=True,
              help="First simulate CLIP with a tracking controller, then show the simulated motion with "
                   "CLIP as the ghost.")
@click.option("--controller", type=click.Path(exists=True, dir_okay=False), default=None,
              help="With --track: the controller's policy .pt (default: the shipped mocap tracker, "
                   "checkpoints/uhc_mocap_global).")
@click.option("--training-free", is_flag=True, help="With --track: the training-free controller.")
@click.option("-o", "--override", multiple=True, help="With --track: KEY=VALUE controller setting.")
@click.option("--live", is_flag=True,
              help="With --track: simulate in real time in the window instead of first; drag a body with "
                   "Ctrl + right mouse button to push it and watch the controller recover (or fall).")
@click.option("--speed", type=click.FloatRange(1 / 16, 16), default=1.0, show_default=True,
              help="Playback speed (the keys ] and [ change it while playing).")
@click.option("--once", is_flag=True, help="Play once and close instead of looping.")
def view(clip: str, ghost: str | None, track: bool, controller: str | None, training_free: bool,
         override: tuple[str, ...], live: bool, speed: float, once: bool) -> None:
    """Play CLIP (a clip .npz, or DIR/name in a clip folder) in MuJoCo's interactive viewer.

    Needs a display (on a headless machine use `kinpoly render`). Keys: P pause, . and , one
    frame forward / back, ] and [ faster / slower, Home to the start; the mouse orbits the
    camera, which follows the pelvis. With --track --live the controller runs in the window in
    real time and Ctrl + right-drag pushes a body.
    """
    from .viewer import Playback, ViewerUnavailable, check_display, track_live, view as show

    if (controller or training_free or override or live) and not track:
        raise click.UsageError("--controller, --training-free, -o and --live apply with --track")
    if controller and training_free:
        raise click.UsageError("give --controller or --training-free, not both")
    if track and ghost:
        raise click.UsageError("with --track the ghost is CLIP itself; leave out --ghost")
    if live and (once or speed != 1.0):
        raise click.UsageError("--live runs in real time until the window closes: no --speed or --once")
    try:
        check_display()  # before a controller runs for nothing
    except ViewerUnavailable as e:
        raise click.ClickException(str(e)) from None
    shown = resolve_clip(clip)
    ghost_clip = resolve_clip(ghost) if ghost else None
    if track:
        from ..policy.estimate import SHIPPED_MOCAP_CONTROLLER
        from ..simulation.evaluate import load_controller, score, track as simulate
        from ..simulation.reference import prepare_reference

        checkpoint = None if training_free else (controller or SHIPPED_MOCAP_CONTROLLER)
        cfg, policy = load_controller(checkpoint, overrides=override)
        ref = prepare_reference(shown)
        if live:
            try:
                episodes = track_live(ref, cfg.env, policy)
            except ViewerUnavailable as e:
                raise click.ClickException(str(e)) from None
            for i, e in enumerate(episodes, 1):
                click.echo(f"episode {i}: {e['end']} after {e['frames']} frames")
            return
        tracked = simulate(ref, cfg.env, policy)
        sc = score(tracked, ref)
        outcome = "completed" if sc["success"] else f"ended at frame {sc['simulated_frames'] - 1} ({sc['reason']})"
        click.echo(f"{shown.name}, {'training-free controller' if checkpoint is None else checkpoint}: {outcome}, "
                   f"global MPJPE {sc['mpjpe_global_mm']:.1f} mm, mean residual force {sc['residual_force_n']:.0f} N")
        shown, ghost_clip = tracked.clip, shown
    try:
        show(Playback.of(shown, ghost_clip, speed=speed, loop=not once))
    except ViewerUnavailable as e:
        raise click.ClickException(str(e)) from None
