"""Catalog facts: expert sizes from the dimensions, names, MoE-only layers, the ``models`` command."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from slimcaching.cli import main
from slimcaching.errors import InputError
from slimcaching.instances.catalog import MIB, get_architecture, load_catalog, model_names
from slimcaching.instances.suites import model_instance

CATALOG = load_catalog()


@pytest.mark.parametrize("arch", CATALOG, ids=lambda a: a.name)
def test_expert_bytes_from_dimensions_equal_catalog(arch):
    factor = 3 if arch.gated else 2
    params = factor * arch.d_model * arch.expert_intermediate
    assert params == arch.catalog_expert_params == arch.expert_params
    assert params * 2 / MIB == pytest.approx(arch.catalog_expert_mib_bf16, rel=0, abs=1e-9)
    assert arch.expert_bytes(16) == 2 * params
    assert arch.expert_bytes(8) == params
    assert arch.expert_bytes(4) == params / 2
    assert arch.expert_flops == 2 * params
    assert arch.hidden_bytes == 2 * arch.d_model


@pytest.mark.parametrize("arch", CATALOG, ids=lambda a: a.name)
def test_catalog_rows_are_consistent(arch):
    assert 1 <= arch.moe_layers <= arch.layers
    assert 1 <= arch.top_k <= arch.routed_experts
    assert arch.hf_config.endswith("config.json")


def test_catalog_file_is_the_shared_source_with_its_source_column():
    path = Path(__file__).resolve().parents[1] / "slimcaching" / "instances" / "data" / "moe_architectures.csv"
    rows = list(csv.DictReader(path.read_text().splitlines()))
    assert [r["model"] for r in rows] == model_names()
    assert all(r["hf_config"] for r in rows)


def test_dense_and_interleaved_layers_are_not_instance_layers():
    v3 = get_architecture("DeepSeek-V3")
    assert (v3.layers, v3.moe_layers) == (61, 58)            # first_k_dense_replace = 3
    sw = get_architecture("switch-base-8")
    assert (sw.layers, sw.moe_layers) == (24, 12)            # sparse every second layer
    inst = model_instance("switch-base-8", nodes=2, users=2, seed=0, tokens=64)
    assert inst.L == 12 and inst.max_experts == 8 and inst.max_top_k == 1
    lite = model_instance("deepseek-v2-lite", nodes=1, users=1, seed=0, tokens=32)
    assert lite.L == 26 and lite.max_experts == 64 and lite.max_top_k == 6


@pytest.mark.parametrize("name,expected", [("mixtral-8x7b", "Mixtral-8x7B"), ("MIXTRAL-8X22B", "Mixtral-8x22B"),
                                           ("olmoe", "OLMoE-1B-7B"), ("qwen1.5", "Qwen1.5-MoE-A2.7B"),
                                           (" deepseek-v3 ", "DeepSeek-V3")])
def test_names_are_case_insensitive_and_unique_prefixes_work(name, expected):
    assert get_architecture(name).name == expected


def test_unknown_and_ambiguous_names():
    with pytest.raises(InputError, match=r"--model: unknown model 'gpt-5'; valid: Mixtral-8x7B, "):
        get_architecture("gpt-5")
    with pytest.raises(InputError, match=r"ambiguous model 'mixtral'; valid: Mixtral-8x7B, Mixtral-8x22B$"):
        get_architecture("mixtral")


def test_truncation_keeps_shapes_and_names_what_was_kept():
    a = get_architecture("Mixtral-8x7B").truncated(2, 4, 1)
    assert (a.moe_layers, a.routed_experts, a.top_k) == (2, 4, 1)
    assert a.expert_params == get_architecture("Mixtral-8x7B").expert_params
    assert a.name == "Mixtral-8x7B[L=2,E=4,K=1]"
    with pytest.raises(InputError, match=r"--model: cannot truncate Mixtral-8x7B to L=40, E=8, K=2: it has 32 MoE "
                                         r"layers of 8 experts, top-2, and K can only be lowered \(K <= E\)"):
        get_architecture("Mixtral-8x7B").truncated(40)
    with pytest.raises(InputError, match=r"cannot truncate Mixtral-8x7B to L=32, E=8, K=4"):
        get_architecture("Mixtral-8x7B").truncated(top_k=4)
    assert get_architecture("OLMoE-1B-7B").truncated(experts=4).top_k == 4


def test_models_command_lists_every_model(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in model_names():
        assert name in out
    assert "336.0" in out                                   # Mixtral-8x7B bf16 MiB


def test_generate_accepts_case_insensitive_model_names(tmp_path, capsys):
    out = tmp_path / "m.json"
    assert main(["generate", "--model", "MIXTRAL-8x7b", "--layers", "2", "--nodes", "2", "--users", "2",
                 "--seed", "3", "-o", str(out)]) == 0
    from slimcaching.instances.io import read_instance

    inst = read_instance(out)
    assert inst.metadata["params"]["model"] == "Mixtral-8x7B"
    assert inst.metadata["architecture"]["source"] == "mistralai/Mixtral-8x7B-v0.1 config.json"
    assert list(inst.expert_size) == [336, 336]
    assert main(["generate", "--model", "nope"]) == 2
    assert capsys.readouterr().err.strip().startswith("--model: unknown model 'nope'")
    assert main(["generate", "--model", "mixtral-8x7b", "--layers", "33"]) == 2
    assert capsys.readouterr().err.strip().startswith("--model: cannot truncate Mixtral-8x7B to L=33")
