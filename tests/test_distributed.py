"""Oracle tests for helpers.distributed: the hand-made collectives and parallel training against torch's.

Every multi-process test starts its processes through `launch`, which joins or kills them; the tests
check that no child is left behind. The processes use 127.0.0.1 and ports the system picks.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest
import torch
import torch.distributed as dist
from safetensors.torch import load_file

from helpers import distributed as D
from tests.conftest import ROOT


def rank_one_gives_up(rank: int, world_size: int) -> None:
    """A worker for the clean-up test: rank 1 fails while rank 0 waits for it forever in a barrier."""
    if rank == 1:
        raise ValueError("rank 1 gives up")
    dist.barrier()


def training_and_sharding(rank: int, world_size: int, batches: list, lr: float, shard_batches: list) -> tuple:
    """A worker for one process group that serves two tests (starting processes is the slow part)."""
    return (
        D.data_parallel_experiment(rank, world_size, batches, lr, 0, 2),
        D.sharding_experiment(rank, world_size, shard_batches),
    )


@pytest.fixture(scope="module")
def two_ranks():
    batches, shard_batches = D.digit_batches(12, 32), D.digit_batches(3, 64)
    results = D.launch(training_and_sharding, 2, batches, 0.1, shard_batches)
    return batches, [r[0] for r in results], [r[1] for r in results]


@pytest.fixture(autouse=True)
def no_children_left():
    yield
    assert D.children_alive() == [], "a test left processes running"


@pytest.mark.parametrize("n", [3])
def test_ring_all_reduce_equals_dist_all_reduce(n):
    results = D.launch(D.all_reduce_experiment, n, [], 1, 0, (1, 2, 5, 64, 1003))
    for r in results:
        assert r["max_diff"] <= 1e-5 * r["scale"]


def test_data_parallel_by_hand_equals_ddp_one_process_and_accumulation(two_ranks):
    batches, ranks, _ = two_ranks
    whole = D.train_one_process(batches, 0.1)
    accumulated = D.train_one_process(batches, 0.1, micro_batches=4)
    start = D.make_model().state_dict()
    for name, w in whole.items():
        assert not torch.allclose(w, start[name])  # it trained
        for r in ranks:
            torch.testing.assert_close(r["scratch"][name], w, atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(r["ddp"][name], w, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(accumulated[name], w, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ranks[0]["ddp"][name], ranks[1]["ddp"][name], atol=0, rtol=0)
    whole_gpt = D.tiny_gpt_run(steps=2)
    for name, w in whole_gpt.items():  # BatchShard through helpers.pretrain.train, as train_gpt.py uses it
        torch.testing.assert_close(ranks[0]["gpt"][name], w, atol=1e-5, rtol=1e-5)


def test_sharding_zero_fsdp_and_tensor_parallel(two_ranks):
    ranks = two_ranks[2]
    adam = ranks[0]["adam_bytes"]
    assert adam == 2 * ranks[0]["param_bytes"]  # Adam keeps two moments per parameter
    assert sum(r["zero_bytes"] for r in ranks) == adam  # ZeRO-1 shares the state out, nothing lost
    assert max(r["zero_bytes"] for r in ranks) < 0.6 * adam
    for r in ranks:
        assert r["zero_diff"] < 1e-5 and r["fsdp_diff"] < 1e-5 and r["tp_diff"] < 1e-5
        assert r["fsdp_param_bytes"] == r["param_bytes"] // 2
        assert r["fsdp_state_bytes"] == adam // 2


def test_tensor_parallel_split_sums_to_the_unsplit_layer_in_one_process():
    from helpers.transformer import MLP

    torch.manual_seed(0)
    layer = MLP(12)
    x = torch.randn(3, 5, 12)  # (B, T, C)
    for n in (1, 2, 3, 48):
        parts = D.split_mlp(layer.c_fc.weight, layer.c_fc.bias, layer.c_proj.weight, n)
        y = sum(D.mlp_shard_forward(x, *p) for p in parts) + layer.c_proj.bias
        torch.testing.assert_close(y, layer(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="cannot split 48 hidden units over 49"):
        D.split_mlp(layer.c_fc.weight, layer.c_fc.bias, layer.c_proj.weight, 49)
    with pytest.raises(ValueError, match="need W1"):
        D.split_mlp(layer.c_fc.weight, layer.c_fc.bias, layer.c_fc.weight, 2)


def test_a_taken_port_gets_a_clear_message():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(D.PortInUseError, match=f"port {port} on 127.0.0.1 is already in use"):
            D.launch(D.all_reduce_experiment, 2, [], port=port)
    assert D.check_port(D.free_port()) > 0
    with pytest.raises(ValueError, match="port must be"):
        D.check_port(80)


def test_a_failing_rank_ends_every_process_quickly():
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="(?s)failed.*rank 1 of 2 failed:.*ValueError: rank 1 gives up"):
        D.launch(rank_one_gives_up, 2)
    assert time.monotonic() - start < 40  # rank 0, stuck in its barrier, was killed, not waited for


def test_launch_rejects_what_it_cannot_run():
    with pytest.raises(ValueError, match="world_size"):
        D.launch(D.all_reduce_experiment, 0)
    with pytest.raises(ValueError, match="cannot be sent to a spawned process"):
        D.launch(lambda rank, world_size: rank, 2)
    with pytest.raises(ValueError, match="cannot be cut into 2 equal shards"):
        D.shard(torch.zeros(5, 3), 0, 2)


def test_cost_model():
    c = D.ring_cost(8, 100e6, 10e9, 0.0)
    assert c["ring_bytes"] == pytest.approx(175e6) and c["naive_bytes"] == pytest.approx(700e6)
    assert c["ring_seconds"] == pytest.approx(175e6 / 10e9)
    assert D.ring_cost(1, 1e6, 1e9, 1e-3)["ring_seconds"] == 0.0
    big = D.ring_cost(64, 1e9, 1e9, 0.0)["ring_seconds"]
    assert big < 2.0 and big > 1.9  # bandwidth term tends to 2 x bytes / bandwidth, whatever n
    for bad in [dict(n=0), dict(bandwidth=0.0), dict(nbytes=-1.0)]:
        with pytest.raises(ValueError):
            D.ring_cost(**{**dict(n=2, nbytes=1.0, bandwidth=1.0, latency=0.0), **bad})
    bw, lat = D.fit_cost_model(2, [1e3, 1e8], [2e-4, 0.1 + 2e-4])
    assert lat == pytest.approx(1e-4) and bw == pytest.approx(1e9)
    table = D.bytes_per_rank_table(1000, 4)
    assert table["DDP"] == 16000 and table["FSDP / ZeRO-3 (+ weights)"] == 4000


def test_train_gpt_under_torchrun_matches_one_process(tmp_path):
    """scripts/train_gpt.py with 2 CPU processes under torchrun ends where one process ends."""
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    env.pop("PYTHONPATH", None)
    script = str(ROOT / "scripts" / "train_gpt.py")
    common = ["--recipe", "char", "--steps", "2", "--threads", "1", "--save-every", "100"]  # the small model
    runs = {
        "one": [sys.executable, script],
        "two": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
        + ["--master_addr=127.0.0.1", f"--master_port={D.free_port()}", script],
    }
    procs = {}
    try:
        for name, cmd in runs.items():
            args = [*common, "--work", str(tmp_path / name / "work"), "--out", str(tmp_path / name)]
            procs[name] = subprocess.Popen(
                cmd + args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        outs = {name: p.communicate(timeout=300)[0] for name, p in procs.items()}
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    for name, p in procs.items():
        assert p.returncode == 0, outs[name][-3000:]
    assert "data parallel over 2 processes: 4 windows each" in outs["two"]
    info = {n: json.loads((tmp_path / n / "gpt_char_python_docs.json").read_text()) for n in runs}
    assert info["two"]["val_loss"] == pytest.approx(info["one"]["val_loss"], abs=1e-4)
    w = {n: load_file(tmp_path / n / "gpt_char_python_docs.safetensors") for n in runs}
    assert w["one"].keys() == w["two"].keys()
    for k in w["one"]:  # AdamW divides by each gradient's own size: rounding shows up to ~1e-5 here
        torch.testing.assert_close(w["two"][k], w["one"][k], atol=2e-4, rtol=0)


# --- chapter 29's sliders, moved headless ---------------------------------------------------------------


def test_cost_and_memory_sliders_redraw_with_the_numbers_they_show():
    import matplotlib.pyplot as plt
    import numpy as np

    from helpers import slider_view

    def draw_cost(ranks, megabytes):
        ns = np.arange(2, 65)
        plt.plot(ns, [D.ring_cost(int(k), megabytes * 1e6, 1e9, 5e-5)["ring_seconds"] for k in ns])
        plt.plot([ranks], [D.ring_cost(ranks, megabytes * 1e6, 1e9, 5e-5)["ring_seconds"]], "ko")

    view = slider_view(draw_cost, ranks=(2, 64, 1, 8), megabytes=(1.0, 1000.0, 1.0, 100.0))
    before = view.image
    view.set(ranks=32)
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    # more ranks: more latency steps, but the bytes per rank barely move (7/4 -> 31/16 of N)
    small, large = D.ring_cost(8, 1e8, 1e9, 5e-5), D.ring_cost(32, 1e8, 1e9, 5e-5)
    assert large["ring_bytes"] / small["ring_bytes"] == pytest.approx((31 / 16) / (7 / 4))
    assert large["naive_bytes"] / small["naive_bytes"] == pytest.approx(31 / 7)

    def draw_memory(ranks):
        plt.barh(*zip(*D.bytes_per_rank_table(10**9, ranks).items(), strict=True))

    view = slider_view(draw_memory, ranks=(1, 64, 1, 8))
    before = view.image
    view.set(ranks=1)
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    assert len(set(D.bytes_per_rank_table(10**9, 1).values())) == 1  # one rank: sharding saves nothing
