"""Benchmark of the universal humanoid controller (same as ``kinpoly uhc bench``).

    .venv/bin/python benchmarks/uhc_bench.py --motions data/motions

writes benchmarks/results/uhc_bench.json: bare mj_step rate, env control steps/s per process,
PPO samples/s on all cores and the ratio of rollout throughput to bare stepping.
"""

from kinpoly.simulation.commands import bench

if __name__ == "__main__":
    bench()
