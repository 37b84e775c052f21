"""PPO for the tracking controller, CleanRL style: the rollout, GAE and the update are short
plain functions over arrays/tensors, every hyper-parameter is in :class:`UHCConfig` (loaded
from ``configs/uhc.yaml``).

Rollouts run in worker processes (one per core by default, each stepping several environments
and running its own copy of the policy, so no per-step round trip to the learner): the local
backend uses ``multiprocessing`` pipes, the Ray backend (``ray_address``) the same
:class:`RolloutWorker` as Ray actors. Each iteration every environment is reset with a seed
derived from (seed, iteration, worker, env) and actions are sampled from a generator seeded the
same way, so an iteration's samples depend only on the policy weights: a run killed and resumed
from its last checkpoint reproduces the same numbers (the learner's minibatch order is seeded
per iteration too).

Checkpoints (``last.pt`` every iteration, ``best.pt`` at the best training success) hold the
policy, the optimiser, the iteration and the curves; ``progress.csv`` is rewritten from the
curves so that a resumed run's curves continue the killed run's exactly.
"""

from __future__ import annotations

import csv
import io
import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..motion.clip import atomic_write_bytes, atomic_write_text
from .env import ACT_DIM, EnvConfig, HumanoidTrackingEnv, obs_dim
from .policy import ActorCritic
from .sim import TrackingSim


@dataclass
class PPOConfig:
    iterations: int = 500
    num_workers: int = 0  # 0: one per CPU core
    envs_per_worker: int = 4
    steps_per_env: int = 256  # per iteration -> samples = workers * envs * steps
    gamma: float = 0.95
    gae_lambda: float = 0.95
    clip: float = 0.2
    lr_policy: float = 5.0e-5
    lr_value: float = 3.0e-4
    epochs: int = 5
    minibatch: int = 2048
    max_grad_norm: float = 1.0
    target_kl: float | None = 0.02  # stop the epochs of an update once the KL estimate exceeds it
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    log_std: float = -2.3
    torch_threads: int = 0  # learner threads, 0: all cores
    # Hard-clip sampling: a clip's sampling weight is length x (1 + hard_clip_weight x its
    # failure rate), the failure rate a running average over its training episodes
    # (0: sample by length only).
    hard_clip_weight: float = 0.0
    # Iterations (from the run's first: 0, or the ``init`` controller's) that fit only the value
    # function, the policy frozen: a policy that starts trained (``kinpoly uhc distill``,
    # ``--init``) is otherwise pulled off course by the advantages of a critic that has not yet
    # learned its returns.
    critic_warmup: int = 0


