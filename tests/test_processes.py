"""kinpoly.processes.process_map: ordered results from worker processes, and a worker that dies."""

from __future__ import annotations

import math
import os

import pytest

from kinpoly.errors import WorkerDied
from kinpoly.processes import process_map


def test_results_come_in_order():
    assert list(process_map(math.sqrt, [16.0, 1.0, 9.0, 4.0], 2)) == [4.0, 1.0, 3.0, 2.0]


def test_a_worker_that_dies_is_a_clear_error_not_a_hang():
    with pytest.raises(WorkerDied, match="ended abruptly after 0 item"):
        list(process_map(os._exit, [3, 3], 2))  # the worker process exits mid-job
