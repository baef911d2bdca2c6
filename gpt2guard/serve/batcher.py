"""Coalesce concurrent requests into one call of the scoring engine.

Requests wait in a queue bounded by documents. One worker takes the first waiting request,
then every other request already waiting, up to ``max_batch_tokens`` (estimated from the
texts' lengths), and hands them to :meth:`Service.judge
<gpt2guard.serve.service.Service.judge>` as one batch: the engine sorts the batch's windows
by length into its own forward passes, so many short requests cost about what one long one
does. When the last batch held several requests (clients are arriving together), the
worker also waits up to ``max_wait`` seconds for more; a lone client never waits.

The models run on one thread (the worker's executor), never two batches at once. A request
that fails (a document over the token limit) fails alone: the others in its batch are
answered. With ``batching=False`` every request is scored on its own, the baseline the
benchmark compares with.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass, field

from gpt2guard.errors import GuardError

# A rough tokens-per-character rate of English under GPT-2's BPE, for sizing batches only.
CHARS_PER_TOKEN = 4


class QueueFull(GuardError):
    """The queue holds as many documents as it may (HTTP 503)."""


@dataclass(eq=False)
class Job:
    """One request's documents and the future its answer goes to."""

    texts: list
    details: list
    names: list | None
    future: asyncio.Future
    cost: int = field(init=False)

    def __post_init__(self):
        self.cost = sum(len(t) // CHARS_PER_TOKEN + 1 for t in self.texts)


class Batcher:
    """Batches requests for a :class:`~gpt2guard.serve.service.Service` (see the module docstring).

    Parameters
    ----------
    service : Service
    batching : bool
        Coalesce concurrent requests (False: one request per engine call).
    max_wait : float
        Seconds to wait for more requests once several have been arriving together.
    max_batch_tokens : int
        Estimated tokens per engine call (a single larger request still runs, alone).
    queue_docs : int
        Documents that may wait; past it :meth:`submit` raises :class:`QueueFull`.
    """

    def __init__(self, service, *, batching: bool = True, max_wait: float = 0.002, max_batch_tokens: int = 4096,
                 queue_docs: int = 1024):
        self.service = service
        self.batching, self.max_wait = batching, max_wait
        self.max_batch_tokens, self.queue_docs = max_batch_tokens, queue_docs
        self.queued_docs = 0
        self.batches = 0  # engine calls made, for the benchmark and tests
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="gpt2guard-model")
        self._together = False
        self._carry: Job | None = None

    async def start(self) -> None:
        """Start the worker (inside the server's event loop)."""
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Answer everything queued, then stop the worker."""
        if self._worker is not None:
            await self._queue.put(None)
            await self._worker
            self._worker = None
        self._executor.shutdown(wait=True)

    async def submit(self, texts: list, details: list, names: list | None = None) -> list[dict]:
        """Queue one request and wait for its rows (raises QueueFull, TooLarge or GuardError)."""
        if self._worker is None:
            raise GuardError("the service is not running")
        if self.queued_docs + len(texts) > self.queue_docs:
            raise QueueFull(f"the queue holds {self.queued_docs} documents (limit {self.queue_docs}); retry shortly")
        job = Job(list(texts), list(details), names, asyncio.get_running_loop().create_future())
        self.queued_docs += len(texts)
        await self._queue.put(job)
        return await job.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job, self._carry = (self._carry, None) if self._carry is not None else (await self._queue.get(), None)
            if job is None:
                return
            batch = await self._gather(job, loop)
            self.queued_docs -= sum(len(j.texts) for j in batch)
            live = [j for j in batch if not j.future.done()]  # a request that timed out is not scored
            if live:
                try:
                    outcomes = await loop.run_in_executor(self._executor, self._judge, live)
                except Exception as exc:  # a fault of the engine fails this batch, never the worker
                    outcomes = [exc] * len(live)
                self.batches += 1
                for j, outcome in zip(live, outcomes):
                    if j.future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        j.future.set_exception(outcome)
                    else:
                        j.future.set_result(outcome)
            self._together = len(batch) > 1

    async def _gather(self, first: Job, loop) -> list[Job]:
        """``first`` and the requests to batch with it."""
        batch, cost = [first], first.cost
        if not self.batching:
            return batch
        deadline = loop.time() + (self.max_wait if self._together else 0.0)
        while cost < self.max_batch_tokens:
            try:
                nxt = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    nxt = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            if nxt is None:  # stopping: answer this batch (and any carried request) first
                self._queue.put_nowait(None)
                break
            if cost + nxt.cost > self.max_batch_tokens:
                self._carry = nxt  # too big to join: it leads the next batch
                break
            batch.append(nxt)
            cost += nxt.cost
        return batch

    def _judge(self, jobs: list[Job]) -> list:
        """On the model thread: every job's rows, or the exception that job alone caused."""
        from gpt2guard.serve.service import TooLarge

        outcomes: list = [None] * len(jobs)
        ok = []
        for k, j in enumerate(jobs):
            try:
                self.service.check_size(j.texts)
                ok.append(k)
            except TooLarge as exc:
                outcomes[k] = exc
        texts = [t for k in ok for t in jobs[k].texts]
        details = [d for k in ok for d in jobs[k].details]
        names = [n for k in ok for n in (jobs[k].names or [None] * len(jobs[k].texts))]
        try:
            rows = self.service.judge(texts, details, names) if texts else []
        except GuardError as exc:
            if len(ok) == 1:
                outcomes[ok[0]] = exc
                return outcomes
            for k in ok:  # find the request that failed; the others are answered
                try:
                    outcomes[k] = self.service.judge(jobs[k].texts, jobs[k].details, jobs[k].names)
                except GuardError as exc:
                    outcomes[k] = exc
            return outcomes
        lo = 0
        for k in ok:
            n = len(jobs[k].texts)
            part = rows[lo:lo + n]
            for i, row in enumerate(part):  # each request numbers its own documents from 0
                row["index"] = i
            outcomes[k] = part
            lo += n
        return outcomes
