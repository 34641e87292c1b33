"""Run every notebook from a fresh kernel and print a table: seconds, CPU seconds and peak memory.

    python scripts/bench_notebooks.py --readme         # all notebooks, and write README.md's table
    python scripts/bench_notebooks.py notebooks/22_*.ipynb --readme   # re-measure some; keep the other rows
                                                       # (only if they were measured on this kind of machine)

Budget per notebook on a 2-core CPU: about 60 s, never over 180 s, and under 2 GB. The notebooks are
run from copies in memory; nothing on disk changes (except README.md with --readme).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import sys
import threading
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
BUDGET_S, CEILING_S, MEMORY_MB = 60, 180, 2048
THREADS = 2  # the notebooks' default (helpers.runtime.DEFAULT_THREADS): 60 s of wall time is 120 of CPU
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def peak_rss_mb(pid: int) -> float | None:
    """The kernel's own high-water mark of resident memory (Linux), in MB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else None


class Sampler(threading.Thread):
    """Fallback for systems without /proc: poll the kernel's resident memory ten times a second."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.process, self.peak, self.done = psutil.Process(pid), 0.0, threading.Event()

    def run(self):
        while not self.done.wait(0.1):
            try:
                rss = self.process.memory_info().rss + sum(
                    c.memory_info().rss for c in self.process.children(recursive=True)
                )
            except psutil.Error:
                return
            self.peak = max(self.peak, rss / 2**20)


def run_notebook(path: Path, timeout: int = 600) -> tuple[float, float, float]:
    """(seconds to run every cell, the kernel's CPU seconds, its peak memory in MB), in a fresh kernel.

    On a machine shared with other work the wall time grows while the CPU time hardly moves, so the table
    shows both."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    with client.setup_kernel():
        pid = client.km.provisioner.pid
        kernel = psutil.Process(pid)
        cpu_before = sum(kernel.cpu_times()[:2])
        sampler = Sampler(pid)
        sampler.start()
        start = time.perf_counter()
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        seconds = time.perf_counter() - start
        cpu = sum(kernel.cpu_times()[:2]) - cpu_before  # user + system
        sampler.done.set()
        peak = peak_rss_mb(pid) or sampler.peak
    return seconds, cpu, peak


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args(argv)
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    rows, over = {}, []
    print(f"{'notebook':40s} {'seconds':>8s} {'CPU s':>8s} {'peak MB':>8s} {'load':>5s}", flush=True)
    for path in paths:
        load = os.getloadavg()[0]
        seconds, cpu, peak = run_notebook(path.resolve())
        verdict = "ok" if seconds <= BUDGET_S and peak <= MEMORY_MB else "over budget"
        busy = load > (os.cpu_count() or 1)
        if verdict != "ok" and busy and cpu <= BUDGET_S * THREADS and peak <= MEMORY_MB:
            verdict = "busy machine; ok by CPU time"  # wall time was stretched by other work
        elif seconds > CEILING_S or peak > MEMORY_MB:
            over.append(path.name)
        rows[path.name] = (
            f"| {path.name} | {seconds:.1f} | {cpu:.1f} | {peak:.0f} | {load:.1f} | {datetime.date.today()} "
            f"| {verdict} |"
        )
        print(f"{path.name:40s} {seconds:8.1f} {cpu:8.1f} {peak:8.0f} {load:5.1f}  {verdict}", flush=True)
    if args.readme:
        readme = ROOT / "README.md"
        text = readme.read_text()
        if START not in text or END not in text:
            print(f"README.md has no {START} ... {END} markers", file=sys.stderr)
            return 2
        head, rest = text.split(START, 1)
        old, tail = rest.split(END, 1)
        kept = {}
        same_machine = f"on {machine()}." in old
        if args.notebooks and same_machine:  # a partial run keeps the other rows of this kind of machine
            kept = {m.group(1): m.group(0) for m in re.finditer(r"^\| (\d\d_\w+\.ipynb) \|.*\|$", old, re.M)}
            kept = {name: row for name, row in kept.items() if row.count("|") == 8}  # rows in this format
        elif args.notebooks:
            print(
                "README.md's table was measured on another machine: only these rows are kept", file=sys.stderr
            )
        table = "\n".join(
            [
                f"Measured on {machine()}. Load average: the 1-minute figure when the notebook started "
                "(above the core count, other work was slowing it: compare its CPU seconds instead).",
                "",
                "| notebook | seconds | CPU seconds | peak memory (MB) | load | measured "
                "| budget (60 s, 2 GB) |",
                "|---|---:|---:|---:|---:|---|---|",
                *(row for _, row in sorted({**kept, **rows}.items())),
            ]
        )
        readme.write_text(f"{head}{START}\n{table}\n{END}{tail}")
        print("README.md updated")
    if over:
        print(f"over the 180 s ceiling or 2 GB: {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
