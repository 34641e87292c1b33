"""Re-execute notebooks in place, top to bottom, each in a fresh kernel, and store their outputs.

    python scripts/execute.py notebooks/01_linear_maps.ipynb [more.ipynb ...]

This is the only way outputs should get into the repository: never edit them by hand. The kernel runs
in notebooks/ (as JupyterLab would), with BOOK_THREADS and BOOK_DEVICE passed through.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def execute(path: Path, timeout: int = 180) -> float:
    """Run the notebook at `path` from a fresh kernel and write it back with outputs; returns seconds."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(ROOT / "notebooks")}},
    )
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    nbformat.write(nb, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=180, help="seconds allowed per cell")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        print(f"{path}: {execute(path, args.timeout):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
