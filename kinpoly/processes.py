"""Work spread over processes: ``process_map`` runs a function on each item in spawned worker
processes and yields the results in the items' order (as ``map`` would).

Workers are started with ``spawn`` (a fresh interpreter: no forked torch or MuJoCo state),
each running ``initializer(*initargs)`` once, e.g. to load a checkpoint into a module-level
variable that the function reads. ``fn``, the items and the results must pickle.
"""

from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterable, Iterator

from .errors import WorkerDied


def process_map(fn: Callable, items: Iterable, workers: int, initializer: Callable | None = None,
                initargs: tuple = ()) -> Iterator:
    """``fn(item)`` for each item, in order, computed in ``workers`` processes. The pool is shut
    down (pending items cancelled) when the iterator is exhausted, closed or collected. A worker
    that dies (killed, a native crash) raises :class:`~kinpoly.errors.WorkerDied`."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                               initializer=initializer, initargs=initargs)
    done = 0
    try:
        for result in pool.map(fn, items, chunksize=1):
            yield result
            done += 1
    except BrokenProcessPool as e:
        raise WorkerDied(f"a worker process ended abruptly after {done} item(s) were done ({e}); what was "
                         f"written so far is kept: run again (with --resume where the command has it), "
                         f"or with -j 1 to see the error in one process") from None
    finally:
        pool.shutdown(cancel_futures=True)
