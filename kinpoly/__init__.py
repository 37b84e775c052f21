"""kinpoly: physically plausible egocentric human pose and human-object interaction estimation.

Pipeline stages, one sub-package each, data flowing one way:
``humanoid`` (model) -> ``motion`` (clips, importers, retargeting) -> ``simulation``
(controller) -> ``egocentric`` (head-camera data) -> ``policy`` (kinematic policy) ->
``evaluation`` (metrics) -> ``visualization`` (videos, plots).
"""

__version__ = "0.1.0"
TRACKING_ENV_ID = "kinpoly/HumanoidTracking-v0"


def _register_environments() -> None:
    """Register the Gymnasium environment by name only: ``gym.make`` imports MuJoCo and the
    environment's module when it is first made."""
    import gymnasium as gym

    if TRACKING_ENV_ID not in gym.registry:
        gym.register(id=TRACKING_ENV_ID, entry_point="kinpoly.simulation.env:HumanoidTrackingEnv")


_register_environments()