@dataclass
class UHCConfig:
    seed: int = 0
    env: EnvConfig = field(default_factory=EnvConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    split: str | None = "configs/splits/uhc_test.txt"  # held-out clips, excluded from training
    target_success: float = 0.95


# --- rollout ---------------------------------------------------------------------------------
class EnvList:
    """Environments of one worker as a batch: ``step`` takes one action per environment and
    returns per-environment ``(obs, reward, terminated, truncated, info)``; ``info`` carries the
    episode's ``steps`` and ``clip`` (index into the worker's clips) for the trainer's
    bookkeeping. This is the controller's :class:`HumanoidTrackingEnv` one after another;
    other batches (the dynamics-regulated loop's, :mod:`kinpoly.policy.loop_controller`) step
    their environments together."""

    def __init__(self, envs: list):
        self.envs = envs

    def __len__(self) -> int:
        return len(self.envs)

    def set_clip_weights(self, weights: np.ndarray | None) -> None:
        for env in self.envs:
            env.set_clip_weights(weights)

    def reset(self, i: int, seed: int) -> np.ndarray:
        return self.envs[i].reset(seed=seed)[0]

    def step(self, actions: np.ndarray) -> list[tuple]:
        out = []
        for env, a in zip(self.envs, actions):
            o, r, term, trunc, info = env.step(a)
            out.append((o, r, term, trunc, {**info, "steps": env._steps, "clip": env.ref_index}))
        return out


def collect_segment(model: ActorCritic, envs, rng: np.random.Generator, n_steps: int) -> dict:
    """``n_steps`` steps of every environment of ``envs`` (an :class:`EnvList`-like batch,
    each reset first with a seed drawn from ``rng``) under ``model``'s Gaussian policy: the
    (T, N) arrays PPO needs, the finished episodes ``(completed, steps, reason, clip)``, the
    mean residual force and the time spent stepping the environments."""
    n = len(envs)
    obs = np.stack([envs.reset(i, int(rng.integers(2**31))) for i in range(n)])
    std = float(np.exp(model.log_std[0].item()))
    buf = {k: np.zeros((n_steps, n) + s, np.float32) for k, s in
           [("obs", obs.shape[1:]), ("actions", (ACT_DIM,)), ("logp", ()), ("rewards", ()),
            ("values", ()), ("terminated", ()), ("truncated", ()), ("next_values", ())]}
    episodes, wrench, t0, sim_time = [], [], time.perf_counter(), 0.0
    for t in range(n_steps):
        with torch.no_grad():
            mean, value = model(torch.from_numpy(obs))
        mean = mean.numpy()
        noise = rng.standard_normal(mean.shape).astype(np.float32)
        action = mean + std * noise
        logp = (-0.5 * noise ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)).sum(-1)
        buf["obs"][t], buf["actions"][t], buf["logp"][t], buf["values"][t] = obs, action, logp, value.numpy()
        s0 = time.perf_counter()
        results = envs.step(action)
        sim_time += time.perf_counter() - s0
        for i, (o, r, term, trunc, info) in enumerate(results):
            buf["rewards"][t, i], buf["terminated"][t, i], buf["truncated"][t, i] = r, term, trunc
            wrench.append(info["wrench"])
            if term or trunc:
                episodes.append((bool(trunc and not term), info["steps"], info["reason"], info["clip"]))
                if trunc:  # bootstrap from the state the episode was cut at
                    with torch.no_grad():
                        buf["next_values"][t, i] = model(torch.from_numpy(o[None]))[1].item()
                o = envs.reset(i, int(rng.integers(2**31)))
            obs[i] = o
    with torch.no_grad():
        last_value = model(torch.from_numpy(obs))[1].numpy()
    buf["truncated"][-1] = 1.0  # the segment ends: bootstrap every env from its last state
    buf["next_values"][-1] = np.where(buf["terminated"][-1] > 0, 0.0, last_value)
    buf["episodes"] = episodes
    buf["wrench"] = float(np.mean(wrench))
    buf["time"] = time.perf_counter() - t0
    buf["sim_time"] = sim_time
    return buf


class RolloutWorker:
    """Steps ``n_envs`` environments with its own policy copy; returns whole segments."""

    def __init__(self, motions: str, names: list[str] | None, env_cfg: EnvConfig, n_envs: int,
                 hidden: list[int], log_std: float, worker_id: int):
        torch.set_num_threads(1)
        self.envs = EnvList([HumanoidTrackingEnv(motions, env_cfg, names) for _ in range(n_envs)])
        TrackingSim.compile_scenes(self.envs.envs[0].refs)
        self.model = ActorCritic(hidden, log_std, obs_dim(env_cfg.future_frames))
        self.model.eval()
        self.worker_id = worker_id

    def collect(self, state_dict: dict, seed: int, iteration: int, n_steps: int,
                clip_weights: np.ndarray | None = None) -> dict:
        self.model.load_state_dict(state_dict)
        self.envs.set_clip_weights(clip_weights)
        rng = np.random.default_rng([seed, iteration, self.worker_id])
        return collect_segment(self.model, self.envs, rng, n_steps)


def _failure(e: BaseException) -> tuple:
    """What a worker sends instead of a result when it fails: bad input (a missing or wrong
    checkpoint, no clips) as its one-line message, anything else with its traceback."""
    import traceback

    from ..errors import InputError

    if isinstance(e, (InputError, FileNotFoundError)):
        return ("error", True, str(e))
    return ("error", False, "".join(traceback.format_exception(e)))


