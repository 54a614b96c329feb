"""Adaptive micro-batching for one deployment.

Requests are queued; one collector task takes them in batches and runs one predict per
batch in the predict pool, then hands each request its own rows of the result. It is
*adaptive*: a request that finds the deployment idle (nothing queued, nothing running) is
run at once, so batching costs nothing at low load; under load, requests pile up while a
batch runs, the next batch takes up to `max_batch` rows of them, and it waits up to
`max_wait_us` for more only when the previous batch was busy. Only requests of one shape
(`ModelInput.batch_key`) share a batch; a batch whose predict fails is retried request by
request, so one bad request fails alone.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy

    from seaway.serving.protocol import ModelInput

Outputs = dict[str, "numpy.ndarray"]


class Batcher:
    """Batches the requests of one deployment; `submit` returns that request's outputs."""

    def __init__(
        self,
        predict: Callable[[ModelInput], Outputs],
        pool: Executor,
        *,
        max_batch: int,
        max_wait_us: int,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self._predict = predict
        self._pool = pool
        self.max_batch = max_batch
        self.max_wait_s = max_wait_us / 1e6
        self._on_batch = on_batch
        self._queue: deque[tuple[ModelInput, asyncio.Future[Outputs]]] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._busy = False

    async def submit(self, data: ModelInput) -> Outputs:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run())
        future: asyncio.Future[Outputs] = loop.create_future()
        self._queue.append((data, future))
        assert self._wake is not None
        self._wake.set()
        return await future

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        while self._queue:
            _, future = self._queue.popleft()
            if not future.done():
                future.cancel()

    def _take(self) -> list[tuple[ModelInput, asyncio.Future[Outputs]]]:
        first = self._queue.popleft()
        batch = [first]
        rows = first[0].rows
        key = first[0].batch_key()
        skipped = []
        while self._queue and rows < self.max_batch:
            item = self._queue.popleft()
            if item[1].done():
                continue
            if item[0].batch_key() != key or rows + item[0].rows > self.max_batch:
                skipped.append(item)
                continue
            batch.append(item)
            rows += item[0].rows
        self._queue.extendleft(reversed(skipped))
        return batch

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        was_busy = False
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                was_busy = False
            if was_busy and self.max_wait_s > 0:
                # Under load: give the batch a moment to fill before running it.
                deadline = time.perf_counter() + self.max_wait_s
                while self._queued_rows() < self.max_batch:
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        break
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), left)
                    except TimeoutError:
                        break
            batch = self._take()
            was_busy = True
            await self._execute(loop, batch)
            # Requests that arrived while this batch ran mean the deployment is busy.
            was_busy = bool(self._queue)

    def _queued_rows(self) -> int:
        return sum(item[0].rows for item in self._queue)

    async def _execute(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[tuple[ModelInput, asyncio.Future[Outputs]]],
    ) -> None:
        from seaway.serving.protocol import concat

        live = [(d, f) for d, f in batch if not f.done()]
        if not live:
            return
        if self._on_batch is not None:
            self._on_batch(sum(d.rows for d, _ in live))
        if len(live) == 1:
            data, future = live[0]
            await self._single(loop, data, future)
            return
        try:
            merged = concat([d for d, _ in live])
            outputs = await loop.run_in_executor(self._pool, self._predict, merged)
        except Exception:
            for data, future in live:
                await self._single(loop, data, future)
            return
        start = 0
        for data, future in live:
            end = start + data.rows
            if not future.done():
                future.set_result({k: v[start:end] for k, v in outputs.items()})
            start = end

    async def _single(
        self, loop: asyncio.AbstractEventLoop, data: ModelInput, future: asyncio.Future[Any]
    ) -> None:
        try:
            result = await loop.run_in_executor(self._pool, self._predict, data)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(result)


__all__ = ["Batcher"]
