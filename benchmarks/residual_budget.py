"""How much a tracking controller's success rests on the residual root wrench (SPEC section 2:
"success must not rely on it"): the same controller on the held-out clips with the wrench's
per-component clip (``env.sim.residual_clip``, N and N m) at each budget, 0 meaning no residual
force at all. The root PD of the training-free controller acts through the same wrench, so a
smaller budget weakens both it and the policy's own offsets.

    python benchmarks/residual_budget.py --checkpoint checkpoints/uhc_mocap_global/policy.pt \
        [--budgets 100,50,25,0] [--motions data/motions_scenes] [--split configs/splits/uhc_test.txt] \
        [--set KEY=VALUE] --json benchmarks/results/residual_budget_mocap_global.json

``--support`` also prints, per clip, the share of the body's weight that the feed-forward's
inverse dynamics leaves on the root (median over frames) once the feet it takes as in contact
carry what they can (:func:`kinpoly.simulation.reference.inverse_dynamics`): near 0 where the
reference's weight rests on its feet, so a fall at a small budget is a balance failure, not a
reference that floats.

Without ``--checkpoint`` the training-free controller runs. Writes per budget the overall
metrics of ``kinpoly uhc eval``, the failed clips, and the mean residual force as a share of
each clip's body weight (bodies are fitted to each source skeleton).
"""
from __future__ import annotations

import click
import numpy as np


def feedforward_root_share(ref) -> float:
    """Median over frames of the root force (N) the full feed-forward's inverse dynamics asks
    for after the feet in contact took their share (``Reference.root_wrench``): what the
    residual would have to supply."""
    return float(np.median(np.linalg.norm(ref.root_wrench[:, :3], axis=1)))


@click.command()
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--motions", default="data/motions_scenes", type=click.Path(exists=True, file_okay=False))
@click.option("--split", default="configs/splits/uhc_test.txt", type=click.Path(dir_okay=False),
              help="Clips to score ('all': every clip of --motions).")
@click.option("--budgets", default="100,50,25,0", show_default=True,
              help="Comma-separated residual clips (N / N m per component); 0 switches the wrench off; "
                   "'' scores none (with --support).")
@click.option("--set", "overrides", multiple=True, help="Controller setting, e.g. env.controller.root_target_offset=0.")
@click.option("--support", is_flag=True, help="Also the weight share the feed-forward leaves on the root, per clip.")
@click.option("--json", "json_out", required=True, type=click.Path(dir_okay=False))
def main(checkpoint, motions, split, budgets, overrides, support, json_out):
    from kinpoly.motion.clip import ClipFolder
    from report import command_line, write_json
    from kinpoly.simulation.evaluate import controller_config, evaluate, load_controller
    from kinpoly.simulation.reference import prepare_reference
    from kinpoly.simulation.model import body_weight_n
    from kinpoly.simulation.split import read_split

    folder = ClipFolder(motions)
    refs = [prepare_reference(folder.load(n)) for n in (list(folder) if split == "all" else read_split(split))]
    policy = load_controller(checkpoint)[1]
    weight = {r.name: body_weight_n(r.clip.body) for r in refs}  # each clip's fitted body
    rows, root_share = {}, {}
    if support:
        root_share = {r.name: feedforward_root_share(r) / weight[r.name] for r in refs}
        for name, share in root_share.items():
            print(f"{name:34s} weight left on the root by the feed-forward: {share:.0%}")
    for b in [float(x) for x in budgets.split(",") if x.strip()]:
        cfg = controller_config(None, checkpoint, overrides)
        cfg.env.sim.residual_force = b > 0
        cfg.env.sim.residual_clip = b if b > 0 else cfg.env.sim.residual_clip
        result, _ = evaluate(refs, cfg.env, policy, progress=False)
        o = result["overall"]
        o["residual_force_share_of_weight"] = float(np.mean([c["residual_force_n"] / weight[n]
                                                             for n, c in result["per_clip"].items()]))
        rows[f"{b:g}"] = o
        print(f"budget {b:5g}: success {o['success_rate']:.1%}, global MPJPE {o['mpjpe_global_mm']:.1f} mm "
              f"({o['mpjpe_global_mm_successful'] or float('nan'):.1f} on successes), residual "
              f"{o['residual_force_n']:.0f} N ({o['residual_force_share_of_weight']:.0%} of the weight) / "
              f"{o['residual_torque_nm']:.0f} N m, {len(o['failures'])} failures", flush=True)
    out = {"checkpoint": checkpoint or "training-free", "motions": motions, "split": split,
           "overrides": list(overrides), "body_weight_n": weight, "budgets": rows,
           "feedforward_root_share_of_weight": root_share,
           "command": command_line(__file__)}
    write_json(json_out, out)


if __name__ == "__main__":
    main()
