"""Metric scale of a monocular head trajectory: from the wearer's gait, from the flow encoder,
and their combination.

Monocular SLAM returns the camera trajectory up to an unknown similarity. After levelling
(:func:`~.trajectory.to_head_poses` with ``scale=1``) positions are in SLAM units and the
metric scale ``s`` (metres per SLAM unit) is unknown; time is not (frames come at the video's
frame rate). Two cues give ``s``:

**Gait** (:func:`gait_scale`, needs only the trajectory). Walking makes the head bob up and
down once per step: vertical head translation follows the trunk at the step frequency (Hirasaki
et al. 1999, Exp Brain Res 127:117). The step frequency (cadence) is a time, so it is measured
without knowing the scale; the step length in SLAM units is the horizontal speed divided by
it. People walk with a nearly constant *walk ratio*, step length / cadence, over a wide range
of speeds (Sekiya et al. 1996/1997, Sekiya & Nagasaki 1998; the constancy breaks only below
about 60 m/min, Murakami & Otaka 2017). Reported adult values lie around 0.006-0.007 m per
step/min; we take ``WALK_RATIO`` = 0.0064 for ``REFERENCE_HEIGHT`` = 1.70 m, proportional to
stature for others (an error of this constant is the same relative error of the scale). The
metric step length is then ``WALK_RATIO * cadence`` and
``s = WALK_RATIO * cadence / step_length_units``. Stature comes from ``body_height``
(default: the eye height divided by 0.936, the eye-height fraction of Drillis & Contini that
the humanoid uses, so the default 1.6 m eyes mean a 1.71 m wearer). The inverted-pendulum step
length model of Zijlstra & Hof (2003, Gait Posture 18:1) is reported as a cross-check: the
head rides on the centre of mass, which vaults on a leg of length ``0.530 * height`` (hip
height, Drillis & Contini), so a vertical excursion ``h`` and step length ``L`` satisfy
``L = K * 2 * sqrt(2 l h - h^2)`` with their correction ``K = 1.25``; with ``h = s h_u`` and
``L = s L_u`` this gives ``s = 2 l h_u / ((L_u / 2K)^2 + h_u^2)``. Eye height above the
floor (about 0.936 x stature when standing) would be a third cue, but a head trajectory alone
has no floor, so it is not used.

Walking is told from other motion per 2.5 s window (hop 0.25 s) by scale-free tests:

1. the detrended vertical head position has a spectral peak between 1.2 and 2.6 Hz (72 to 156
   steps/min) that is a local maximum inside that band;
2. periodicity: at least 40% of its power between 0.5 and 8 Hz lies within +-0.6 Hz
   (1.5 / window length) of that peak;
3. pendular exchange: the forward speed oscillates at the step frequency in antiphase with the
   height (phase difference above 90 degrees): a walker vaults over the stance leg and is
   slowest at the top (Cavagna et al. 1977), a runner or a bouncing gesture is slowest at the
   bottom;
4. progression: the step length is at least 5 times the vertical excursion (walking on the
   spot, swaying and gesturing do not progress).

The gait scale is the median of the per-window walk-ratio scales over the walking windows
(at least ``MIN_WALKING_WINDOWS`` of them, i.e. 3 s of walking); its log-uncertainty combines
``GAIT_LOG_SIGMA`` with the window-to-window spread.

**Flow encoder** (:func:`flow_scale`): the ratio of mean speeds between the encoder's metric
head velocity and the trajectory's (:func:`~.trajectory.estimate_scale`). It is only used when
the encoder says the head moves (mean predicted speed of at least ``FLOW_MIN_SPEED`` m/s):
below that the speeds are jitter and head rotation.

**Combination** (:func:`estimate_metric_scale`): the inverse-variance weighted mean of the
log-scales of the usable components. The two log-uncertainties, ``GAIT_LOG_SIGMA`` and
``FLOW_LOG_SIGMA``, are the RMS log-errors (bias included) of each component on the 162
training takes of the synthetic dataset made SLAM-like (``benchmarks/ego_scale.py --split
train``): gait 0.38 on the 47 takes with walking, mostly a 1.3x over-estimate on stylised
walks (the walk ratio varies between people too, roughly 10%; most of the gait error is gait
style: shuffling, bouncing); flow 0.25 on 140 takes once its steady 0.53x under-estimate
(``FLOW_BIAS``, measured on the same training takes) is divided out. The held-out takes and
the real ARES sample were not used for any of these constants. When no
component is usable (standing still, a too-short or non-walking trajectory without a flow
encoder) an :class:`~.take.EgoDataError` says why and asks for ``--scale``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .take import EgoDataError

WALK_RATIO = 0.0064  # m / (steps/min), adults of REFERENCE_HEIGHT
REFERENCE_HEIGHT = 1.70  # m
GAIT_LOG_SIGMA = 0.38  # RMS log-error of the gait scale on the training takes
EYE_HEIGHT_FRACTION = 0.936  # eye height / stature (Drillis & Contini; the humanoid's)
HIP_HEIGHT_FRACTION = 0.530  # hip height / stature (Drillis & Contini; the humanoid's)
PENDULUM_K = 1.25  # Zijlstra & Hof 2003 step-length correction
WINDOW_S = 2.5
HOP_S = 0.25
STEP_BAND_HZ = (1.2, 2.6)
MIN_PERIODICITY = 0.4
MIN_PHASE_DEG = 90.0
MIN_STEP_OVER_BOB = 5.0
MIN_WALKING_WINDOWS = 3
FLOW_MIN_SPEED = 0.2  # m/s
# The encoder's speed ratio reads low by a steady factor: median 0.53 x the true scale on the
# 162 training takes made SLAM-like (IQR 0.46-0.65; the encoder regresses speeds towards the
# mean and SLAM jitter adds trajectory speed). The flow scale divides it out.
FLOW_BIAS = 0.53
FLOW_LOG_SIGMA = 0.25  # RMS log-error of the (de-biased) flow scale on the training takes


def _moving_average(x: np.ndarray, n: int) -> np.ndarray:
    """Centred moving average over ``n`` frames along axis 0, edges padded by repetition."""
    pad = np.concatenate([np.repeat(x[:1], n // 2, 0), x, np.repeat(x[-1:], n - 1 - n // 2, 0)])
    c = np.cumsum(np.concatenate([np.zeros((1,) + x.shape[1:]), pad]), 0)
    return (c[n:] - c[:-n]) / n


def _windows(x: np.ndarray, n: int, hop: int) -> np.ndarray:
    """(W, n) windows of a (T,) signal, each with its mean and linear trend removed."""
    w = sliding_window_view(x, n)[::hop]
    t = np.arange(n) - (n - 1) / 2
    w = w - w.mean(1, keepdims=True)
    return w - np.outer(w @ t / (t @ t), t)


def gait_windows(head_pos: np.ndarray, fps: float) -> dict[str, np.ndarray]:
    """Per-window gait measurements of a levelled head trajectory (T, 3) in any unit (Z up).

    Returns arrays over the ``WINDOW_S`` windows (hop ``HOP_S``): ``step_hz`` (vertical
    spectral peak), ``bob`` (peak-to-peak vertical excursion of that component, units),
    ``step_length`` (horizontal speed of the 1 s moving average / step_hz, units),
    ``periodicity``, ``phase_deg`` (forward speed relative to height at the step frequency)
    and ``walking`` (all four tests of the module docstring). Empty when the trajectory is
    shorter than a window.
    """
    pos = np.asarray(head_pos, dtype=np.float64)
    n, hop = int(round(WINDOW_S * fps)), max(1, int(round(HOP_S * fps)))
    if len(pos) < n:
        return {k: np.zeros(0) for k in ("step_hz", "bob", "step_length", "periodicity", "phase_deg", "walking")}
    # progression: velocity of the 1 s moving average (cancels the stride-frequency sway)
    v_smooth = np.gradient(_moving_average(pos[:, :2], max(1, int(round(fps)))), 1.0 / fps, axis=0)
    speed = np.linalg.norm(v_smooth, axis=1)
    heading = v_smooth / np.maximum(speed, 1e-12)[:, None]
    v_forward = np.sum(np.gradient(pos[:, :2], 1.0 / fps, axis=0) * heading, axis=1)
    hann = np.hanning(n)
    nfft = 1 << int(np.ceil(np.log2(8 * n)))
    freq = np.fft.rfftfreq(nfft, 1.0 / fps)
    Fz = np.fft.rfft(_windows(pos[:, 2], n, hop) * hann, nfft)
    Fv = np.fft.rfft(_windows(v_forward, n, hop) * hann, nfft)
    power = np.abs(Fz) ** 2
    band = (freq >= STEP_BAND_HZ[0]) & (freq <= STEP_BAND_HZ[1])
    lo, hi = np.flatnonzero(band)[[0, -1]]
    k = np.argmax(np.where(band, power, -1.0), axis=1)
    rows = np.arange(len(k))
    interior = (k > lo) & (k < hi) & (power[rows, k] >= power[rows, k - 1]) & (power[rows, k] >= power[rows, k + 1])
    step_hz = freq[k]
    total = power[:, (freq >= 0.5) & (freq <= 8.0)].sum(1)
    near = np.abs(freq[None] - step_hz[:, None]) <= 1.5 / WINDOW_S
    periodicity = np.divide((power * near).sum(1), total, out=np.zeros_like(total), where=total > 0)
    bob = 4.0 * np.abs(Fz[rows, k]) / hann.sum()  # 2 x the sinusoid's amplitude
    phase = np.degrees(np.angle(Fv[rows, k] * np.conj(Fz[rows, k])))
    step_length = sliding_window_view(speed, n)[::hop].mean(1) / step_hz
    walking = (interior & (periodicity >= MIN_PERIODICITY) & (np.abs(phase) > MIN_PHASE_DEG)
               & (step_length >= MIN_STEP_OVER_BOB * bob) & (bob > 0))
    return {"step_hz": step_hz, "bob": bob, "step_length": step_length, "periodicity": periodicity,
            "phase_deg": phase, "walking": walking}


def gait_scale(head_pos: np.ndarray, fps: float, body_height: float) -> dict:
    """Metric scale of a levelled head trajectory (T, 3) from walking (see the module
    docstring). Returns ``scale`` (None when there is no usable walking, with ``reason``),
    ``log_sigma``, ``walking_windows`` / ``windows``, ``cadence_spm``, ``step_length_units``,
    ``bob_units`` (medians over walking windows), ``pendulum_scale`` (the Zijlstra & Hof
    cross-check; not used: on the training takes it over-estimates 1.9x, as head bob varies
    with gait style far more than the walk ratio) and ``body_height``."""
    g = gait_windows(head_pos, fps)
    walk = g["walking"]
    out: dict = {"scale": None, "windows": int(len(walk)), "walking_windows": int(walk.sum()),
                 "body_height": float(body_height)}
    if len(walk) == 0:
        out["reason"] = f"trajectory shorter than a {WINDOW_S} s gait window"
        return out
    if walk.sum() < MIN_WALKING_WINDOWS:
        out["reason"] = (f"no walking found ({int(walk.sum())} of {len(walk)} {WINDOW_S} s windows show a "
                         f"periodic, progressing, pendular head bob; at least {MIN_WALKING_WINDOWS} needed)")
        return out
    f, L, h = g["step_hz"][walk], g["step_length"][walk], g["bob"][walk]
    log_s = np.log(WALK_RATIO * body_height / REFERENCE_HEIGHT * 60.0 * f / L)
    med = float(np.median(log_s))
    spread = 1.4826 * float(np.median(np.abs(log_s - med)))
    n_eff = max(1.0, (int(walk.sum()) - 1) * HOP_S / WINDOW_S + 1.0)
    leg = HIP_HEIGHT_FRACTION * body_height
    pendulum = 2.0 * leg * h / ((L / (2.0 * PENDULUM_K)) ** 2 + h ** 2)
    out.update({"scale": float(np.exp(med)),
                "log_sigma": float(np.hypot(GAIT_LOG_SIGMA, spread / np.sqrt(n_eff))),
                "cadence_spm": float(np.median(f) * 60.0), "step_length_units": float(np.median(L)),
                "bob_units": float(np.median(h)), "pendulum_scale": float(np.median(pendulum))})
    return out


def flow_scale(unscaled_local_vel: np.ndarray, predicted_local_vel: np.ndarray) -> dict:
    """The flow encoder's scale (:func:`~.trajectory.estimate_scale`: speed ratio on the frames
    where the trajectory moves, divided by its training-set bias ``FLOW_BIAS``) with
    ``log_sigma``; ``scale`` is None (with ``reason``) when
    the encoder sees no motion (mean predicted speed below ``FLOW_MIN_SPEED``) or the
    trajectory does not move."""
    from .trajectory import estimate_scale

    v = np.asarray(unscaled_local_vel)
    p = np.asarray(predicted_local_vel)
    s, detail = estimate_scale(v, p)
    pred_speed = float(np.mean(np.linalg.norm(p, axis=1)))
    out = dict(detail, mean_predicted_speed_mps=pred_speed, scale=None)
    if not np.any(np.linalg.norm(v, axis=1) > 0):
        out["reason"] = "the trajectory does not move"
    elif pred_speed < FLOW_MIN_SPEED:
        out["reason"] = (f"the flow encoder sees the head nearly still (mean {pred_speed:.2f} m/s < "
                         f"{FLOW_MIN_SPEED} m/s)")
    elif not (np.isfinite(s) and s > 0):
        out["reason"] = f"speed ratio {s} is not a positive number"
    else:
        out.update(scale=float(s) / FLOW_BIAS, bias=FLOW_BIAS, log_sigma=FLOW_LOG_SIGMA)
    return out


def estimate_metric_scale(head_pose: np.ndarray, fps: float, predicted_local_vel: np.ndarray | None = None,
                          body_height: float = 1.6 / EYE_HEIGHT_FRACTION) -> tuple[float, dict]:
    """Metric scale of a levelled, unit-scale head trajectory (T, 7) at ``fps``: gait and, when
    ``predicted_local_vel`` (T, 6 or 3: the flow encoder's head-frame velocity per frame) is
    given, the flow encoder, combined by inverse-variance weighting of log-scales (module
    docstring). Returns ``(scale, report)``; the report has each component (``gait``,
    ``flow``) with its scale or the reason it is unusable, ``used`` and ``log_sigma``.
    Raises :class:`EgoDataError` when no component is usable."""
    from .features import head_local_velocities

    head_pose = np.asarray(head_pose, dtype=np.float64)
    report: dict = {"gait": gait_scale(head_pose[:, :3], fps, body_height)}
    if predicted_local_vel is not None:
        v = head_local_velocities(head_pose, fps)[:-1, :3]
        report["flow"] = flow_scale(v, np.asarray(predicted_local_vel)[:-1, :3])
    used = [k for k, c in report.items() if c["scale"] is not None]
    if not used:
        why = "; ".join(f"{k}: {c['reason']}" for k, c in report.items())
        if predicted_local_vel is None:
            why += "; flow: no flow encoder"
        raise EgoDataError(f"cannot estimate the metric scale ({why}); pass --scale")
    w = np.array([report[k]["log_sigma"] ** -2.0 for k in used])
    log_s = np.array([np.log(report[k]["scale"]) for k in used])
    scale = float(np.exp(np.sum(w * log_s) / w.sum()))
    report.update(scale=scale, used=used, log_sigma=float(w.sum() ** -0.5))
    return scale, report
