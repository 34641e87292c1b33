"""helpers.cost against the real thing: parameter counts against the model, FLOPs against
torch.utils.flop_counter.FlopCounterMode, bytes against the tensors and the profiler, energy arithmetic,
the RAPL reader on fake folders; and the scaling sweep script's smoke run."""

import json
import os
import subprocess
import sys
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from helpers import slider_view
from helpers.cost import (
    PUBLISHED,
    EnergyReading,
    activation_floats_per_token,
    energy_between,
    flops_per_token,
    flops_shares,
    forward_flops,
    grams_co2,
    joules,
    kwh,
    memory_bytes,
    non_embedding_parameters,
    parameter_counts,
    peak_matmul_flops,
    read_energy_counter,
    retained_bytes,
    run_costs,
    shipped_training_seconds,
    state_bytes,
    training_flops,
)
from helpers.gpt import GPT, GPTConfig
from helpers.pretrain import TrainConfig, make_adamw, use_fused_layernorm
from tests.conftest import ROOT

warnings.filterwarnings("ignore", message=".*[Pp]rofiler.*")
warnings.filterwarnings("ignore", message=".*non-interactive.*")

CONFIGS = [
    {},
    {"bias": True},
    {"mlp": "swiglu"},
    {"n_kv_head": 2},
    {"position": "rope", "norm": "rmsnorm"},
    {"tie_embeddings": False, "mlp_hidden": 40},
    {"bias": False, "qkv_bias": True, "mlp": "swiglu", "n_kv_head": 1, "position": "rope", "norm": "rmsnorm"},
]


def small(**change) -> GPTConfig:
    return GPTConfig(
        **{"vocab_size": 37, "block_size": 24, "n_layer": 2, "n_head": 4, "n_embd": 32, **change}
    )


@pytest.mark.parametrize("change", CONFIGS, ids=str)
def test_parameter_counts_add_up_to_the_models(change):
    config = small(**change)
    torch.manual_seed(0)
    model = GPT(config)
    assert sum(parameter_counts(config).values()) == model.num_parameters()
    assert non_embedding_parameters(config) == model.num_parameters(exclude_embeddings=True)


def counted(model, x, backward=False) -> int:
    with FlopCounterMode(display=False) as counter:
        _, loss = model(x, x)
        if backward:
            loss.backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("change", CONFIGS, ids=str)
def test_forward_and_training_flops_equal_flop_counter_mode(change):
    torch.manual_seed(0)
    # the book's from-scratch attention runs q @ k^T and p @ v as torch.matmul: FlopCounterMode sees them
    config = small(**change, fused_attention=False)
    model = GPT(config)
    batch, T = 3, 17
    x = torch.randint(0, config.vocab_size, (batch, T))
    by_hand = forward_flops(config, batch, T)
    assert counted(model, x) == sum(by_hand.values())
    assert counted(model, x, backward=True) == training_flops(config, batch, T)


def test_flop_counter_mode_does_not_count_fused_attention_on_the_cpu():
    torch.manual_seed(0)
    config = small()  # fused_attention=True: F.scaled_dot_product_attention
    model = GPT(config)
    x = torch.randint(0, config.vocab_size, (2, 24))
    parts = forward_flops(config, 2, 24)
    without_attention = sum(parts.values()) - parts["scores"] - parts["values"]
    assert counted(model, x) in (without_attention, sum(parts.values()))  # CPU kernel: not counted
    if not torch.cuda.is_available():
        assert counted(model, x) == without_attention


def test_two_n_rule_is_close_for_a_wide_model_and_off_for_a_tiny_one():
    wide = GPTConfig(vocab_size=50257, block_size=1024, n_layer=24, n_head=16, n_embd=2048)
    N = non_embedding_parameters(wide)
    per_token = sum(forward_flops(wide, 1, 1).values())  # at T = 1 attention is free
    # 2N plus the lm_head's 2 C V, which N leaves out
    assert per_token == pytest.approx(flops_per_token(N) + 2 * 2048 * 50257, rel=1e-3)
    assert flops_per_token(N, training=True) == 3 * flops_per_token(N)
    with pytest.raises(ValueError, match="n_parameters"):
        flops_per_token(-1)


