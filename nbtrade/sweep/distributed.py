"""Sweeps on a Dask cluster: the market scattered once, chunks of combinations as tasks.

``dask`` and ``distributed`` come with the ``[dask]`` extra (``pip install -e ".[dask]"``)
and are imported only when a client or scheduler address is given. Workers compile
(or load from their numba cache) the kernels on their first task. A worker that dies
mid-sweep: the scheduler reruns its tasks on the others (``distributed``'s own
recovery, up to its ``allowed-failures``), and a task cancelled because the dead worker
held the copy of the scattered market it read is submitted again on a fresh scatter
(:func:`map_on_dask`); a task's result does not depend on where it ran, so the table is
the same.
"""
from __future__ import annotations

import os
from typing import Any, Callable

#: Seconds to wait for a scheduler before giving up.
CONNECT_TIMEOUT = 5.0
#: Environment variable naming the scheduler when no client is given.
SCHEDULER_ENV = "NBTRADE_SCHEDULER"


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as e:  # pragma: no cover - the [dask] extra is in the test extra
        raise ImportError("running on a Dask cluster needs dask and distributed: "
                          "pip install 'nbtrade[dask]'") from e
    return distributed


def connect(address: str, timeout: float | None = None) -> Any:
    """A ``distributed.Client`` connected to the scheduler at ``address``; ``ConnectionError``
    naming the address when it does not answer within ``timeout`` seconds (``CONNECT_TIMEOUT``)."""
    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"a scheduler address must be a string like 'tcp://host:8786', got {address!r}")
    distributed = _import_distributed()
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    try:
        return distributed.Client(address, timeout=f"{timeout}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as e:
        raise ConnectionError(f"cannot reach the Dask scheduler at {address!r} within {timeout:g} s "
                              f"({type(e).__name__}: {e}); start one with `dask scheduler` and workers with "
                              f"`dask worker {address}`") from None


def resolve_client(client: Any) -> tuple[Any, bool]:
    """``(client or None, whether we opened it)`` from a Client, an address, or ``NBTRADE_SCHEDULER``."""
    if client is None:
        address = os.environ.get(SCHEDULER_ENV, "").strip()
        if not address:
            return None, False
        return connect(address), True
    if isinstance(client, str):
        return connect(client), True
    if not (hasattr(client, "submit") and hasattr(client, "scatter")):
        raise TypeError(f"client must be a dask.distributed.Client or a scheduler address, got {client!r}")
    return client, False


def run_on_dask(client: Any, market: Any, fn: Callable, chunks: list, spec: Any, collect: Callable) -> None:
    """Scatter ``market`` to every worker once, submit one task per chunk, ``collect`` each result."""
    from .run import run_chunk

    if not chunks:
        return
    try:
        map_on_dask(client, market, run_chunk, [(fn, chunk, start, spec, True) for start, chunk in chunks], collect)
    finally:
        if spec.token is not None:
            from .memo import release

            try:
                client.run(release, spec.token)  # drop the workers' indicator memos of this sweep
            except Exception:  # noqa: BLE001 - a worker gone: its memo went with it
                pass


def map_on_dask(client: Any, shared: Any, task: Callable, args: list, collect: Callable, retries: int = 3) -> None:
    """Scatter ``shared`` to every worker once, run ``task(shared, *a)`` for each ``a`` of ``args``
    as one task each, and ``collect`` each result (in completion order).

    A task cancelled by the cluster (its worker died with the copy of ``shared`` it read: scattered
    data cannot be recomputed, so the scheduler cancels what needs it) is submitted again on a fresh
    scatter, up to ``retries`` times; an error raised by ``task`` itself is not retried."""
    from concurrent.futures import CancelledError

    distributed = _import_distributed()
    if not args:
        return
    # hash=False: a key of its own per call. With the content's hash, a sweep scattering the market
    # that the previous sweep just released raced that release ("lost dependencies").
    data = [client.scatter(shared, broadcast=True, hash=False)]
    todo = {client.submit(task, data[0], *a, pure=False): (a, 0, 0) for a in args}  # (args, tries, copy)
    done = distributed.as_completed(list(todo), loop=client.loop)
    try:
        for fut in done:
            a, tries, copy = todo.pop(fut)
            try:
                out = fut.result()
            except CancelledError:
                if tries >= retries:
                    raise
                if copy == len(data) - 1:  # the newest copy is lost too: scatter anew
                    data.append(client.scatter(shared, broadcast=True, hash=False))
                again = client.submit(task, data[-1], *a, pure=False)
                todo[again] = (a, tries + 1, len(data) - 1)
                done.add(again)
                continue
            collect(out)
    finally:
        for f in todo:
            f.release()
        for d in data:
            d.release()
