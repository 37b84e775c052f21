"""kinpoly: physically plausible egocentric human pose and human-object interaction estimation.

Pipeline stages, one sub-package each, data flowing one way:
``humanoid`` (model) -> ``motion`` (clips, importers, retargeting) -> ``simulation``
(controller) -> ``egocentric`` (head-camera data) -> ``policy`` (kinematic policy) ->
``evaluation`` (metrics) -> ``visualization`` (videos, plots).
"""

__version__ = "0.1.0"