@pytest.mark.parametrize(
    ("change", "fused"),
    [
        ({}, True),
        ({}, False),
        ({"mlp": "swiglu", "n_kv_head": 2}, True),
        ({"norm": "rmsnorm"}, False),
        ({"position": "rope"}, False),
        ({"position": "rope", "n_kv_head": 2, "mlp": "swiglu", "norm": "rmsnorm"}, False),
    ],
    ids=str,
)
def test_activation_bytes_match_the_profiler_within_five_percent(change, fused):
    torch.manual_seed(0)
    config = small(**change, block_size=64, bias=False)
    model = GPT(config)
    if fused:
        use_fused_layernorm(model)
    batch, T = 8, 64
    x = torch.randint(0, config.vocab_size, (batch, T))
    measured, loss = retained_bytes(lambda: model(x, x)[1])
    assert loss.requires_grad  # the graph (and its saved tensors) was alive when measured
    by_hand = memory_bytes(config, batch, T, fused_layernorm=fused)["activations"]
    assert by_hand == pytest.approx(measured, rel=0.05)


def test_fused_layernorm_keeps_fewer_activations():
    config = small()
    assert activation_floats_per_token(config, fused_layernorm=True) < activation_floats_per_token(config)


def test_parameter_gradient_and_adamw_bytes_match_the_tensors():
    torch.manual_seed(0)
    config = small(bias=True)
    model = GPT(config)
    optimizer = make_adamw(model, TrainConfig(max_steps=10, warmup_steps=1))
    x = torch.randint(0, config.vocab_size, (2, 8))
    model(x, x)[1].backward()
    optimizer.step()
    measured = state_bytes(model, optimizer)
    by_hand = memory_bytes(config, 2, 8)
    assert measured["parameters"] == by_hand["parameters"]
    assert measured["gradients"] == by_hand["gradients"]
    n_tensors = len(list(model.parameters()))  # AdamW also keeps one float32 step counter per tensor
    assert measured["optimizer"] in (by_hand["adamw"], by_hand["adamw"] + 4 * n_tensors)


def test_peak_matmul_flops_is_a_plausible_rate():
    rate = peak_matmul_flops(256, repeats=2)
    assert 1e7 < rate < 1e15
    with pytest.raises(ValueError, match="positive"):
        peak_matmul_flops(0)


def test_energy_and_carbon_arithmetic():
    assert joules(100.0, 36.0) == 3600.0
    assert kwh(3.6e6) == 1.0
    assert grams_co2(3.6e6, 400.0) == pytest.approx(400.0)
    with pytest.raises(ValueError, match="watts"):
        joules(-1.0, 1.0)
    with pytest.raises(ValueError, match="grid intensity"):
        grams_co2(1.0, -5.0)


def test_published_figures_agree_with_the_books_arithmetic():
    gpt3, chinchilla, _, bloom = PUBLISHED
    # 6 N D predicts GPT-3's stated compute to 1 %
    assert 6 * gpt3["parameters"] * gpt3["tokens"] == pytest.approx(gpt3["training_flops"], rel=0.01)
    # the stated energy at the stated grid intensity gives the stated tonnes
    for run in (gpt3, bloom):
        tonnes = grams_co2(run["energy_mwh"] * 3.6e9, run["grid_g_per_kwh"]) / 1e6
        assert tonnes == pytest.approx(run["tco2e"], rel=0.02)
    assert chinchilla["tokens"] / chinchilla["parameters"] == 20
    assert all("arXiv" in run["source"] for run in PUBLISHED)


def test_read_energy_counter_on_fake_powercap_folders(tmp_path):
    reading, why = read_energy_counter(tmp_path / "absent")
    assert reading is None and "does not exist" in why
    reading, why = read_energy_counter(tmp_path)
    assert reading is None and "no RAPL" in why
    zone = tmp_path / "intel-rapl:0"
    (tmp_path / "intel-rapl:0:0").mkdir(parents=True)  # a subzone (the cores): not the package
    zone.mkdir()
    (zone / "energy_uj").write_text("1000000\n")
    (zone / "max_energy_range_uj").write_text("5000000\n")
    before, why = read_energy_counter(tmp_path)
    assert why == "" and before == EnergyReading(1_000_000, str(zone), 5_000_000)
    (zone / "energy_uj").write_text("500000\n")  # wrapped around
    after, _ = read_energy_counter(tmp_path)
    assert energy_between(before, after) == pytest.approx(4.5)
    with pytest.raises(ValueError, match="different counters"):
        energy_between(before, EnergyReading(1, "elsewhere", 5))
    (zone / "energy_uj").write_text("garbage")
    reading, why = read_energy_counter(tmp_path)
    assert reading is None and "could not read" in why


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file: the permission error cannot happen")
def test_read_energy_counter_explains_a_root_only_counter(tmp_path):
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "energy_uj").write_text("1\n")
    (zone / "max_energy_range_uj").write_text("2\n")
    (zone / "energy_uj").chmod(0)
    reading, why = read_energy_counter(tmp_path)
    assert reading is None and "root only" in why


