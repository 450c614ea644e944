"""Shared by the benchmarks: the `uvicorn --factory` entry point and the acme ingest."""

from __future__ import annotations

import os
from pathlib import Path

from api.app import create_app
from api.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def create():
    """tactful configured only by the TACTFUL_* variables the benchmark sets for the child
    process; `.env` is ignored so a developer's local settings cannot change what is measured."""
    return create_app(Settings(auth="open", _env_file=None))


def ingest_acme(data_dir: Path) -> None:
    """Load the sample brand; idempotent, so reusing a data dir costs a second or two."""
    from knowledge.ingest import ingest
    from knowledge.store import KnowledgeStore
    from prompts.tokens import seed_tiktoken_cache

    seed_tiktoken_cache(data_dir / "tiktoken")
    settings = Settings(data_dir=data_dir, llm_base_url="http://127.0.0.1:9/v1", auth="open", _env_file=None)
    report = ingest(KnowledgeStore(settings), "acme", ROOT / "knowledge" / "brands" / "acme")
    if report.problems:
        raise SystemExit(f"ingest failed: {report.problems}")


# -- process tree measurements from Linux /proc (used by benchmarks/load.py) ----------------------

def _proc_stat(pid: int) -> list[str]:
    """Fields of /proc/<pid>/stat after the command name (field 3, the state, is index 0)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_tree(pid: int) -> list[int]:
    """`pid` and all its live descendants (a uvicorn master, its workers and their helpers)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(_proc_stat(int(entry.name))[1]), []).append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue  # exited while we looked
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def tree_cpu_seconds(pids: list[int]) -> float:
    """User+system CPU seconds of these processes (those still alive)."""
    ticks = 0
    for p in pids:
        try:
            f = _proc_stat(p)
            ticks += int(f[11]) + int(f[12])
        except (OSError, ValueError, IndexError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_rss_bytes(pids: list[int]) -> int:
    """Sum of VmRSS over these processes. Pages the workers share (the interpreter, libraries)
    count once per process, so this is an upper bound on the memory they take together."""
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
                    break
        except (OSError, ValueError, IndexError):
            continue
    return total


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    tick = os.sysconf("SC_CLK_TCK")
    return (total - idle) / tick, total / tick


def connections_by_pid(port: int, pids: list[int]) -> dict[int, int]:
    """Established TCP connections each of `pids` holds on local `port` (which uvicorn worker
    accepted how many client connections)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "01" and int(f[1].rsplit(":", 1)[1], 16) == port:  # 01 = ESTABLISHED
                inodes.add(f[9])
    counts: dict[int, int] = {}
    for p in pids:
        n = 0
        try:
            for fd in os.listdir(f"/proc/{p}/fd"):
                try:
                    link = os.readlink(f"/proc/{p}/fd/{fd}")
                except OSError:
                    continue
                n += link.startswith("socket:[") and link[8:-1] in inodes
        except OSError:
            continue
        if n:
            counts[p] = n
    return counts