def _receive(conn):
    """A worker's next message; its failure raised here, in the learner (bad input as an
    :class:`~kinpoly.errors.InputError`, so the command ends with its message)."""
    from ..errors import InputError

    try:
        msg = conn.recv()
    except (EOFError, ConnectionResetError):
        raise RuntimeError("a rollout worker exited unexpectedly (see its output above)") from None
    if isinstance(msg, tuple) and len(msg) == 3 and msg[0] == "error":
        if msg[1]:
            raise InputError(msg[2])
        raise RuntimeError(f"a rollout worker failed:\n{msg[2]}")
    return msg


def _worker_main(conn, worker_cls, args) -> None:
    try:
        try:
            worker = worker_cls(*args)
        except Exception as e:  # reported to the learner, which raises it
            conn.send(_failure(e))
            return
        conn.send("ready")
        while True:
            msg = conn.recv()
            if msg is None:
                break
            try:
                result = worker.collect(*msg)
            except Exception as e:
                conn.send(_failure(e))
                return
            conn.send(result)
    except (EOFError, BrokenPipeError, ConnectionResetError, KeyboardInterrupt):
        pass  # the learner is gone: stop quietly


class LocalPool:
    """Rollout workers in subprocesses (spawned), talking over pipes. A worker is any class
    built from ``worker_args`` with a ``collect(state_dict, seed, iteration, n_steps, *extra)``
    method (the controller's :class:`RolloutWorker` by default; its extra argument is the
    clips' sampling weights). A worker that fails (to start or in ``collect``) raises its
    error here, in the learner, instead of leaving it waiting."""

    def __init__(self, worker_args: list[tuple], worker_cls=RolloutWorker):
        ctx = mp.get_context("spawn")
        self.conns, self.procs = [], []
        for args in worker_args:
            a, b = ctx.Pipe()
            p = ctx.Process(target=_worker_main, args=(b, worker_cls, args), daemon=True)
            p.start()
            b.close()  # the worker's end lives in the worker: its exit ends our recv with EOFError
            self.conns.append(a)
            self.procs.append(p)
        try:
            for c in self.conns:
                if _receive(c) != "ready":
                    raise RuntimeError("rollout worker failed to start")
        except BaseException:
            self.close()
            raise

    def collect(self, state_dict, seed, iteration, n_steps, *extra) -> list[dict]:
        for c in self.conns:
            c.send((state_dict, seed, iteration, n_steps, *extra))
        return [_receive(c) for c in self.conns]

    def close(self) -> None:
        for c in self.conns:
            try:
                c.send(None)
            except (BrokenPipeError, OSError):
                pass
        for p in self.procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()