def test_bad_inputs_get_clear_errors():
    with pytest.raises(TypeError, match="GPTConfig"):
        parameter_counts({"n_embd": 4})
    with pytest.raises(ValueError, match="T must be"):
        forward_flops(small(), 1, 25)  # block_size is 24
    with pytest.raises(ValueError, match="batch"):
        memory_bytes(small(), 0, 4)


def test_scaling_sweep_quick_run(tmp_path):
    out = tmp_path / "sweep.json"
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "scaling_sweep.py"), "--quick", "--out", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    sweep = json.loads(out.read_text(encoding="utf-8"))
    assert len(sweep["runs"]) == 4 and sweep["made_by"].endswith("--quick")
    for run in sweep["runs"]:
        assert run["D"] == run["steps"] * 16 * 64 and run["N"] < run["params_total"]
        assert 0 < run["val_loss"] < 5 and run["seconds"] > 0
    assert sweep["machine"]["torch"] == torch.__version__


def test_flops_shares_sum_to_one_and_attention_grows_with_context():
    config = small(block_size=512)
    short, long = flops_shares(config, 8), flops_shares(config, 512)
    assert sum(short.values()) == pytest.approx(1.0) and sum(long.values()) == pytest.approx(1.0)
    assert long["scores"] > 10 * short["scores"]


def test_run_costs_scale_with_watts_and_grid():
    costs = run_costs({"a": 3600.0, "b": 1800.0}, watts=100.0, grid_g_per_kwh=500.0)
    assert costs["a"]["joules"] == 360_000.0 and costs["b"]["joules"] == 180_000.0
    assert costs["a"]["grams_co2"] == pytest.approx(50.0)  # 0.1 kWh x 500 g/kWh


def test_shipped_training_seconds_reads_every_shipped_run():
    seconds = shipped_training_seconds()
    assert any(name.startswith("shipped GPT") for name in seconds)
    assert sum(name.startswith("ch17 ablation") for name in seconds) >= 6
    assert all(s > 0 for s in seconds.values())


def test_sliders_headless_move_the_numbers_and_the_picture():
    config = small(block_size=1024)
    seen = {}

    def draw_shares(log2_T):
        shares = flops_shares(config, 2**log2_T)
        seen["attention"] = shares["scores"] + shares["values"]
        plt.barh(list(shares), list(shares.values()))

    view = slider_view(draw_shares, log2_T=(0, 10, 1, 3))
    before, attention_before = view.image, seen["attention"]
    view.set(log2_T=10)
    assert view.redraws == 2 and seen["attention"] > attention_before
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0

    def draw_costs(watts, grid_g_per_kwh):
        costs = run_costs({"run": 3600.0}, watts, grid_g_per_kwh)
        seen["grams"] = costs["run"]["grams_co2"]
        plt.bar(["run"], [costs["run"]["joules"]])
        plt.ylim(0, 3e6)

    view = slider_view(draw_costs, watts=(5.0, 700.0, 5.0, 30.0), grid_g_per_kwh=(0.0, 1000.0, 10.0, 400.0))
    assert seen["grams"] == pytest.approx(12.0)  # 30 W for an hour = 0.03 kWh, x 400 g/kWh
    before = view.image
    view.set(watts=60.0)
    assert seen["grams"] == pytest.approx(24.0)
    assert np.abs(view.image.astype(int) - before.astype(int)).sum() > 0
    view.set(grid_g_per_kwh=0.0)
    assert seen["grams"] == 0.0
