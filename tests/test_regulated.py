"""Dynamics-regulated loop, its training and `kinpoly estimate` on tiny takes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from kinpoly.demo import sample_clips
from kinpoly.egocentric.features import head_velocities
from kinpoly.egocentric.take import EgoTake, write_manifest
from kinpoly.motion.clip import MotionClip
from kinpoly.policy.data import take_tensors
from kinpoly.policy.model import ContextEncoder, KinematicPolicy, PolicyConfig
from kinpoly.policy.regulated import RegulatedLoop
from kinpoly.simulation.env import EnvConfig


def _take(frames: int = 40) -> EgoTake:
    clip = sample_clips()[0].slice(0, frames)
    head = clip.head_pose()
    return EgoTake(name="walk", head_pose=head, head_vels=head_velocities(head, clip.fps), action="locomotion",
                   qpos=clip.qpos, gt_head_pose=head, meta={"body": clip.body.to_dict()})


def _policy() -> tuple[KinematicPolicy, ContextEncoder]:
    torch.manual_seed(0)
    cfg = PolicyConfig(hidden=32, mlp=[32], context_frames=6)
    return KinematicPolicy(cfg), ContextEncoder(cfg)


def test_loop_with_true_proposals_is_plain_tracking():
    """With the true poses as proposals, the loop (online reference written two frames ahead)
    simulates exactly what tracking the prepared clip does (its feed-forward from raw finite
    differences, as an online reference has to), and records every transition."""
    import dataclasses

    from kinpoly.simulation.evaluate import track
    from kinpoly.simulation.reference import prepare_reference

    take = take_tensors(_take(60))
    clip = sample_clips()[0].slice(0, 60)
    # the take's float32 poses, and no scene objects (the take has none)
    clip = dataclasses.replace(clip, qpos=take.qpos.double().numpy(), objects=[])
    tracked = track(prepare_reference(clip, smoothing=0.0), EnvConfig())  # online: raw differences
    policy, context = _policy()
    loop = RegulatedLoop(policy, context, EnvConfig(), None, head_fall_distance=np.inf)
    ep = loop.run(take, from_truth=True, record=True, truth_proposals=True)
    T = take.num_frames
    assert ep.sim_qpos.shape == (T, 76) and ep.kin_qpos.shape == (T, 76)
    n = tracked.clip.num_frames  # (tracking this walk without its scene falls at frame 42)
    same = n - 1 if tracked.reason else n  # the loop puts a fallen humanoid back on the proposal
    np.testing.assert_allclose(ep.sim_qpos[:same], tracked.clip.qpos[:same], atol=1e-6)
    assert [f for f, _ in ep.falls[:1]] == ([n - 1] if tracked.reason else [])
    assert ep.states.shape == (T - 1, policy.state_dim) and ep.hiddens.shape == (T - 1, 32)
    assert ep.rewards.shape == (T - 1,) and (ep.rewards <= 1.0).all()
    assert (ep.rewards[:10] > 0.5).all()  # close tracking of the true motion scores high
    if tracked.reason:
        assert ep.rewards[n - 2] == 0.0  # the transition into a fall earns nothing


def test_a_camera_out_of_reach_restarts_every_grace_period_not_every_frame():
    """A restart whose pose cannot reach the camera (here: no distance is close enough) is
    checked again ``restart_grace`` frames later, so the estimate does not teleport every frame."""
    take = take_tensors(_take(30))
    policy, context = _policy()
    loop = RegulatedLoop(policy, context, EnvConfig(), None, head_fall_distance=0.0)
    frames = [f for f, reason in loop.run(take, from_truth=True).falls if reason == "lost_head"]
    assert frames == list(range(1, 30, 5))  # frames 1..29 of a 30-frame take
    loop.restart_grace = 1
    assert [f for f, _ in loop.run(take, from_truth=True).falls] == list(range(1, 30))


def test_partly_true_proposals_take_only_the_masked_values_from_the_truth():
    """A mask over the pose (a diagnosis: the true root under the policy's joints) puts the
    truth's values into the controller's targets and leaves the policy's elsewhere; a mask of
    the wrong size is a clear error."""
    take = take_tensors(_take(30))
    policy, context = _policy()
    loop = RegulatedLoop(policy, context, EnvConfig(), None, head_fall_distance=np.inf)
    mask = np.zeros(76, dtype=bool)
    mask[:7] = True
    ep = loop.run(take, from_truth=True, record=True, truth_proposals=mask)
    truth = take.qpos.double().numpy()
    np.testing.assert_allclose(ep.kin_qpos[1:, :7], truth[1:, :7], atol=1e-6)
    assert np.abs(ep.kin_qpos[2:, 7:] - truth[2:, 7:]).max() > 1e-3  # the policy's joints
    full = loop.run(take, from_truth=True, record=True, truth_proposals=np.ones(76, dtype=bool))
    np.testing.assert_allclose(full.kin_qpos, loop.run(take, from_truth=True, record=True,
                                                       truth_proposals=True).kin_qpos)
    with pytest.raises(ValueError, match="mask of 76"):
        loop.run(take, from_truth=True, truth_proposals=np.ones(75, dtype=bool))


def test_a_fixed_motion_is_tracked_without_running_the_policy():
    """``motion``: the loop tracks given frames (no feedback): on the truth it simulates exactly
    what the true proposals do, the policy never runs, and a fixed motion has no proposals to
    record."""
    take = take_tensors(_take(30))
    policy, context = _policy()
    loop = RegulatedLoop(policy, context, EnvConfig(), None, head_fall_distance=np.inf)
    truth = loop.run(take, from_truth=True, truth_proposals=True)

    def no_policy(*a, **k):
        raise AssertionError("the policy ran")

    policy.step = no_policy
    fixed = loop.run(take, motion=take.qpos)
    np.testing.assert_allclose(fixed.sim_qpos, truth.sim_qpos, atol=1e-9)
    np.testing.assert_allclose(fixed.kin_qpos, truth.kin_qpos, atol=1e-6)
    with pytest.raises(ValueError, match="no record"):
        loop.run(take, motion=take.qpos, record=True)
    with pytest.raises(ValueError, match="one 76-value pose per frame"):
        loop.run(take, motion=take.qpos[:-1])


def test_anchoring_on_the_simulation_writes_the_simulated_pose_under_each_proposal():
    """``anchor_on_simulation``: the reference frame the body is at holds the simulated pose when
    the next proposals are written (so the feed-forward runs from it); off, the previous proposal."""
    take = take_tensors(_take(20))
    policy, context = _policy()
    loop = RegulatedLoop(policy, context, EnvConfig(), None, head_fall_distance=np.inf)
    seen = {}
    write = None

    def spy(t, frames):
        if len(frames) == 3:
            seen[t] = (np.array(frames[0]), loop.sim.qpos.copy())
        write(t, frames)

    plain = loop.run(take, from_truth=True, record=True)
    loop.anchor_on_simulation = True
    original_load = loop.load_window

    def load_and_spy(*a, **k):
        nonlocal write
        ref, objs = original_load(*a, **k)
        write = ref.write
        ref.write = spy
        return ref, objs

    loop.load_window = load_and_spy
    anchored = loop.run(take, from_truth=True, record=True)
    assert len(seen) == take.num_frames - 2  # one write per step after the first
    for t, (written, sim_q) in seen.items():
        np.testing.assert_allclose(written, sim_q)
    np.testing.assert_allclose(anchored.sim_qpos[:2], plain.sim_qpos[:2], atol=1e-9)  # the first step is the same
    assert np.abs(anchored.sim_qpos - plain.sim_qpos).max() > 1e-6  # then the reference differs


def test_a_sagging_estimate_is_caught_by_the_head_and_restarted():
    """An untrained policy (zero output: "keep the simulated pose") lets the body sag under
    gravity, its proposals following it down; the observed camera shows it: a "lost_head" fall
    is recorded and the estimate restarts from the context encoder's pose; the motion stays
    whole and finite."""
    take = take_tensors(_take(60))
    policy, context = _policy()
    loop = RegulatedLoop(policy, context, EnvConfig(), None)
    ep = loop.run(take)
    assert ep.sim_qpos.shape == (take.num_frames, 76) and np.isfinite(ep.sim_qpos).all()
    assert ep.falls and all(r == "lost_head" for _, r in ep.falls)
    f = ep.falls[0][0]
    restart = loop.first_pose(take, f).double().numpy()[0]
    np.testing.assert_allclose(ep.sim_qpos[f, 7:], restart[7:], atol=1e-6)
    # without the head check the sag goes unnoticed: the body ends far below the camera
    ep = RegulatedLoop(policy, context, EnvConfig(), None, head_fall_distance=np.inf).run(take)
    assert not ep.falls and loop.head_distance(take, take.num_frames - 1) > 0.4


def test_restart_moves_with_the_camera():
    """A restarted humanoid (and the reference around it) moves horizontally at the observed
    camera's velocity, not from rest: a body restarted at rest during a walk falls behind
    the camera again at once."""
    take = take_tensors(_take(30))
    policy, context = _policy()
    loop = RegulatedLoop(policy, context, EnvConfig(), None)
    loop.run(take, from_truth=True)  # loads the simulation
    f = 12
    q = take.qpos[f].double().numpy()
    loop.restart(take, f, f, q)
    cam = take.head_pose[:, :3].double().numpy()
    v = (cam[f + 1, :2] - cam[f - 1, :2]) * take.fps / 2
    assert np.linalg.norm(v) > 0.3  # the sample walks
    np.testing.assert_allclose(loop.sim.qvel[:2], v, atol=1e-6)
    assert np.all(loop.sim.qvel[2:] == 0) and loop.sim.t == f
    np.testing.assert_allclose(loop.sim.qpos, q, atol=1e-6)
    np.testing.assert_allclose(loop.sim.ref.qvel[f - 1:f + 1, :2], [v, v], atol=1e-6)


def test_loop_records_a_fall_and_goes_on():
    """Proposals the humanoid cannot follow (a root teleporting away) end as recorded falls;
    the humanoid is put back on the proposal and the take is still estimated to its end."""
    take = take_tensors(_take(20))
    policy, context = _policy()
    with torch.no_grad():
        policy.head[-1].bias[76] = 200.0  # 200 m/s forward root velocity
    loop = RegulatedLoop(policy, context, EnvConfig(), None, head_fall_distance=np.inf)
    ep = loop.run(take, from_truth=True)
    assert ep.falls and ep.falls[0][1] in ("fell", "unstable")
    assert ep.sim_qpos.shape[0] == take.num_frames and np.isfinite(ep.sim_qpos).all()


def _write_dataset(root, takes):
    for t in takes:
        t.save(root / "takes" / f"{t.name}.npz")
    write_manifest(root, [t.summary(file=f"takes/{t.name}.npz") for t in takes],
                   {"train": [t.name for t in takes], "test": [t.name for t in takes]}, [], {})


def _checkpoint(path):
    from kinpoly.policy.supervised import SupervisedConfig, SupervisedTrainer

    cfg = SupervisedConfig(iterations=2, batch=2, window=12, checkpoint_every=2, threads=1,
                           use_image_features=False, policy=PolicyConfig(hidden=32, mlp=[32], context_frames=6))
    SupervisedTrainer(cfg, [take_tensors(_take())], path).train(progress=False)
    return path / "checkpoint.pt"


def test_estimate_cli_writes_everything_and_lists_bad_takes(tmp_path):
    from kinpoly.cli import main

    ck = _checkpoint(tmp_path / "sup")
    data = tmp_path / "data"
    good = _take(30)
    _write_dataset(data, [good, _take(30).__class__(**{**good.__dict__, "name": "broken"})])
    (data / "takes" / "broken.npz").write_bytes(b"not a zip")
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["estimate", "--take", str(data), "--out", str(out), "--checkpoint", str(ck),
                                    "--training-free", "--videos", "0", "--no-progress"])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "metrics.json").read_text())
    assert report["takes"] == 1 and report["failures"][0]["take"] == "broken"
    assert report["evaluation"]["clips"]["walk"]["mpjpe_mm"] is not None
    assert json.loads((out / "run.json").read_text())["git_commit"] and (out / "config.yaml").is_file()
    for f in ("clips/walk.npz", "bvh/walk.bvh", "smpl/walk.npz", "ground_truth/walk.npz", "proposals/walk.npz",
              "states/walk.npz"):
        assert (out / f).is_file(), f
    with np.load(out / "smpl" / "walk.npz") as z:  # SMPL parameters of the estimate
        assert z["poses"].shape == (30, 72) and z["trans"].shape == (30, 3)
    with np.load(out / "states" / "walk.npz") as z:
        assert z["body_contact"].shape == (30, 24) and z["body_contact"].any()
        wrench = z["residual_wrench"]
    # the residual root force (outside help) per step, and its mean in the report, also against
    # the body's weight (a standing humanoid of ~50-90 kg)
    from kinpoly.simulation.model import body_weight_n

    assert wrench.shape == (29, 6)
    r = report["residual"]["takes"]["walk"]
    assert r["force_n"] == pytest.approx(np.linalg.norm(wrench[:, :3], axis=1).mean()) and r["force_n"] > 0
    weight = body_weight_n(MotionClip.load(out / "clips" / "walk.npz").body)
    assert 400 < weight < 900 and r["share_of_weight"] == pytest.approx(r["force_n"] / weight)
    assert "Residual root force" in (out / "metrics.md").read_text()
    # `kinpoly eval` scores the written folders directly
    res = CliRunner().invoke(main, ["eval", "--pred", str(out / "clips"), "--gt", str(out / "ground_truth"),
                                    "--json", str(tmp_path / "e.json")])
    assert res.exit_code == 0, res.output
    # a missing checkpoint is a clear message
    res = CliRunner().invoke(main, ["estimate", "--take", str(data), "--out", str(out), "--checkpoint",
                                    str(tmp_path / "nope.pt")])
    assert res.exit_code != 0 and "no such kinematic-policy checkpoint" in res.output
    # controller settings can be changed for an estimate, and a bad one is a clear message
    common = ["estimate", "--take", str(data), "--checkpoint", str(ck), "--training-free", "--videos", "0",
              "--no-progress"]
    res = CliRunner().invoke(main, [*common, "--out", str(tmp_path / "o1"), "-o", "env.controller.root_target_offset=1"])
    assert res.exit_code == 0, res.output
    with np.load(out / "clips" / "walk.npz") as a, np.load(tmp_path / "o1" / "clips" / "walk.npz") as b:
        assert np.abs(a["qpos"] - b["qpos"]).max() > 1e-3
    res = CliRunner().invoke(main, [*common, "--out", str(tmp_path / "o2"), "-o", "env.controller.no_such_key=1"])
    assert res.exit_code != 0 and "no_such_key" in res.output and "Traceback" not in res.output
    # without feedback the controller tracks the policy's own motion (the policy alone, smoothed,
    # lifted out of the floor at the start), with the full feed-forward by default
    res = CliRunner().invoke(main, [*common, "--out", str(tmp_path / "nf"), "--no-feedback", "--smooth", "2"])
    assert res.exit_code == 0, res.output
    cfg = (tmp_path / "nf" / "config.yaml").read_text()
    assert "feedback: false" in cfg and "feedforward: full" in cfg and "smoothing: 2.0" in cfg
    assert "(no feedback)" in (tmp_path / "nf" / "metrics.md").read_text()
    res = CliRunner().invoke(main, [*common, "--out", str(tmp_path / "np"), "--no-physics"])
    assert res.exit_code == 0, res.output
    assert "residual" not in json.loads((tmp_path / "np" / "metrics.json").read_text())
    with np.load(tmp_path / "np" / "states" / "walk.npz") as z:
        assert "residual_wrench" not in z
    alone = MotionClip.load(tmp_path / "np" / "clips" / "walk.npz")
    tracked = MotionClip.load(tmp_path / "nf" / "proposals" / "walk.npz")
    np.testing.assert_allclose(tracked.qpos[1:], alone.smoothed(2.0).qpos[1:], atol=1e-5)
    res = CliRunner().invoke(main, [*common, "--out", str(tmp_path / "bad"), "--smooth", "2"])
    assert res.exit_code != 0 and "feedback=False" in res.output and "Traceback" not in res.output


def test_estimate_from_a_headset_trajectory_alone(tmp_path, shared_data):
    """``kinpoly estimate --head-poses FILE`` without a video: the real Aria MPS trajectory,
    estimated in physics by a policy that reads no image features; a policy that needs them
    fails with a message that names the way out."""
    from kinpoly.cli import main
    from kinpoly.policy.estimate import SHIPPED_POLICY

    aria = shared_data / "aria_mps_trajectory" / "closed_loop_trajectory.csv"
    out = tmp_path / "aria"
    res = CliRunner().invoke(main, ["estimate", "--head-poses", str(aria), "--out", str(out),
                                    "--checkpoint", str(_checkpoint(tmp_path / "sup")), "--training-free",
                                    "--videos", "0", "--no-progress"])
    assert res.exit_code == 0, res.output
    clip = MotionClip.load(out / "clips" / "closed_loop_trajectory.npz")
    assert clip.num_frames == 342 and clip.fps == 30.0 and np.isfinite(clip.qpos).all()
    assert (out / "bvh" / "closed_loop_trajectory.bvh").is_file()
    m = json.loads((out / "metrics.json").read_text())["without_ground_truth"]["closed_loop_trajectory"]
    assert m["frames"] == 342 and m["restarts"] >= 0 and 0 <= m["observed_head_err_m"] < 0.4
    assert "Takes without ground truth" in (out / "metrics.md").read_text()
    assert "closed_loop_trajectory.csv" in (out / "config.yaml").read_text()
    res = CliRunner().invoke(main, ["estimate", "--head-poses", str(aria), "--out", str(tmp_path / "f"),
                                    "--checkpoint", str(SHIPPED_POLICY), "--no-physics", "--videos", "0"])
    assert res.exit_code != 0 and "reads image features" in res.output and "kinematic_head_only" in res.output
    res = CliRunner().invoke(main, ["estimate", "--head-poses", str(aria), "--take", str(aria), "--out", str(out)])
    assert res.exit_code != 0 and "exactly one of" in res.output


def test_a_motion_filter_edits_what_the_no_feedback_estimate_tracks(tmp_path):
    """``Estimator.motion_filter`` (benchmarks/no_feedback_legs.py) gets the policy's smoothed
    motion and the take, and what it returns is what the controller tracks."""
    from kinpoly.policy.estimate import Estimator

    take = _take()
    est = Estimator(_checkpoint(tmp_path / "sup"), "", feedback=False)
    seen = []

    def truth(motion, t):
        seen.append((tuple(motion.shape), t.name))
        return torch.as_tensor(t.qpos, dtype=motion.dtype)

    est.motion_filter = truth
    e = est.estimate(take)
    assert seen == [((take.num_frames, 76), "walk")]
    np.testing.assert_allclose(e.proposals.qpos[1:], take.qpos[1:], atol=1e-5)


def test_anchored_reference_is_a_setting_of_the_estimator(tmp_path):
    """``Estimator(anchor=True)`` (``kinpoly estimate --anchor-reference``) sets the loop's
    anchor, is part of the settings a resumed run must match, and needs physics."""
    from kinpoly.policy.estimate import Estimator

    ck = _checkpoint(tmp_path / "sup")
    plain, anchored = Estimator(ck, "", feedforward="static"), Estimator(ck, "", feedforward="static", anchor=True)
    assert anchored.loop.anchor_on_simulation and not plain.loop.anchor_on_simulation
    assert anchored.settings["anchor"] and anchored.settings != plain.settings
    take = _take()
    a, b = anchored.estimate(take), plain.estimate(take)
    assert a.clip.meta["estimator"]["anchor"] is True
    assert not np.array_equal(a.clip.qpos, b.clip.qpos)  # the reference the controller follows differs
    with pytest.raises(ValueError, match="needs physics"):
        Estimator(ck, "", physics=False, anchor=True)


def test_dynamics_training_resumes_exactly(tmp_path):
    from kinpoly.policy.dynamics import DynamicsConfig, DynamicsTrainer

    ck = _checkpoint(tmp_path / "sup")
    data = tmp_path / "data"
    _write_dataset(data, [_take(40)])

    def cfg(out, iterations):
        return DynamicsConfig(data=str(data), out=str(out), init=str(ck), controller="", iterations=iterations,
                              steps_per_iteration=30, episode_length=16, workers=1, minibatch=16, epochs=1)

    full = DynamicsTrainer(cfg(tmp_path / "a", 2), tmp_path / "a", inline=True).train(progress=False)
    DynamicsTrainer(cfg(tmp_path / "b", 1), tmp_path / "b", inline=True).train(progress=False)  # "killed"
    resumed = DynamicsTrainer(cfg(tmp_path / "b", 2), tmp_path / "b", inline=True).train(progress=False)
    assert len(resumed) == 2
    for k in ("reward", "supervised_loss", "policy_loss"):
        assert resumed[-1][k] == pytest.approx(full[-1][k], rel=1e-5), k
    assert np.isfinite(full[-1]["supervised_loss"])


def test_a_failed_video_is_a_warning_and_the_estimate_is_complete(tmp_path, monkeypatch):
    import kinpoly.policy.estimate as E

    ck = _checkpoint(tmp_path / "sup")

    def no_gl(*a, **k):
        raise RuntimeError("no OpenGL here")

    monkeypatch.setattr(E, "render_estimate_video", no_gl)
    report = E.estimate_takes([_take(20)], E.Estimator(ck, "", physics=False), tmp_path / "out",
                              videos=1, progress=False)
    assert report["takes"] == 1 and not report["failures"]
    assert "no OpenGL here" in report["warnings"][0]
    for f in ("clips/walk.npz", "bvh/walk.bvh", "states/walk.npz"):
        assert (tmp_path / "out" / f).is_file(), f
    assert not list((tmp_path / "out" / "bvh").glob("tmp*"))  # no temporary left behind


@pytest.mark.slow
def test_dynamics_training_on_ray_matches_inline(tmp_path):
    pytest.importorskip("ray")
    import ray

    from kinpoly.policy.dynamics import DynamicsConfig, DynamicsTrainer

    ck = _checkpoint(tmp_path / "sup")
    data = tmp_path / "data"
    _write_dataset(data, [_take(40)])

    def cfg(out):
        return DynamicsConfig(data=str(data), out=str(out), init=str(ck), controller="", iterations=1,
                              steps_per_iteration=30, episode_length=16, workers=1, minibatch=16, epochs=1)

    a = DynamicsTrainer(cfg(tmp_path / "a"), tmp_path / "a", inline=True).train(progress=False)
    try:
        b = DynamicsTrainer(cfg(tmp_path / "b"), tmp_path / "b", ray_address="local").train(progress=False)
    finally:
        ray.shutdown()
    assert a[0]["reward"] == pytest.approx(b[0]["reward"], rel=1e-6)


def test_estimates_in_worker_processes_equal_those_of_one(tmp_path):
    """`kinpoly estimate -j 2`: the shipped estimator rebuilt in two processes writes the same
    motions and the same report as one process (the bundled takes, physics on)."""
    import functools

    import kinpoly.policy.estimate as E
    from kinpoly.demo import SAMPLE_TAKES
    from kinpoly.egocentric.take import EgoDataset

    ds = EgoDataset(SAMPLE_TAKES)
    names = ds.names[:2]
    takes = [(n, functools.partial(ds.__getitem__, n)) for n in names]
    est = E.Estimator()
    one = E.estimate_takes(takes, est, tmp_path / "one", videos=0, progress=False)
    two = E.estimate_takes(takes, est, tmp_path / "two", videos=0, progress=False, workers=2)
    assert one["takes"] == two["takes"] == 2 and one["evaluation"] == two["evaluation"]
    for n in names:
        for sub in ("clips", "smpl", "proposals"):
            with np.load(tmp_path / "one" / sub / f"{n}.npz") as a, np.load(tmp_path / "two" / sub / f"{n}.npz") as b:
                for k in a.files:
                    assert np.array_equal(a[k], b[k]), (sub, n, k)
    est.motion_filter = lambda motion, take: motion  # a hook cannot travel to a worker
    with pytest.raises(ValueError, match="workers=1"):
        E.estimate_takes(takes, est, tmp_path / "three", videos=0, progress=False, workers=2)
