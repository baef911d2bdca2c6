"""Throughput and latency of ``gpt2guard serve``, batching on against batching off, same run.

For each model the benchmark starts two real servers (``gpt2guard serve ... --port 0`` in
subprocesses, on sockets of 127.0.0.1), one with batching and one with ``--no-batching``
(one request scored at a time), and drives them with 1, 8 and 32 concurrent clients
(asyncio tasks sharing one ``httpx.AsyncClient``, each sending its next request as soon as
the last is answered) until a fixed number of requests is answered. One request carries
one document: documents of the builtin human corpus's test split with 200 to 300 words
(the corpus groups paragraphs into documents of at most 300 words), in a seeded order.
Each run starts with one untimed request, then the clock runs. Both servers stay up while
the runs alternate between them (an idle one costs no CPU), ``--repeats`` rounds, and the
table keeps each one's fastest round: on a shared machine both see the same spells of load.

Every answer is checked: status 200 and the name the request carried. The table gives,
per model, batching and client count: documents and tokens (the engine's count, from the
answers) per second, and the p50 and p99 request latency seen by the client. Then:

* the batched / unbatched throughput at 32 clients (target: at least 4x), and the requests
  per engine call the batching server made;
* the engine's own batching gain: :meth:`Service.judge
  <gpt2guard.serve.service.Service.judge>` in this process on 32 documents (8 on 124M) at
  once against one at a time, per document, in wall and process CPU time. No server can
  batch past this: it is what coalescing requests can give on this machine for these
  documents;
* p50 latency at 1 client against a direct library call (target: within 20%): one document
  at a time, alternately ``Service.judge`` in this process (the same torch threads) and a
  request to the batching server, so both see the same load; with the CPU time each costs
  (the server process's from ``/proc/PID/stat``, and the client's), which tells the cost
  of serving from time spent waiting for a CPU on a busy machine.

Models: ``nano-xl`` is the builtin nano family's xl size (built on first use, cached under
``$GPT2GUARD_CACHE``); ``gpt2-124m`` is the GPT-2 small architecture (``GPT2Config()``: 12
layers, width 768, context 1024, output vocabulary 50257) with random weights, saved with
``save_pretrained`` (safetensors) into a temporary directory with nano's tokenizer (its ids
lie inside GPT-2's vocabulary), and served as a local model directory (``--family DIR``),
so nothing is downloaded. Both run zero-shot Fast-DetectGPT with a fixed ``--threshold``
(no calibration at start-up: the decisions are not what is measured).

Memory (skip with ``--no-memory``): a nano-xl server with ``--queue-size 1024`` gets 100,
then 1,000 single-document requests sent at once; before each burst the server's peak
resident set size is reset (``5`` written to ``/proc/PID/clear_refs``) and after it read
(``VmHWM`` of ``/proc/PID/status``), beside its resident size when idle. Every request must
be answered.

The machine may be shared: each row gives the 1-minute load average at its end, and the
header names the CPU. Servers and the direct call run ``--threads`` torch threads
(``OMP_NUM_THREADS``; default every CPU this process may use); the clients run in this
process on the same CPUs.

Usage::

    PYTHONPATH=. python3 bench/bench_serve.py            # both models and memory (13-14 min on 2 busy cores)
    PYTHONPATH=. python3 bench/bench_serve.py --quick    # nano-xl only, fewer requests (2 min)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CLIENTS = (1, 8, 32)
# requests per run (clients -> requests) and rounds: the whole run took 807-825 s on 2 cores
# shared with other work (load 7-10), where 124M scored about 0.4 documents a second, nano xl 7
REQUESTS = {"nano-xl": {1: 24, 8: 64, 32: 128}, "gpt2-124m": {1: 4, 8: 16, 32: 32}}
QUICK_REQUESTS = {"nano-xl": {1: 12, 8: 32, 32: 64}}
REPEATS = {"nano-xl": 2, "gpt2-124m": 1}
ENGINE_BATCH = {"nano-xl": 32, "gpt2-124m": 8}
METHOD_ARGS = ["--method", "fast-detectgpt", "--threshold", "0", "--timeout", "900"]
URL = re.compile(r"serving on (http://[^\s/]+)")
BURSTS = (100, 1000)


# --- documents and models -------------------------------------------------------------------

def documents(seed: int, min_words: int = 200) -> list[str]:
    """Test-split documents of the builtin human corpus with ``min_words`` words or more (at
    most 300: the corpus's grouping limit), in a seeded order."""
    import numpy as np

    from gpt2guard.datasets.builtin import builtin_corpus

    docs = [d.text for d in builtin_corpus() if d.split == "test" and len(d.text.split()) >= min_words]
    order = np.random.default_rng(seed).permutation(len(docs))
    return [docs[i] for i in order]


def save_gpt2_124m(path: str, seed: int) -> None:
    """GPT-2 small's architecture, random weights, saved as safetensors with nano's tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from gpt2guard.family import load_tokenizer

    tok = load_tokenizer("nano")
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(bos_token_id=tok.eos_token_id, eos_token_id=tok.eos_token_id))
    model.save_pretrained(path)
    tok.save_pretrained(path)


def model_args(name: str, workdir: str, seed: int) -> tuple[list[str], dict]:
    """(``gpt2guard serve`` arguments, ``load_service`` keywords) of a benchmark model."""
    if name == "nano-xl":
        return ["--family", "nano", "--size", "xl"], {"family": "nano", "size": "xl"}
    if name == "gpt2-124m":
        path = os.path.join(workdir, "gpt2-124m")
        save_gpt2_124m(path, seed)
        return ["--family", path], {"family": path}
    raise SystemExit(f"unknown model {name!r}: use nano-xl or gpt2-124m")


# --- a server in a subprocess ---------------------------------------------------------------

class Server:
    """``gpt2guard serve`` on a free port of 127.0.0.1, ready to score (a context manager)."""

    def __init__(self, args: list[str], threads: int, start_timeout: float = 600.0):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}
        self.proc = subprocess.Popen([sys.executable, "-c", "from gpt2guard.cli import main; main()", "serve",
                                      *args, "--host", "127.0.0.1", "--port", "0"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines: list[str] = []
        self.url = None
        found = threading.Event()
        self._reader = threading.Thread(target=self._drain, args=(found,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + start_timeout
        try:
            if not found.wait(start_timeout) or self.url is None:
                raise RuntimeError(f"the server did not start: {self.last_line()}")
            self._wait_ready(deadline)
        except BaseException:
            self.stop()
            raise

    def _drain(self, found: threading.Event) -> None:
        for line in self.proc.stderr:  # read to the end, so the pipe never fills
            self.lines.append(line.rstrip("\n"))
            m = URL.search(line)
            if m and self.url is None:
                self.url = m.group(1)
                found.set()
        found.set()

    def _wait_ready(self, deadline: float) -> None:
        import httpx

        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with {self.proc.returncode}: {self.last_line()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the server was not ready in time")

    def last_line(self) -> str:
        return self.lines[-1] if self.lines else "(no output)"

    def engine_calls(self) -> int | None:
        """Engine calls the server reported when it stopped."""
        for line in self.lines:
            m = re.search(r"(\d+) engine call", line) if line.startswith("stopped") else None
            if m:
                return int(m.group(1))
        return None

    def memory_kib(self) -> dict:
        """``VmRSS`` and ``VmHWM`` of the server process, in KiB."""
        out = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0])
        return out

    def reset_peak(self) -> bool:
        """Reset the server's peak resident size to its current one; False where not permitted."""
        try:
            with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def stop(self) -> int | None:
        """SIGTERM, then the exit status (the server answers what is in flight first)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            status = self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            status = self.proc.wait()
        self._reader.join(timeout=10)
        return status

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# --- clients --------------------------------------------------------------------------------

def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values), q))


async def drive(url: str, docs: list[str], clients: int, n_requests: int, tag: str, warm: bool = True) -> dict:
    """``clients`` concurrent clients send ``n_requests`` single-document requests in all; each
    answer must be a 200 naming its request. Returns the timing and what was answered."""
    import httpx

    latencies: list[float] = [0.0] * n_requests
    tokens = [0] * n_requests
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(900.0), limits=limits) as client:

        async def post(i: int, name: str) -> tuple[float, int]:
            doc = docs[i % len(docs)]
            t = time.perf_counter()
            r = await client.post("/v1/score", json={"texts": [doc], "names": [name]})
            elapsed = time.perf_counter() - t
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code != 200:
                raise RuntimeError(f"request {name}: status {r.status_code}: {r.text[:200]}")
            row = r.json()["results"]
            if len(row) != 1 or row[0]["name"] != name:
                raise RuntimeError(f"request {name} got the answer of {[x['name'] for x in row]}")
            return elapsed, int(row[0]["n_tokens"])

        if warm:  # one untimed request: the connection pool and the server's first pass
            await post(0, f"{tag}-warm")
            statuses.clear()
        todo = iter(range(n_requests))

        async def client_loop():
            for i in todo:  # one iterator shared by the clients: each request is sent once
                latencies[i], tokens[i] = await post(i, f"{tag}-{i}")

        t0 = time.perf_counter()
        await asyncio.gather(*(client_loop() for _ in range(clients)))
        wall = time.perf_counter() - t0
    return {"clients": clients, "requests": n_requests, "wall": wall, "docs_s": n_requests / wall,
            "tokens_s": sum(tokens) / wall, "p50_ms": percentile(latencies, 50) * 1e3,
            "p99_ms": percentile(latencies, 99) * 1e3, "statuses": statuses, "load": os.getloadavg()[0]}


# --- the direct library call ----------------------------------------------------------------

def engine_gain(service, docs: list[str], batch: int) -> dict:
    """Service.judge on ``batch`` documents one at a time, then all in one call: wall time and
    process CPU time (which other load on the machine disturbs less)."""
    several = docs[:batch]
    one_by_one = one_by_one_cpu = 0.0
    for doc in several:
        t, c = time.perf_counter(), time.process_time()
        service.judge([doc])
        one_by_one += time.perf_counter() - t
        one_by_one_cpu += time.process_time() - c
    t, c = time.perf_counter(), time.process_time()
    service.judge(several)
    together, together_cpu = time.perf_counter() - t, time.process_time() - c
    return {"single_doc_ms": one_by_one / batch * 1e3, "batch_doc_ms": together / batch * 1e3,
            "single_cpu_ms": one_by_one_cpu / batch * 1e3, "batch_cpu_ms": together_cpu / batch * 1e3,
            "engine_gain": one_by_one / together, "engine_gain_cpu": one_by_one_cpu / together_cpu, "batch": batch}


def process_cpu_s(pid: int) -> float:
    """User plus system CPU seconds of a process so far (``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def paired_latency(service, server: Server, docs: list[str], n: int) -> dict:
    """One document at a time, alternately a direct Service.judge and a request to the server
    (one client), so both see the same load on the machine: p50 of each, and the CPU time a
    direct call and a served request cost (the server process's, and the client's)."""
    import httpx

    direct_s, served_s = [], []
    direct_cpu = server_cpu = client_cpu = 0.0
    with httpx.Client(base_url=server.url, timeout=600) as client:
        client.post("/v1/score", json={"texts": [docs[0]]})  # open the connection
        for k, doc in enumerate(docs[:n]):
            t, c = time.perf_counter(), time.process_time()
            service.judge([doc])
            direct_s.append(time.perf_counter() - t)
            direct_cpu += time.process_time() - c
            t, c, sc = time.perf_counter(), time.process_time(), process_cpu_s(server.proc.pid)
            r = client.post("/v1/score", json={"texts": [doc], "names": [f"paired-{k}"]})
            served_s.append(time.perf_counter() - t)
            client_cpu += time.process_time() - c
            server_cpu += process_cpu_s(server.proc.pid) - sc
            if r.status_code != 200 or r.json()["results"][0]["name"] != f"paired-{k}":
                raise RuntimeError(f"paired request {k}: status {r.status_code}: {r.text[:200]}")
    return {"direct_p50_ms": percentile(direct_s, 50) * 1e3, "served_p50_ms": percentile(served_s, 50) * 1e3,
            "direct_cpu_ms": direct_cpu / n * 1e3, "server_cpu_ms": server_cpu / n * 1e3,
            "client_cpu_ms": client_cpu / n * 1e3, "n": n}


# --- the benchmark --------------------------------------------------------------------------

def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def bench_model(name: str, docs: list[str], counts: dict, threads: int, workdir: str, seed: int,
                repeats: int) -> tuple:
    """Both servers of a model up at once (an idle one costs no CPU); the runs alternate between
    them, ``repeats`` rounds, and each keeps its fastest round."""
    from gpt2guard.serve import load_service

    serve_args, service_kwargs = model_args(name, workdir, seed)
    service = load_service(method="fast-detectgpt", threshold=0.0, **service_kwargs)
    service.judge(docs[:2])  # warm
    base = engine_gain(service, docs, ENGINE_BATCH[name])
    log(f"{name}: direct Service.judge, {base['batch']} documents in one call {base['batch_doc_ms']:.1f} ms a document "
        f"(CPU {base['batch_cpu_ms']:.1f}) against {base['single_doc_ms']:.1f} (CPU {base['single_cpu_ms']:.1f}) one at "
        f"a time: engine batching gain {base['engine_gain']:.2f}x, in CPU time {base['engine_gain_cpu']:.2f}x")
    best: dict = {}
    with Server(serve_args + METHOD_ARGS, threads) as on, Server(serve_args + METHOD_ARGS + ["--no-batching"],
                                                                   threads) as off:
        base.update(paired_latency(service, on, docs, counts[1]))
        log(f"{name}: one client, alternating: served (batching on) p50 {base['served_p50_ms']:.1f} ms, "
            f"direct p50 {base['direct_p50_ms']:.1f} ms; CPU a request: server {base['server_cpu_ms']:.1f} ms, "
            f"client {base['client_cpu_ms']:.1f}, direct call {base['direct_cpu_ms']:.1f}")
        for c in CLIENTS:
            for rep in range(repeats):
                for batching, server in ((True, on), (False, off)):
                    r = asyncio.run(drive(server.url, docs, c, counts[c],
                                          f"{name}-{'b' if batching else 'u'}{c}-{rep}"))
                    r.update(model=name, batching=batching)
                    log(f"{name} batching {'on ' if batching else 'off'} {c:>2} clients: {r['docs_s']:.2f} docs/s, "
                        f"p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms, load {r['load']:.1f}")
                    if (batching, c) not in best or r["docs_s"] > best[batching, c]["docs_s"]:
                        best[batching, c] = r
        answered = 1 + counts[1] + sum((counts[c] + 1) * repeats for c in CLIENTS)
        for batching, server in ((True, on), (False, off)):
            status = server.stop()
            calls = server.engine_calls()
            base["calls_on" if batching else "calls_off"] = calls
            log(f"{name} batching {'on' if batching else 'off'}: exit status {status}, "
                f"{answered if batching else answered - 1 - counts[1]} requests in {calls} engine calls")
        base["requests_on"] = answered
    return [best[b, c] for b in (True, False) for c in CLIENTS], base


async def burst(url: str, docs: list[str], n: int) -> dict:
    """``n`` single-document requests sent at once; every one must be answered."""
    return await drive(url, docs, n, n, f"burst{n}", warm=False)


def bench_memory(docs: list[str], threads: int) -> dict:
    args = ["--family", "nano", "--size", "xl", *METHOD_ARGS, "--queue-size", "1024", "--timeout", "900"]
    out = {"bursts": []}
    with Server(args, threads) as server:
        asyncio.run(drive(server.url, docs, 4, 8, "idle-warm"))
        time.sleep(0.5)
        out["idle_kib"] = server.memory_kib()["VmRSS"]
        for n in BURSTS:
            reset = server.reset_peak()
            t = time.perf_counter()
            r = asyncio.run(burst(server.url, docs, n))
            mem = server.memory_kib()
            out["bursts"].append({"n": n, "peak_kib": mem["VmHWM"], "seconds": time.perf_counter() - t,
                                  "statuses": r["statuses"], "reset": reset})
            print(f"memory: {n} requests at once: peak {mem['VmHWM'] / 1024:.0f} MiB "
                  f"(idle {out['idle_kib'] / 1024:.0f} MiB), statuses {r['statuses']}", file=sys.stderr, flush=True)
        out["exit"] = server.stop()
    return out


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="nano-xl,gpt2-124m", help="comma-separated: nano-xl, gpt2-124m")
    ap.add_argument("--quick", action="store_true", help="nano-xl only, fewer requests")
    ap.add_argument("--requests", type=int, help="requests per run, every run (default: sized per model and clients)")
    ap.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                    help="torch threads of the servers and the direct call (default: every CPU)")
    ap.add_argument("--repeats", type=int,
                    help="rounds alternating the two servers, the fastest kept (default: 2 nano-xl, 1 gpt2-124m)")
    ap.add_argument("--no-memory", action="store_true", help="skip the 1,000-document memory measurement")
    ap.add_argument("--seed", type=int, default=0, help="document order and the 124M model's random weights")
    args = ap.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before torch loads: the direct call's threads
    from gpt2guard.family.load import thread_env_defaults

    thread_env_defaults()  # the OpenMP wait policy the CLI (so each server) sets: the same for the direct call
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    models = ["nano-xl"] if args.quick else [m for m in args.models.split(",") if m]
    table = QUICK_REQUESTS if args.quick else REQUESTS
    docs = documents(args.seed)
    start = time.perf_counter()
    cpu = f"{cpu_name()}, {len(os.sched_getaffinity(0))} CPUs"
    print(f"{cpu}; {args.threads} torch threads; {len(docs)} documents of 200-300 words; "
          f"load average {os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
    rows, bases = [], {}
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as workdir:
        for m in models:
            counts = {c: args.requests for c in CLIENTS} if args.requests else table[m]
            r, bases[m] = bench_model(m, docs, counts, args.threads, workdir, args.seed,
                                      args.repeats or REPEATS[m])
            rows += r
    memory = None if args.no_memory else bench_memory(docs, args.threads)

    print(f"\n{cpu}, {args.threads} torch threads, clients in the same process as the benchmark; "
          f"{time.perf_counter() - start:.0f} s in all")
    print("| model | batching | clients | requests | docs/s | tokens/s | p50 ms | p99 ms | load |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {'on' if r['batching'] else 'off'} | {r['clients']} | {r['requests']} | "
              f"{r['docs_s']:.2f} | {r['tokens_s']:.0f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['load']:.1f} |")
    print()
    for m in models:
        by = {(r["batching"], r["clients"]): r for r in rows if r["model"] == m}
        ratio = by[True, 32]["docs_s"] / by[False, 32]["docs_s"]
        b = bases[m]
        calls = f", {b['requests_on'] / b['calls_on']:.1f} requests an engine call" if b.get("calls_on") else ""
        print(f"{m}: batched / unbatched throughput at 32 clients {ratio:.2f}x (target 4x){calls}; engine alone, "
              f"{b['batch']} documents in one call against one at a time: {b['engine_gain']:.2f}x, in process CPU time "
              f"{b['engine_gain_cpu']:.2f}x ({b['single_cpu_ms']:.0f} against {b['batch_cpu_ms']:.0f} ms a document; the "
              f"most batching can give here); p50 at 1 client, alternating with a direct Service.judge on the same documents: "
              f"served {b['served_p50_ms']:.1f} ms, direct {b['direct_p50_ms']:.1f} ms, "
              f"{b['served_p50_ms'] / b['direct_p50_ms']:.2f}x (target 1.20x); CPU time a request: server process "
              f"{b['server_cpu_ms']:.1f} ms and client {b['client_cpu_ms']:.1f} against {b['direct_cpu_ms']:.1f} a "
              f"direct call ({b['server_cpu_ms'] / b['direct_cpu_ms']:.2f}x)")
    if memory:
        how = ("peak reset before each burst" if all(b["reset"] for b in memory["bursts"])
               else "lifetime peak: /proc/PID/clear_refs not permitted")
        for b in memory["bursts"]:
            ok = b["statuses"] == {200: b["n"]}
            print(f"memory (nano-xl, {how}): {b['n']} requests at once, {'all answered' if ok else b['statuses']} "
                  f"in {b['seconds']:.0f} s: peak {b['peak_kib'] / 1024:.0f} MiB against "
                  f"{memory['idle_kib'] / 1024:.0f} MiB idle (+{(b['peak_kib'] - memory['idle_kib']) / 1024:.0f} MiB)")
        print(f"memory server exit status {memory['exit']}")


if __name__ == "__main__":
    main()
