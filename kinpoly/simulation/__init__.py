"""Universal humanoid controller (UHC, SPEC section 2): physics-based tracking of reference
motions in MuJoCo.

Layers, bottom up: ``model`` (compiled humanoid per body shape), ``reference`` (a clip prepared
for tracking: velocities, accelerations, inverse-dynamics feed-forward; bad input refused here),
``sim`` (stable-PD servos, residual root force, 30 Hz control, termination and blow-up
detection), ``controller`` (the training-free PD + inverse-dynamics controller), ``env`` (the
Gymnasium environment ``kinpoly/HumanoidTracking-v0``), ``policy`` / ``ppo`` (the learned
residual policy and its PPO training with subprocess or Ray rollout workers), ``evaluate``
(whole-clip tracking scored by :mod:`kinpoly.evaluation.metrics`), ``bench`` (throughput) and
``commands`` (``kinpoly uhc train|eval|bench|export``).
"""
