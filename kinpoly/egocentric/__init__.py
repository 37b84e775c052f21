"""Egocentric data: scenes with objects, head-camera video, per-frame features, real-video input.

See :mod:`.take` (the sample type and loader), :mod:`.scenes`, :mod:`.build`, :mod:`.flow`,
:mod:`.trajectory` and :mod:`.video`.
"""

from .take import EgoDataError, EgoDataset, EgoTake, action_one_hot, dataset_info  # noqa: F401
