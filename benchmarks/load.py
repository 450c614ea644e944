"""Load and scale-out: 256 concurrent clients on /v1/suggest for 60 s, per uvicorn worker count.

Acceptance target: 0 errors at 256 concurrent clients, and p95 <= stub LLM latency + 50 ms.

Setup, shared with suggest_overhead.py (its stub, body and helpers are imported from there): the
test suite's fake LLM (tests/fake_llm.py: a fixed delay; n=3 is answered with 3 choices in one
call, so each suggestion is one LLM round trip) in its own process; the acme brand ingested into
a temporary data dir; tactful under `uvicorn --factory benchmarks._support:create --workers N`,
each N in turn against the same stub and data dir so the rows compare side by side; this
process as the load generator (aiohttp on uvloop, one keep-alive connection per client, the
connector's limit set to the client count; httpx costs far more CPU per request at this
concurrency, see suggest_overhead.py).

Each client is a closed loop: POST /v1/suggest (acme, twitter, public, n=3; every draft passes
the guardrails, so no regenerate round), and the next one as soon as the answer is in. The
clients' first requests are spread over one stub latency (`--ramp`): with a fixed-latency stub,
clients that start together stay in lockstep for the whole run, and every L seconds 256
requests land within milliseconds - a burst no real traffic produces. Measured at 10 s with 2
workers: all at once, 16.6 req/s and p95 = L + 4.5 s; spread, 24.3 req/s and p95 = L + 1.8 s.
The first `--warmup` seconds (ramp + one latency + 5 s by default) are not measured.

Reported per worker count: requests started in the window, throughput (200 answers completed in
the window / its length), p50/p95/p99 and p95 minus the stub latency, errors by kind (non-200,
connection errors, timeouts; the client timeout, 60 s, is above tactful's 45 s suggest deadline),
200 answers that carry a holding reply instead of drafts, peak RSS of tactful (VmRSS summed over
the uvicorn master and its workers every second: shared pages count once per process, so an
upper bound), tactful's CPU (cores and ms per request), how busy the whole machine was and how
much of it went to other processes, throughput relative to 1 worker, and pass/fail. A second
table splits p95 by pipeline stage (the response's timings_ms; "http+framework" is the client's
latency minus the pipeline's total) and shows how the workers shared the 256 connections.

Why 10 s by default (`--latency`): a closed loop offers clients / latency requests per second,
and the 2 cores are shared by tactful, the stub and the load generator, so the latency decides
whether the run measures tactful or a saturated machine. Measured here, tactful costs 30-55 ms
of CPU per suggestion under load (more with more workers), the stub and the generator about
1 ms each. At 2 s (128 req/s) that is 4-7 cores: the machine saturates at 32-46 req/s whatever
the worker count (`--latency 2`, benchmarks/results/load_L2000ms.json). At 10 s, 25.6 req/s need
about one core of tactful, which leaves the other for the stub, the generator and the system;
three drafts from the embedded model take 5-15 s, from a hosted LLM 1-3 s. Because the offered
rate is fixed by clients / latency, throughput grows with workers only where fewer workers fall
short of it: one worker is one event loop, and saturates near 20-30 req/s on this machine.

Rate limiting is off in the child (TACTFUL_RATE_LIMIT_PER_MINUTE=0): in open mode every client
here shares one address and so one bucket (600/min by default, kept per worker process), which
would answer 429 to most of the load. Everything else is tactful's default: auth open (no key
lookup), suggest_deadline 45 s (far above the latency: no holding replies unless tactful itself
falls that far behind), llm_max_retries 2 (the stub never fails), JSON logs at INFO (a request
and a suggestion line per call, into a file), the embedded Chroma store under the temp data dir.

The machine is shared: other sessions' test runs take CPU in the middle of a window. Before each
worker count the run waits (`--quiet-wait`, at most 90 s) for other processes to use under 0.3
cores, and as root it raises its own priority for the run (the stub and the generator first, as
the stand-ins for other machines, then tactful; with autogroup scheduling the session's own
weight too, put back afterwards; `--no-renice` turns this off). The CPU other processes used
during each window is reported, with a warning above 0.2 cores.

    .venv/bin/python benchmarks/load.py [--latency 10] [--clients 256] [--duration 60] [--workers 1,2,4]
    .venv/bin/python benchmarks/load.py --latency 2          # the saturated machine: capacity per worker count
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from benchmarks._support import (connections_by_pid, machine_cpu_seconds, process_tree,  # noqa: E402
                                 tree_cpu_seconds, tree_rss_bytes)
from benchmarks.suggest_overhead import SUGGEST_BODY, pct, run_fake_llm, stage  # noqa: E402
from tests.servers import free_port  # noqa: E402

TARGET_P95_MARGIN_MS = 50.0
DEFAULT_LATENCY = 10.0
RESULTS = ROOT / "benchmarks" / "results" / "load.json"
console = Console(width=None if sys.stdout.isatty() else 150)  # logs and pipes: no 80-column wrapping


def own_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Run:
    """One worker count under load: what the clients saw and what the machine did meanwhile."""

    def __init__(self, workers: int, args):
        self.workers, self.args = workers, args
        self.latencies: list[float] = []  # ms, 200 answers to requests started in the window
        self.started = 0  # requests started in the window
        self.completed_in_window = 0  # 200 answers received in the window (throughput)
        self.errors: Counter[str] = Counter()
        self.warmup_errors: Counter[str] = Counter()
        self.degraded: Counter[str] = Counter()  # 200 answers that are not model drafts
        self.stages: dict[str, list[float]] = defaultdict(list)
        self.rss_peak = 0
        self.procs_peak = 0
        self.loop_lag_ms: list[float] = []
        self.connections: dict[int, int] = {}
        self.cpu: dict[str, float] = {}

    async def client(self, i: int, session: aiohttp.ClientSession, url: str, body: bytes,
                     t_start: float, t0: float, stop: float) -> None:
        await asyncio.sleep(max(0.0, t_start + i * self.args.ramp / self.args.clients - time.perf_counter()))
        while (t := time.perf_counter()) < stop:
            measured = t >= t0
            errors = self.errors if measured else self.warmup_errors
            self.started += measured
            try:
                async with session.post(url, data=body, headers={"content-type": "application/json"}) as r:
                    status, raw = r.status, await r.read()
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                errors[type(exc).__name__] += 1
                await asyncio.sleep(0.1)  # a refused connection must not become a busy loop
                continue
            done = time.perf_counter()
            if status != 200:
                errors[f"HTTP {status}"] += 1
                continue
            self.completed_in_window += t0 <= done <= stop
            if not measured:
                continue
            ms = (done - t) * 1000
            self.latencies.append(ms)
            answer = json.loads(raw)
            if answer.get("holding_reason") or not answer.get("drafts"):
                self.degraded[answer.get("holding_reason") or "no drafts"] += 1
            for stage, value in answer["timings_ms"].items():
                self.stages[stage].append(value)
            # what the client saw minus what the pipeline measured: accept, HTTP parsing, routing,
            # validation, serialisation, and waiting for the event loop of the worker (or of this process)
            self.stages["http+framework"].append(ms - answer["timings_ms"]["total"])

    async def monitor(self, tactful_pid: int, fake_pid: int, port: int, t0: float, stop: float) -> None:
        """Every second: tactful's summed RSS. At the window's edges: CPU of tactful, the stub, this
        process and the whole machine. Once after the warm-up: which worker holds how many connections."""
        def cpu_snapshot() -> dict[str, float]:
            busy, total = machine_cpu_seconds()
            return {"tactful": tree_cpu_seconds(process_tree(tactful_pid)), "stub": tree_cpu_seconds([fake_pid]),
                    "load_generator": own_cpu_seconds(), "machine_busy": busy, "machine_total": total,
                    "wall": time.perf_counter()}

        start = end = None
        while (now := time.perf_counter()) < stop + 0.5:
            pids = process_tree(tactful_pid)
            self.rss_peak = max(self.rss_peak, tree_rss_bytes(pids))
            self.procs_peak = max(self.procs_peak, len(pids))
            if start is None and now >= t0:
                start = cpu_snapshot()
                self.connections = connections_by_pid(port, pids)
            if end is None and now >= stop:
                end = cpu_snapshot()
            next_tick = min(now + 1.0, *(x for x, snap in ((t0, start), (stop, end)) if snap is None and x > now),
                            stop + 0.5)
            await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
        end = end or cpu_snapshot()
        wall = end["wall"] - start["wall"]
        self.cpu = {k: end[k] - start[k] for k in ("tactful", "stub", "load_generator", "machine_busy")}
        self.cpu["wall"] = wall
        self.cpu["machine_capacity"] = end["machine_total"] - start["machine_total"]

    async def loop_lag(self, stop: float) -> None:
        """How late this process's event loop wakes up: time the load generator adds to latencies."""
        while time.perf_counter() < stop:
            t = time.perf_counter()
            await asyncio.sleep(0.05)
            self.loop_lag_ms.append((time.perf_counter() - t - 0.05) * 1000)

    async def drive(self, url: str, tactful_pid: int, fake_pid: int, port: int) -> None:
        a = self.args
        body = json.dumps(SUGGEST_BODY).encode()
        connector = aiohttp.TCPConnector(limit=a.clients, limit_per_host=0, keepalive_timeout=30)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=a.timeout)) as session:
            t_start = time.perf_counter()
            t0 = t_start + a.warmup
            stop = t0 + a.duration
            await asyncio.gather(self.monitor(tactful_pid, fake_pid, port, t0, stop), self.loop_lag(stop),
                                 *(self.client(i, session, url, body, t_start, t0, stop) for i in range(a.clients)))

    def summary(self) -> dict:
        a, lat, ok = self.args, self.latencies, len(self.latencies)
        cpu, n_err = self.cpu, sum(self.errors.values())
        p = {q: round(pct(lat, q), 1) if lat else None for q in (50, 95, 99)}
        others = cpu["machine_busy"] - cpu["tactful"] - cpu["stub"] - cpu["load_generator"]
        return {
            "workers": self.workers, "clients": a.clients, "requests": self.started, "ok": ok,
            "req_per_s": round(self.completed_in_window / a.duration, 2),
            "ideal_req_per_s": round(a.clients / a.latency, 2),
            "p50_ms": p[50], "p95_ms": p[95], "p99_ms": p[99], "max_ms": round(max(lat), 1) if lat else None,
            "p95_minus_latency_ms": round(p[95] - a.latency * 1000, 1) if lat else None,
            "errors": n_err, "errors_by_kind": dict(self.errors), "warmup_errors_by_kind": dict(self.warmup_errors),
            "degraded_answers": dict(self.degraded),
            "peak_rss_mb": round(self.rss_peak / 2**20, 1), "processes": self.procs_peak,
            "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()},
            "tactful_cores": round(cpu["tactful"] / cpu["wall"], 2),
            "tactful_cpu_ms_per_req": round(cpu["tactful"] * 1000 / ok, 2) if ok else None,
            "machine_busy_share": round(cpu["machine_busy"] / cpu["machine_capacity"], 3),
            "other_processes_cores": round(others / cpu["wall"], 2),
            "connections_per_worker": sorted(self.connections.values(), reverse=True),
            "load_generator_loop_lag_ms": {"p99": round(pct(self.loop_lag_ms, 99), 1), "max": round(max(self.loop_lag_ms), 1)}
                                          if self.loop_lag_ms else {},
            "stage_p50_ms": {k: round(pct(v, 50), 2) for k, v in self.stages.items()},
            "stage_p95_ms": {k: round(pct(v, 95), 2) for k, v in self.stages.items()},
            "pass": n_err == 0 and bool(lat) and p[95] <= a.latency * 1000 + TARGET_P95_MARGIN_MS,
        }