class RayPool:
    """The same workers as Ray actors (``pip install kinpoly[ray]``)."""

    def __init__(self, worker_args: list[tuple], address: str, worker_cls=RolloutWorker):
        import ray

        if not ray.is_initialized():
            ray.init(address=None if address in ("local", "") else address,
                     ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
        actor = ray.remote(num_cpus=1)(worker_cls)
        self.ray = ray
        self.workers = [actor.remote(*args) for args in worker_args]

    def collect(self, state_dict, seed, iteration, n_steps, *extra) -> list[dict]:
        ref = self.ray.put(state_dict)
        return self.ray.get([w.collect.remote(ref, seed, iteration, n_steps, *extra) for w in self.workers])

    def close(self) -> None:
        for w in self.workers:
            self.ray.kill(w)


class InlinePool:
    """Workers in this process (tests, debugging)."""

    def __init__(self, worker_args: list[tuple], worker_cls=RolloutWorker):
        self.workers = [worker_cls(*a) for a in worker_args]

    def collect(self, state_dict, seed, iteration, n_steps, *extra) -> list[dict]:
        return [w.collect(state_dict, seed, iteration, n_steps, *extra) for w in self.workers]

    def close(self) -> None:
        pass


# --- learning ---------------------------------------------------------------------------------
def gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Advantages and returns of (T, N) arrays. ``next_values[t]`` is the value to bootstrap
    from where an episode was truncated at t (0 where it terminated)."""
    T = rewards.shape[0]
    adv = np.zeros_like(rewards)
    last = np.zeros(rewards.shape[1], np.float32)
    for t in reversed(range(T)):
        ended = np.maximum(terminated[t], truncated[t])
        nv = np.where(ended > 0, next_values[t], values[t + 1] if t + 1 < T else 0.0)
        delta = rewards[t] + gamma * nv * (1.0 - terminated[t]) - values[t]
        last = delta + gamma * lam * (1.0 - ended) * last
        adv[t] = last
    return adv, adv + values


def ppo_update(model: ActorCritic, opt: torch.optim.Optimizer, batch: dict, cfg: PPOConfig,
               gen: torch.Generator, train_policy: bool = True) -> dict:
    obs, act, logp_old = batch["obs"], batch["actions"], batch["logp"]
    adv, ret = batch["adv"], batch["ret"]
    n = obs.shape[0]
    stats = {"policy_loss": 0.0, "value_loss": 0.0, "clip_frac": 0.0, "approx_kl": 0.0}
    count = 0
    for _ in range(cfg.epochs):
        if cfg.target_kl is not None and count and stats["approx_kl"] / count > cfg.target_kl:
            break
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, cfg.minibatch):
            idx = perm[i:i + cfg.minibatch]
            mean, value = model(obs[idx])
            logp = model.log_prob(mean, act[idx])
            ratio = (logp - logp_old[idx]).exp()
            a = adv[idx]
            a = (a - a.mean()) / (a.std() + 1e-8)
            pl = torch.max(-a * ratio, -a * ratio.clamp(1 - cfg.clip, 1 + cfg.clip)).mean()
            vl = 0.5 * ((value - ret[idx]) ** 2).mean()
            opt.zero_grad()
            (pl + vl if train_policy else vl).backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            opt.step()
            with torch.no_grad():
                stats["policy_loss"] += pl.item()
                stats["value_loss"] += vl.item()
                stats["clip_frac"] += ((ratio - 1).abs() > cfg.clip).float().mean().item()
                stats["approx_kl"] += ((ratio - 1) - (logp - logp_old[idx])).mean().item()
            count += 1
    return {k: v / max(count, 1) for k, v in stats.items()}


def make_optimizer(model: ActorCritic, cfg: PPOConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam([{"params": model.actor.parameters(), "lr": cfg.lr_policy},
                             {"params": model.critic.parameters(), "lr": cfg.lr_value}], eps=1e-5)


def train_clip_names(motions: str, split: str | None) -> list[str]:
    """Clips of ``motions`` to train on: all but the held-out ones of ``split`` and their mirror
    images (``kinpoly motion mirror``), which would leak the held-out motion into training."""
    from ..config import resolve_path
    from ..errors import InputError
    from ..motion.clip import ClipFolder
    from .split import read_split

    entries = ClipFolder(motions).entries()
    if split:  # configs/splits/... is found from any directory (it was skipped outside the checkout)
        if not resolve_path(split).is_file():
            raise InputError(f"{split}: no such split file (the config's split; null trains on every clip)")
        held = set(read_split(split))
        entries = [e for e in entries if e["name"] not in held and e.get("mirror_of") not in held]
    return [e["name"] for e in entries]


FAILURE_RATE_UPDATE = 0.2  # weight of a new episode in a clip's running failure rate

CURVE_KEYS = ("iteration", "samples", "wall_s", "success_rate", "episodes", "reward", "episode_len",
              "wrench", "samples_per_s", "sim_fraction", "policy_loss", "value_loss", "clip_frac", "approx_kl")


def _save_checkpoint(path: Path, model, opt, iteration, curves, cfg_dict, extra=None) -> None:
    buf = io.BytesIO()
    torch.save({"policy": model.state_dict(), "optimizer": opt.state_dict(), "iteration": iteration,
                "curves": curves, "config": cfg_dict, "hidden": list(cfg_dict["ppo"]["hidden"]),
                "extra": extra or {}}, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_run_checkpoint(path: Path, keys: tuple[str, ...], hint: str = "") -> dict:
    """A checkpoint ``kinpoly uhc train`` wrote (``last.pt``, ``best.pt``) holding ``keys``; a
    file of another kind (e.g. an exported ``policy.pt``) is an :class:`~kinpoly.errors.InputError`
    naming what it lacks, followed by ``hint``."""
    from ..config import read_checkpoint
    from ..errors import InputError

    blob = read_checkpoint(path, "controller training checkpoint")
    missing = [k for k in keys if k not in blob]
    if missing:
        raise InputError(f"{path}: not a controller training checkpoint (no {', '.join(missing)}){hint}")
    return blob


def _read_run_checkpoint(path: Path, cfg: UHCConfig) -> dict:
    """A run's ``last.pt`` to resume from; one of another kind, or of a network other than the
    config's (``ppo.hidden``, the observation of ``env.future_frames``), is an
    :class:`~kinpoly.errors.InputError`."""
    from ..errors import InputError

    blob = read_run_checkpoint(path, ("policy", "optimizer", "iteration", "curves", "hidden"))
    p, dim = cfg.ppo, obs_dim(cfg.env.future_frames)
    again = "resume with the same, or start over (--no-resume, another --out)"
    if list(blob["hidden"]) != list(p.hidden):
        raise InputError(f"{path}: its network has hidden layers {list(blob['hidden'])}, the config's ppo.hidden "
                         f"is {list(p.hidden)}: {again}")
    if blob["policy"]["norm.mean"].shape[0] != dim:
        raise InputError(f"{path}: its network reads {blob['policy']['norm.mean'].shape[0]} observation values, "
                         f"the config's env.future_frames {cfg.env.future_frames} make {dim}: {again}")
    return blob


def _continue_from_export(model, path: str | os.PathLike, future_frames: list[int]) -> tuple[int, list[dict], int]:
    """Load an exported controller's weights into ``model``; (its iteration, its curves, the
    number of observation values it read). A controller trained without some of the config's
    ``env.future_frames`` (its own a prefix of them) is widened to read them too
    (:meth:`ActorCritic.widened`: the same actions until training uses them)."""
    from ..errors import InputError
    from .policy import load_policy

    path = Path(path)
    exported, extra = load_policy(path)
    own = list(extra.get("config", {}).get("env", {}).get("future_frames", []))
    n_in = exported.obs_dim
    if exported.obs_dim < model.obs_dim and own == future_frames[:len(own)]:
        exported = exported.widened(model.obs_dim)
    if [m.shape for m in exported.state_dict().values()] != [m.shape for m in model.state_dict().values()]:
        raise InputError(f"{path}: network of another shape than the config's (ppo.hidden {model.hidden}, "
                         f"env.future_frames {future_frames}; it was trained with future_frames {own})")
    model.load_state_dict(exported.state_dict())
    curves = []
    csv_path = path.parent / "training_curve.csv"
    if csv_path.is_file():
        with open(csv_path, newline="") as f:
            curves = [{k: (int(float(v)) if k in ("iteration", "samples", "episodes") else float(v))
                       for k, v in row.items() if v != ""} for row in csv.DictReader(f)]
    return int(extra.get("iteration", len(curves))), curves, n_in


def _write_curves(path: Path, curves: list[dict], fields=CURVE_KEYS) -> None:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=fields, extrasaction="ignore")
    w.writeheader()
    w.writerows(curves)
    atomic_write_text(path, out.getvalue())


def start_run(cfg: UHCConfig, motions: str, out_dir, names: list[str] | None = None, record: bool = True) -> tuple:
    """Common start of a training run: (out folder, its RunDir (None without ``record``: the
    caller writes it once its checks have passed), training clip names (``names``, or those of
    ``motions`` outside the split), number of rollout workers); seeds everything and sets the
    learner's threads."""
    from ..config import RunDir, seed_everything
    from ..errors import InputError

    out = Path(out_dir)
    names = train_clip_names(motions, cfg.split) if names is None else names
    if not names:
        raise InputError(f"{motions}: no clips to train on" + (f" outside the held-out split {cfg.split}"
                                                                if cfg.split else ""))
    run = RunDir(out, cfg, cfg.seed) if record else None
    seed_everything(cfg.seed)
    cores = os.cpu_count() or 1
    torch.set_num_threads(cfg.ppo.torch_threads or cores)
    return out, run, names, cfg.ppo.num_workers or cores


