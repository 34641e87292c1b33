"""Smoke tests: every script in scripts/ and every data/make_*.py runs a tiny job into a temporary folder.

These check that the commands the README and the docstrings give still work end to end (arguments,
imports of the installed package, files written); what the scripts compute is tested in the module tests.
Nothing here writes into the repository.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import diffusion as dif
from helpers.data import read_manifest, sha256_of
from tests.conftest import ROOT

SCRIPTS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "scripts").glob("*.py"))
DATA_SCRIPTS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "data").glob("make_*.py"))


def run(script: str, *args: str, cwd: Path, timeout: float = 600, ok: tuple[int, ...] = (0,)) -> str:
    """Run `python script args` from `cwd` (not the repository: the package must come from the install).

    `ok`: the exit codes that count as a run (a benchmark exits 1 when it misses its goal)."""
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"), MPLBACKEND="Agg")
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / script), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode in ok, (
        f"{script} {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


@pytest.mark.parametrize("script", SCRIPTS + DATA_SCRIPTS)
def test_every_script_says_how_to_use_it(script, tmp_path):
    out = run(script, "--help", cwd=tmp_path)
    assert "usage:" in out


def test_scripts_import_the_installed_package_without_path_edits():
    for script in SCRIPTS + DATA_SCRIPTS:
        assert "sys.path" not in (ROOT / script).read_text(encoding="utf-8"), script


def test_the_tests_cover_every_script():
    tested = {"scripts/train_gpt.py", "scripts/bench_pretrain.py", "scripts/bench_generate.py"}
    tested |= {"scripts/bench_tokenizer.py", "scripts/bench_notebooks.py", "scripts/execute.py"}
    tested |= {"scripts/ablate_blocks.py"}  # its tiny run is in test_gpt.py (it trains the book's GPT)
    tested |= {"scripts/compare_ssm.py"}  # its tiny run is in test_ssm.py
    tested |= {"data/make_shapes.py", "data/make_corpus.py", "data/make_lora_sweep.py", "data/make_fsdd.py"}
    tested |= {"data/make_docs_corpus.py", "data/make_denoiser.py"}
    tested |= {"scripts/scaling_sweep.py"}  # its tiny run (--quick) is in test_cost.py
    assert set(SCRIPTS + DATA_SCRIPTS) <= tested, "a new script needs a smoke test here"
    # data/make_fsdd.py needs a folder of recordings: its smoke test (on generated WAVs) is in test_audio.py
    if (ROOT / "data" / "make_fsdd.py").exists():
        assert "make_fsdd" in (ROOT / "tests" / "test_audio.py").read_text(encoding="utf-8")


def test_train_gpt_runs_resumes_and_writes_the_shipped_files(tmp_path):
    common = ["--save-every", "2", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")]
    out = run("scripts/train_gpt.py", "--recipe", "char", "--steps", "4", *common, cwd=tmp_path)
    assert "done: 4 steps" in out
    info = json.loads((tmp_path / "out" / "gpt_char_python_docs.json").read_text())
    assert info["steps"] == 4 and info["command"].endswith("--recipe char --steps 4")
    assert (tmp_path / "out" / "gpt_char_python_docs.safetensors").stat().st_size > 1e6
    assert read_manifest()["gpt_char_python_docs.json"] != sha256_of(
        tmp_path / "out" / "gpt_char_python_docs.json"
    )
    # interrupted at step 2 (a resumable checkpoint), then carried on: the same weights as straight through
    run("scripts/train_gpt.py", "--recipe", "char", "--steps", "2", *common, "--fresh", cwd=tmp_path)
    assert not (tmp_path / "work" / "resume_gpt_char_python_docs.safetensors").exists()  # a finished run


def test_train_gpt_bpe_recipe_trains_its_tokenizer_and_stores_bf16(tmp_path):
    out_dir = tmp_path / "out"
    args = ("--steps", "2", "--max-chars", "60000", "--work", str(tmp_path / "work"), "--out", str(out_dir))
    out = run("scripts/train_gpt.py", *args, cwd=tmp_path)
    assert "done: 2 steps" in out and "bits per byte" in out
    info = json.loads((out_dir / "gpt_bpe_python_docs.json").read_text())
    assert info["recipe"] == "bpe" and info["config"]["position"] == "rope" and info["dtype"] == "bfloat16"
    assert set(info["bits_per_byte"]) == {"val", "python_docs_val"}
    tokenizer = json.loads((out_dir / info["tokenizer"]).read_text())
    assert 1000 < len(tokenizer["merges"]) <= 4096 - 256  # 60,000 characters run out of pairs before 3,840
    header = json.loads(raw_header(out_dir / "gpt_bpe_python_docs.safetensors"))
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"BF16"}


def raw_header(path: Path) -> str:
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        return f.read(size).decode()


def test_bench_pretrain_on_a_small_text(tmp_path):
    text = tmp_path / "text.txt"
    text.write_text(("To be, or not to be, that is the question.\n" * 400), encoding="utf-8")
    args = ("--text", str(text), "--steps", "6", "--eval-iters", "2", "--ablate", "--quiet")
    out = run("scripts/bench_pretrain.py", *args, cwd=tmp_path, ok=(0, 1))  # 1: the last rung missed
    assert "time to validation loss <=" in out and "reference recipe" in out
    assert "+ modern block: RoPE, RMSNorm, SwiGLU" in out  # every rung of the ladder ran
    assert "216" not in out  # no figure from another machine


def test_bench_generate_a_few_tokens(tmp_path):
    # 4 tokens are too few for the cache to pay off: the goal line says "NOT met" and the exit code is 1
    out = run(
        "scripts/bench_generate.py",
        "--size",
        "shipped",
        "--new",
        "4",
        "--repeats",
        "1",
        cwd=tmp_path,
        ok=(0, 1),
    )
    assert "cache tok/s" in out and "greedy outputs identical with and without the cache" in out


def test_bench_generate_at_gpt2_size_a_few_tokens(tmp_path):
    args = ("--size", "124m", "--new", "3", "--repeats", "1", "--batches", "1,2")
    out = run("scripts/bench_generate.py", *args, cwd=tmp_path, ok=(0, 1))
    assert "static tok/s" in out and "greedy outputs identical in all three ways" in out


def test_bench_tokenizer_on_a_little_text(tmp_path):
    out = run(
        "scripts/bench_tokenizer.py",
        *("--chars", "3000", "--vocab", "280", "--naive-chars", "600", "--repeat", "1"),
        cwd=tmp_path,
    )
    assert "MB/s" in out or "s" in out


def tiny_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(6 * 7)")]
    nbformat.write(nb, path)
    return path


def test_execute_stores_outputs(tmp_path):
    path = tiny_notebook(tmp_path / "tiny.ipynb")
    run("scripts/execute.py", str(path), cwd=tmp_path)
    assert nbformat.read(path, as_version=4).cells[0].outputs[0]["text"] == "42\n"


def test_bench_notebooks_prints_a_table(tmp_path):
    path = tiny_notebook(tmp_path / "tiny.ipynb")
    out = run("scripts/bench_notebooks.py", str(path), cwd=tmp_path)
    assert "tiny.ipynb" in out and "peak MB" in out
    assert nbformat.read(path, as_version=4).cells[0].outputs == []  # benchmarks never write outputs back


def test_make_shapes_reproduces_the_shipped_file(tmp_path):
    run("data/make_shapes.py", "--out", str(tmp_path / "shapes.json"), cwd=tmp_path)
    assert sha256_of(tmp_path / "shapes.json") == read_manifest()["shapes.json"]


def test_make_corpus_writes_pythons_documentation(tmp_path):
    out = tmp_path / "python_docs.txt"
    run("data/make_corpus.py", "--out", str(out), cwd=tmp_path)
    text = out.read_text(encoding="utf-8")
    assert len(text) > 300_000 and "lambda" in text  # the exact bytes depend on the Python version
    if platform.python_version() == "3.11.7":  # the version the shipped file was made with
        assert sha256_of(out) == read_manifest()["python_docs.txt"]


def test_make_lora_sweep_trial_run(tmp_path):
    out = tmp_path / "sweep.json"
    run("data/make_lora_sweep.py", "--steps", "10", "--ranks", "1", "--out", str(out), cwd=tmp_path)
    sweep = json.loads(out.read_text(encoding="utf-8"))
    assert [r["r"] for r in sweep["runs"]] == [1] and sweep["full"]["steps"] == 10


RST = """\
:mod:`bisect` --- Array search
=================================