def start_tactful(workers: int, port: int, env: dict, log: Path, nice: int | None, factory: str) -> subprocess.Popen:
    # --log-level info for the one "Application startup complete." line per worker (how readiness of
    # every worker is seen); --no-access-log: no line per request, as behind a proxy in production
    def set_priority() -> None:  # in the child before exec: the workers it spawns inherit it
        if nice is not None:
            try:
                os.setpriority(os.PRIO_PROCESS, 0, nice)
            except OSError:
                pass
    return subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", factory,
                             "--host", "127.0.0.1", "--port", str(port), "--log-level", "info", "--no-access-log",
                             "--workers", str(workers)],
                            cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, preexec_fn=set_priority)


def other_cpu_cores(own: list[int], seconds: float = 3.0) -> float:
    """Cores the rest of the machine (not these processes' trees) uses right now."""
    def sample() -> tuple[float, float]:
        return machine_cpu_seconds()[0], sum(tree_cpu_seconds(process_tree(p)) for p in own)
    (busy0, ours0), t0 = sample(), time.perf_counter()
    time.sleep(seconds)
    (busy1, ours1), t1 = sample(), time.perf_counter()
    return max(0.0, (busy1 - busy0) - (ours1 - ours0)) / (t1 - t0)


def wait_for_quiet(own: list[int], limit: float, max_wait: float) -> float:
    """Wait (up to `max_wait` s) until other processes use less than `limit` cores: the machine is
    shared, and someone's test run in the middle of a window says nothing about tactful."""
    deadline, said = time.monotonic() + max_wait, 0.0
    while True:
        busy = other_cpu_cores(own)
        if busy < limit or time.monotonic() >= deadline:
            return busy
        if time.monotonic() - said > 30:
            console.print(f"  other processes use {busy:.2f} cores; waiting (at most {max_wait:.0f} s) for a quieter machine ...")
            said = time.monotonic()