def train(cfg: UHCConfig, motions: str, out_dir: str | os.PathLike, *, ray_address: str | None = None,
          inline: bool = False, resume: bool = True, max_iterations: int | None = None,
          progress: bool = True, time_limit_s: float | None = None, init: str | None = None,
          rollouts: tuple | None = None) -> list[dict]:
    """Train (or resume) in ``out_dir``; returns the curves (one dict per iteration).

    ``rollouts``: ``(worker class, training clip names, worker_args(worker_id))`` for workers
    other than the controller's :class:`RolloutWorker` on ``motions`` (their ``collect`` takes
    the clips' sampling weights and returns :func:`collect_segment`'s dict), e.g. the
    dynamics-regulated loop's (:mod:`kinpoly.policy.loop_controller`).

    ``init``: a shipped controller (``kinpoly uhc export``'s ``policy.pt``) to continue from
    when ``out_dir`` has no checkpoint yet: its weights (actor, critic, normaliser), its
    iteration count and, when its ``training_curve.csv`` lies beside it, its curves; the
    optimiser starts fresh (an export does not keep it)."""
    from tqdm import tqdm

    from ..config import RunDir, to_dict

    worker_cls, names, make_args = rollouts or (RolloutWorker, None, None)
    out, _, names, n_workers = start_run(cfg, motions, out_dir, names, record=False)
    p = cfg.ppo
    model = ActorCritic(p.hidden, p.log_std, obs_dim(cfg.env.future_frames))
    opt = make_optimizer(model, p)
    curves: list[dict] = []
    start, fresh_inputs = 0, None
    ckpt = out / "last.pt"
    if resume and ckpt.exists():
        blob = _read_run_checkpoint(ckpt, cfg)
        model.load_state_dict(blob["policy"])
        opt.load_state_dict(blob["optimizer"])
        for group, lr in zip(opt.param_groups, (p.lr_policy, p.lr_value)):
            group["lr"] = lr  # the config's learning rates win (same as saved unless changed)
        start, curves = blob["iteration"], blob["curves"]
        failure = blob.get("extra", {}).get("clip_failure", {})
        first = blob.get("extra", {}).get("first_iteration", 0)
    else:
        failure = {}
        if init:
            start, curves, n_in = _continue_from_export(model, init, cfg.env.future_frames)
            if n_in < model.obs_dim:  # widened: the new inputs' statistics from the first rollout
                fresh_inputs = slice(n_in, model.obs_dim)
        first = start  # the critic warm-up counts from here
    # running failure rate per training clip (by name, so a resumed run with another clip set
    # keeps what it knows); drives hard-clip sampling
    fail = np.array([failure.get(n, 0.0) for n in names])
    cfg_dict = to_dict(cfg)
    if make_args is None:
        make_args = lambda w: (motions, names, cfg.env, p.envs_per_worker, p.hidden, p.log_std, w)  # noqa: E731
    worker_args = [make_args(w) for w in range(n_workers)]
    pool = (InlinePool(worker_args, worker_cls) if inline else RayPool(worker_args, ray_address, worker_cls)
            if ray_address else LocalPool(worker_args, worker_cls))
    try:  # the checkpoint, --init and the workers' data are fine: record the run
        run = RunDir(out, cfg, cfg.seed)
    except BaseException:
        pool.close()
        raise
    best = max((c["success_rate"] for c in curves), default=-1.0)
    wall0 = curves[-1]["wall_s"] if curves else 0.0
    samples = curves[-1]["samples"] if curves else 0
    end = p.iterations if max_iterations is None else min(p.iterations, start + max_iterations)
    if start >= p.iterations:
        import logging

        logging.getLogger(__name__).warning("nothing to train: at iteration %d already (the run or --init), "
                                            "ppo.iterations is %d (the total, not more)", start, p.iterations)
    bar = tqdm(total=end, initial=start, disable=not progress, desc="uhc train", dynamic_ncols=True)
    t_start = time.perf_counter()
    try:
        for it in range(start, end):
            t0 = time.perf_counter()
            state = {k: v.clone() for k, v in model.state_dict().items()}
            weights = 1.0 + p.hard_clip_weight * fail if p.hard_clip_weight else None
            segs = pool.collect(state, cfg.seed, it, p.steps_per_env, weights)
            t_roll = time.perf_counter() - t0
            cat = lambda k: np.concatenate([s[k] for s in segs], axis=1)  # noqa: E731  (T, N)
            data = {k: cat(k) for k in ("obs", "actions", "logp", "rewards", "values", "terminated",
                                        "truncated", "next_values")}
            adv, ret = gae(data["rewards"], data["values"], data["next_values"], data["terminated"],
                           data["truncated"], p.gamma, p.gae_lambda)
            flat = lambda x: torch.as_tensor(x.reshape(x.shape[0] * x.shape[1], *x.shape[2:]))  # noqa: E731
            batch = {k: flat(data[k]) for k in ("obs", "actions", "logp")}
            batch["adv"], batch["ret"] = flat(adv), flat(ret)
            model.norm.update(batch["obs"])  # normaliser changes only between rollouts
            if fresh_inputs is not None and it == start:
                model.norm.set_dims(batch["obs"], fresh_inputs)
            gen = torch.Generator().manual_seed(cfg.seed * 100003 + it)
            model.train()
            stats = ppo_update(model, opt, batch, p, gen, train_policy=it >= first + p.critic_warmup)
            model.eval()
            eps = [e for s in segs for e in s["episodes"]]
            for ok, _, _, idx in eps:
                fail[idx] += FAILURE_RATE_UPDATE * (float(not ok) - fail[idx])
            n = int(batch["obs"].shape[0])
            samples += n
            dt = time.perf_counter() - t0
            row = {"iteration": it + 1, "samples": samples, "wall_s": round(wall0 + time.perf_counter() - t_start, 2),
                   "success_rate": float(np.mean([e[0] for e in eps])) if eps else 0.0,
                   "episodes": len(eps), "reward": float(data["rewards"].mean()),
                   "episode_len": float(np.mean([e[1] for e in eps])) if eps else 0.0,
                   "wrench": float(np.mean([s["wrench"] for s in segs])),
                   "samples_per_s": n / t_roll, "sim_fraction": float(np.mean([s["sim_time"] / s["time"] for s in segs])),
                   **stats}
            curves.append(row)
            extra = {"clip_failure": {name: float(f) for name, f in zip(names, fail)}, "first_iteration": first}
            _save_checkpoint(ckpt, model, opt, it + 1, curves, cfg_dict, extra)
            if row["success_rate"] > best:
                best = row["success_rate"]
                _save_checkpoint(out / "best.pt", model, opt, it + 1, curves, cfg_dict, extra)
            _write_curves(out / "progress.csv", curves)
            bar.update(1)
            bar.set_postfix(success=f"{row['success_rate']:.3f}", reward=f"{row['reward']:.3f}",
                            sps=f"{n / dt:.0f}")
            if time_limit_s is not None and time.perf_counter() - t_start > time_limit_s:
                break
    finally:
        bar.close()
        pool.close()
    if curves:
        run.write_metrics({"final": curves[-1], "best_success_rate": best})
    return curves