.. module:: bisect
   :synopsis: Searching.

.. index:: single: bisect

This module keeps a list in sorted order; see :func:`~bisect.insort` and ``key``.

.. function:: bisect_left(a, x)

   Locate the insertion point for *x* in *a*. For example::

      >>> bisect_left([1, 2], 2)
      1

   .. versionchanged:: 3.10
      Added the *key* parameter.
"""


def test_make_docs_corpus_converts_rst_and_holds_out_whole_documents(tmp_path):
    sources = tmp_path / "sources"
    (sources / "library").mkdir(parents=True)
    for k in range(40):  # forty documents: two are held out (5 % of the characters)
        (sources / "library" / f"m{k:02d}.rst.txt").write_text(
            RST.replace("bisect", f"mod{k}"), encoding="utf-8"
        )
    (sources / "whatsnew").mkdir()
    (sources / "whatsnew" / "changelog.rst.txt").write_text(
        "Changelog\n=========\n\n- fixed\n", encoding="utf-8"
    )
    run("data/make_docs_corpus.py", "--sources", str(sources), "--out", str(tmp_path), cwd=tmp_path)
    train = (tmp_path / "python_docs_311_train.txt").read_text(encoding="utf-8")
    val = (tmp_path / "python_docs_311_val.txt").read_text(encoding="utf-8")
    assert "mod0 --- Array search" in train + val  # the title stays, its underline goes
    assert "see insort and key." in train  # roles and literals lose their markup
    assert "mod0_left(a, x)\n" in train + val and "Changed in version 3.10:" in train
    assert "   Locate the insertion point for x in a. For example:\n" in train
    assert "      >>> mod0_left([1, 2], 2)\n      1" in train + val  # code as it is
    for gone in (".. ", ":func:", "``", "====", "synopsis", "single:", "Changelog"):
        assert gone not in train + val, gone
    held_out = {line for line in val.splitlines() if line.endswith("--- Array search")}
    assert len(held_out) == 2 and not held_out & set(train.splitlines())  # whole documents held out


def test_make_denoiser_writes_weights_that_load_into_the_chapters_model(tmp_path):
    out = run("data/make_denoiser.py", "--epochs", "1", "--out", str(tmp_path), cwd=tmp_path)
    assert "denoiser_digits.safetensors" in out
    names = ["denoiser_digits.json", "denoiser_digits.safetensors"]
    (tmp_path / "MANIFEST.sha256").write_text("".join(f"{sha256_of(tmp_path / n)}  {n}\n" for n in names))
    model = dif.Denoiser(hidden=dif.DENOISER_RECIPE["hidden"], blocks=dif.DENOISER_RECIPE["blocks"])
    history, recipe = dif.load_shipped_denoiser(model, data_dir=tmp_path)
    assert recipe == {**dif.DENOISER_RECIPE, "epochs": 1}
    assert len(history.step_loss) == 11 and len(history.epoch_metrics) == 1  # 1,347 digits in batches of 128
    run("data/make_denoiser.py", "--epochs", "0", cwd=tmp_path, ok=(2,))  # refused with a usage error