def set_session_nice(nice: int):
    """Set this session's autogroup nice value; returns how to put the old one back (None: no autogroups)."""
    path = Path("/proc/self/autogroup")
    try:
        old = int(path.read_text().split()[-1])  # "/autogroup-119 nice 0"
    except (OSError, ValueError, IndexError):
        return None
    path.write_text(str(nice))
    old = 0 if old == nice else old  # most likely left by another run of this script: back to the default

    def restore() -> None:
        try:
            path.write_text(str(old))
        except OSError:
            pass
    return restore


def git_state() -> dict:
    """Which code was measured: HEAD and the files changed on top of it (read-only git calls)."""
    def git(*cmd: str) -> str:
        try:
            return subprocess.run(["git", "--no-optional-locks", *cmd], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"head": git("rev-parse", "HEAD").strip() or None,
            "uncommitted": [line[3:] for line in git("status", "--porcelain").splitlines() if line.strip()]}


def wait_for_workers(proc: subprocess.Popen, log: Path, offset: int, workers: int, timeout: float = 180) -> None:
    """/healthz answers as soon as one worker is up; the run starts when all of them are."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tactful exited during startup:\n{log.read_text()[offset:][-3000:]}")
        if log.read_text()[offset:].count("Application startup complete.") >= workers:
            return
        time.sleep(0.2)
    raise TimeoutError(f"{workers} tactful workers did not start within {timeout:.0f}s")


def stop_process(proc: subprocess.Popen | None) -> None:
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def report(rows: list[dict], args) -> None:
    base = rows[0]["req_per_s"] if rows and rows[0]["workers"] == 1 else None
    table = Table(title=f"/v1/suggest under load: {args.clients} concurrent clients, {args.duration:.0f} s per row, "
                        f"stub LLM latency {args.latency * 1000:.0f} ms (n=3, one call), {os.cpu_count()} cores shared "
                        f"by tactful, the stub and the load generator")
    cols = ("workers", "requests", "req/s", "vs 1 worker", "p50 ms", "p95 ms", "p99 ms", "p95 - L ms", "errors",
            "peak RSS MB", "tactful CPU", "CPU ms/req", "machine busy", "pass")
    for col in cols:
        table.add_column(col, justify="right")
    for r in rows:
        ok = r["pass"]
        table.add_row(str(r["workers"]), str(r["requests"]), f"{r['req_per_s']:.1f}",
                      f"{r['req_per_s'] / base:.2f}x" if base else "-",
                      f"{r['p50_ms']:.0f}", f"{r['p95_ms']:.0f}", f"{r['p99_ms']:.0f}", f"{r['p95_minus_latency_ms']:+.0f}",
                      str(r["errors"]), f"{r['peak_rss_mb']:.0f}", f"{r['tactful_cores']:.2f} cores",
                      f"{r['tactful_cpu_ms_per_req']:.1f}", f"{r['machine_busy_share']:.0%}",
                      "[green]PASS[/]" if ok else "[red]FAIL[/]")
    console.print(table)

    diag = Table(title="Where the time above the stub latency goes (p95 ms per stage, from timings_ms), and the machine")
    diag.add_column("workers", justify="right")
    stages = [s for s in rows[0]["stage_p95_ms"] if s not in ("total",)] if rows else []
    for s in stages:
        diag.add_column(s, justify="right")
    for col in ("conns per worker", "generator lag p99/max", "stub CPU", "generator CPU", "other procs"):
        diag.add_column(col, justify="right")
    for r in rows:
        c, w = r["cpu_seconds"], r["cpu_seconds"]["wall"]
        lag = r["load_generator_loop_lag_ms"]
        diag.add_row(str(r["workers"]), *(f"{r['stage_p95_ms'].get(s, 0):.1f}" for s in stages),
                     "/".join(map(str, r["connections_per_worker"])), f"{lag.get('p99', 0):.0f}/{lag.get('max', 0):.0f} ms",
                     f"{c['stub'] / w:.2f} cores", f"{c['load_generator'] / w:.2f} cores", f"{r['other_processes_cores']:.2f} cores")
    console.print(diag)
    for r in rows:
        verdict = "[green]PASS[/]" if r["pass"] else "[red]FAIL[/]"
        console.print(f"{verdict} {r['workers']} worker{'s' if r['workers'] > 1 else ''}: {r['errors']} errors"
                      f"{' ' + str(r['errors_by_kind']) if r['errors_by_kind'] else ''}, p95 {r['p95_ms']:.0f} ms vs target <= "
                      f"{args.latency * 1000 + TARGET_P95_MARGIN_MS:.0f} ms (stub latency + {TARGET_P95_MARGIN_MS:.0f} ms)"
                      + (f"; warm-up errors {r['warmup_errors_by_kind']}" if r["warmup_errors_by_kind"] else "")
                      + (f"; answers without model drafts {r['degraded_answers']}" if r["degraded_answers"] else ""))
        if r["other_processes_cores"] > 0.2:
            console.print(f"[yellow]warning:[/] other processes used {r['other_processes_cores']:.2f} cores during the "
                          f"{r['workers']}-worker run; its numbers are disturbed")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=DEFAULT_LATENCY,
                    help=f"stub LLM latency in seconds (default {DEFAULT_LATENCY:g}: see the docstring)")
    ap.add_argument("--clients", type=int, default=256, help="concurrent clients, each a closed loop")
    ap.add_argument("--duration", type=float, default=60.0, help="measured seconds per worker count")
    ap.add_argument("--warmup", type=float, default=None,
                    help="unmeasured seconds before each window, the ramp-up included (default: ramp + one stub "
                         "latency + 5 s, at least 15)")
    ap.add_argument("--workers", default="1,2,4", help="comma-separated uvicorn worker counts, run in turn")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="per-request client timeout in seconds (above tactful's 45 s suggest deadline, so a slow "
                         "answer shows as a holding reply, not as a client timeout)")
    ap.add_argument("--ramp", type=float, default=None,
                    help="seconds over which the clients' first requests are spread (default: one stub latency; 0: all at once)")
    ap.add_argument("--factory", default="benchmarks._support:create",
                    help="the app factory uvicorn runs (module:function), to measure a variant of tactful")
    ap.add_argument("--out", type=Path, default=None,
                    help=f"where the JSON goes (default {RESULTS.relative_to(ROOT)}, or load_L<ms>ms.json at another --latency)")
    ap.add_argument("--quiet-cores", type=float, default=0.3,
                    help="before each worker count, wait until other processes use fewer cores than this")
    ap.add_argument("--quiet-wait", type=float, default=90.0, help="... but at most this many seconds")
    ap.add_argument("--nice-tactful", type=int, default=-5, help="nice value of tactful's processes (root only)")
    ap.add_argument("--nice-remote", type=int, default=-10,
                    help="nice value of the load generator and the stub, which stand in for other machines")
    ap.add_argument("--nice-session", type=int, default=-10,
                    help="autogroup nice of this session (all of the above) against other sessions on the machine")
    ap.add_argument("--no-renice", action="store_true", help="run everything at the default priority")
    args = ap.parse_args()
    args.workers = [int(w) for w in str(args.workers).split(",") if w.strip()]
    args.ramp = args.latency if args.ramp is None else args.ramp
    args.warmup = max(15.0, args.ramp + args.latency + 5) if args.warmup is None else args.warmup
    args.out = args.out or (RESULTS if args.latency == DEFAULT_LATENCY
                            else RESULTS.with_name(f"{RESULTS.stem}_L{args.latency * 1000:.0f}ms.json"))
    if args.warmup < args.ramp + args.latency:
        console.print(f"[yellow]warning:[/] --warmup {args.warmup:g} s is shorter than the ramp-up plus one stub "
                      "latency; the window may start before every client is in its loop")

    try:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # what uvicorn itself runs on; less CPU per request
    except ImportError:
        pass

    restore_session = None
    if not args.no_renice:
        # The stub and the load generator stand in for other machines: they get the CPU the moment they
        # need it (a few % of a core), so their timing is exact; tactful comes next. With the kernel's
        # autogroup scheduling (sched_autogroup_enabled=1) nice values only rank processes of one session;
        # against other sessions (someone's test run) the session's own weight counts, so it is raised for
        # the run and put back after. Without root the values stay at 0 and the run says so.
        try:
            os.setpriority(os.PRIO_PROCESS, 0, args.nice_remote)  # the stub, spawned below, inherits it
            restore_session = set_session_nice(args.nice_session)
        except OSError:
            console.print("[yellow]warning:[/] cannot raise priorities (not root); other load on the machine "
                          "will show in the numbers")
            args.no_renice = True
    code_at_start = git_state()
    fake_port = free_port()
    fake = mp.get_context("spawn").Process(target=run_fake_llm, args=(fake_port, args.latency), daemon=True)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="tactful-load-") as tmp:
        tactful = None
        log = Path(tmp) / "tactful.log"
        try:
            _, env = stage(Path(tmp), fake, fake_port)
            for workers in args.workers:
                port = free_port()
                offset = len(log.read_text()) if log.exists() else 0
                quiet = wait_for_quiet([os.getpid()], args.quiet_cores, args.quiet_wait)
                tactful = start_tactful(workers, port, env, log, None if args.no_renice else args.nice_tactful, args.factory)
                wait_for_workers(tactful, log, offset, workers)
                console.print(f"{workers} worker{'s' if workers > 1 else ''} up (pid {tactful.pid}); "
                              f"{args.clients} clients, {args.warmup:g} s warm-up + {args.duration:g} s measured ...")
                run = Run(workers, args)
                asyncio.run(run.drive(f"http://127.0.0.1:{port}/v1/suggest", tactful.pid, fake.pid, port))
                stop_process(tactful)
                problems = [line for line in log.read_text()[offset:].splitlines()
                            if "Traceback" in line or "ERROR" in line or "died" in line]
                row = run.summary()
                row["other_processes_cores_before"] = round(quiet, 2)
                row["server_log_errors"] = len(problems)
                if problems:
                    console.print(f"[yellow]warning:[/] tactful logged {len(problems)} error lines, first: {problems[0]}")
                rows.append(row)
                console.print(f"  {row['req_per_s']:.1f} req/s, p95 {row['p95_ms']:.0f} ms, {row['errors']} errors")
        finally:
            stop_process(tactful)
            if fake.is_alive():
                fake.terminate()
                fake.join(timeout=10)
            if restore_session:
                restore_session()

    base = next((r["req_per_s"] for r in rows if r["workers"] == 1), None)
    for r in rows:
        r["throughput_vs_1_worker"] = round(r["req_per_s"] / base, 3) if base else None
    report(rows, args)
    params = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    result = {"target": {"errors": 0, "p95_ms_max": args.latency * 1000 + TARGET_P95_MARGIN_MS},
              "pass": bool(rows) and all(r["pass"] for r in rows),
              "machine": {"cores": os.cpu_count(), "cpu": _cpu_model(), "python": platform.python_version()},
              "code": {"at_start": code_at_start, "at_end": git_state()}, "params": params, "results": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    console.print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


def _cpu_model() -> str | None:
    try:
        return next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name"))
    except (OSError, StopIteration):
        return None


if __name__ == "__main__":
    main()
