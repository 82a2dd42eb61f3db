"""Trace import: adapters onto the canonical table, round trip within sampling error, bad traces."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from slimcaching.cli import main
from slimcaching.errors import InputError
from slimcaching.instances.io import read_instance
from slimcaching.instances.suites import model_instance
from slimcaching.instances.traces import SAMPLE_TRACE, write_sample_trace
from slimcaching.instances.traces import (instance_from_trace, read_trace, sample_trace, trace_distributions,
                                          trace_from_frame, write_trace)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "instances" / "traces" / "sample-trace.csv"


@pytest.fixture(scope="module")
def source():
    return model_instance("Mixtral-8x7B", network="wifi-rtx", nodes=2, users=3, layers=3, seed=5, topics=2)


@pytest.fixture(scope="module")
def long_df(source):
    return sample_trace(source, 400, np.random.default_rng(2))


def _to_list(df: pd.DataFrame) -> pd.DataFrame:
    g = df.groupby(["user", "token", "layer"], sort=True)["expert"].agg(list).reset_index()
    return g.rename(columns={"expert": "experts"})


def test_round_trip_recovers_the_distributions_within_sampling_error(source, tmp_path):
    n = 8_000
    df = sample_trace(source, n, np.random.default_rng(9))
    path = tmp_path / "trace.csv"
    write_trace(df, path)
    inst = instance_from_trace(read_trace(path), model="mixtral-8x7b", nodes=2, seed=5)
    assert inst.metadata["sampled_tokens_per_distribution"] == [[n] * 3] * 3
    assert inst.metadata["trace"]["user_column"] == "user"
    assert inst.metadata["coactivation"].startswith("observed")
    assert inst.user_names == source.user_names
    assert np.allclose(inst.weight, 1 / 3)
    for u in range(3):
        for l in range(3):
            a, b = source.sets_of(u, l), inst.sets_of(u, l)
            true = {tuple(r[r >= 0]): p for r, p in zip(source.set_experts[a], source.set_prob[a])}
            for r, ph in zip(inst.set_experts[b], inst.set_prob[b]):
                key = tuple(r[r >= 0])
                assert key in true, "a set never in the model appeared"
                p = true.pop(key)
                assert abs(ph - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12
            # sets not observed must be rare enough to be missed
            assert all(p < 5 / n for p in true.values())


def test_every_adapter_gives_the_same_canonical_table(long_df, tmp_path):
    ref = trace_from_frame(long_df)
    lst = _to_list(long_df)
    # list as CSV strings, list as Parquet lists, long as Parquet
    csv_list = lst.assign(experts=lst["experts"].map(lambda v: "[" + ", ".join(map(str, v)) + "]"))
    csv_list.to_csv(tmp_path / "list.csv", index=False)
    lst.to_parquet(tmp_path / "list.parquet")
    long_df.to_parquet(tmp_path / "long.parquet")
    # vLLM-style arrays: one file per user, [tokens, layers, top_k]
    npy = tmp_path / "npy"
    npy.mkdir()
    for name in ref.user_names:
        sub = lst[lst["user"] == name].sort_values(["token", "layer"])
        T = sub["token"].nunique()
        np.save(npy / f"{name}.npy", np.array(sub["experts"].tolist()).reshape(T, 3, 2))
    # JSON-lines routing logs
    with open(tmp_path / "log.jsonl", "w") as fh:
        for r in lst.itertuples():
            fh.write(json.dumps({"user": r.user, "layer_idx": r.layer, "token_idx": r.token,
                                 "selected_ids": r.experts, "gate_weights": [0.5, 0.5]}) + "\n")
    for f, fmt in [("list.csv", "list"), ("list.parquet", "list"), ("long.parquet", "long"), ("npy", "npy"),
                   ("log.jsonl", "jsonl")]:
        tr = read_trace(tmp_path / f)
        assert tr.fmt == fmt
        assert tr.user_names == ref.user_names
        for a in ("user", "token", "layer", "experts"):
            assert np.array_equal(getattr(tr, a), getattr(ref, a)), (f, a)
    assert read_trace(tmp_path / "npy").user_column == "file name"


def test_the_user_column_is_chosen_and_recorded(long_df):
    df = long_df.rename(columns={"user": "request"})
    tr = trace_from_frame(df, user_column="request")
    inst = instance_from_trace(tr, model="Mixtral-8x7B", nodes=2)
    assert inst.metadata["trace"]["user_column"] == "request"
    with pytest.raises(InputError, match=r"\$.columns: a trace needs columns user, token, layer and expert"):
        trace_from_frame(df)


def test_layers_are_those_of_the_trace_and_one_based_logs_shift(long_df):
    df = long_df[long_df["layer"] > 0].assign(layer=lambda d: d["layer"] + 10)   # model layers 11, 12
    inst = instance_from_trace(trace_from_frame(df), model="Mixtral-8x7B", nodes=2)
    assert inst.L == 2 and inst.metadata["trace"]["model_layers"] == [11, 12]
    tr = trace_from_frame(long_df.assign(layer=long_df["layer"] + 1), layer_base=1)
    assert np.array_equal(tr.layer, trace_from_frame(long_df).layer)


def _model(df, model="Mixtral-8x7B"):
    return instance_from_trace(trace_from_frame(df, file="bad.csv"), model=model, nodes=1)


def test_bad_traces_get_one_line_errors(long_df, tmp_path):
    with pytest.raises(InputError, match=r"bad.csv: \$\[0\]\.layer: unknown layer 32: Mixtral-8x7B has 32 MoE "
                                         r"layers \(0\.\.31\)"):
        _model(long_df.assign(layer=long_df["layer"] + 32 * (long_df.index < 2)))
    with pytest.raises(InputError, match=r"bad.csv: \$\[\d+\]\.expert: expert 8 out of range: Mixtral-8x7B has "
                                         r"8 experts per layer \(0\.\.7\)"):
        _model(long_df.assign(expert=np.where(long_df.index == 5, 8, long_df["expert"])))
    extra = pd.DataFrame({"user": ["user-0"], "token": [0], "layer": [0], "expert": [7]})
    df3 = pd.concat([long_df, extra], ignore_index=True).drop_duplicates(["user", "token", "layer", "expert"])
    if len(df3) == len(long_df):
        extra = extra.assign(expert=6)
        df3 = pd.concat([long_df, extra], ignore_index=True).drop_duplicates(["user", "token", "layer", "expert"])
    with pytest.raises(InputError, match=r"bad.csv: \$\[0\]\.expert: token 0 of user 'user-0' activates 3 "
                                         r"experts at layer 0, more than top-k = 2"):
        _model(df3)
    with pytest.raises(InputError, match=r"expert \d repeated within one token"):
        _model(pd.concat([long_df, long_df.iloc[:1]], ignore_index=True))
    with pytest.raises(InputError, match=r"token must be an integer, got 'x'"):
        _model(long_df.assign(token=long_df["token"].astype(object).where(long_df.index != 3, "x")))
    with pytest.raises(InputError, match=r"user 'user-2' has no tokens at layer 2"):
        _model(long_df[~((long_df["user"] == "user-2") & (long_df["layer"] == 2))])
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match=r"empty.csv: empty trace: no rows"):
        read_trace(empty)
    header = tmp_path / "header.csv"
    header.write_text("user,token,layer,expert\n")
    with pytest.raises(InputError, match=r"header.csv: empty trace: no rows"):
        read_trace(header)
    with pytest.raises(InputError, match=r"missing.csv: file not found"):
        read_trace(tmp_path / "missing.csv")
    with pytest.raises(InputError, match=r"--format: unknown trace format 'xml'"):
        read_trace(empty, fmt="xml")


def test_several_problems_are_reported_together(long_df):
    df = long_df.assign(layer=long_df["layer"] + 40 * (long_df.index == 0),
                        expert=np.where(long_df.index == 9, 99, long_df["expert"]))
    with pytest.raises(InputError, match=r"unknown layer 40: .* \(1 set in the trace\) \(and 1 more problem\)$"):
        _model(df)


def test_shipped_sample_trace_imports_and_regenerates_byte_for_byte(tmp_path):
    again = write_sample_trace(tmp_path / "sample-trace.csv")
    assert again.read_bytes() == SHIPPED.read_bytes()
    tr = read_trace(SHIPPED)
    layers, routing, tokens = trace_distributions(tr)
    assert layers.tolist() == [0, 1, 2, 3]
    assert np.all(tokens == SAMPLE_TRACE["tokens"])
    assert len(routing) == SAMPLE_TRACE["instance"]["users"]


def test_from_trace_command(tmp_path, capsys):
    out = tmp_path / "inst.json"
    assert main(["from-trace", str(SHIPPED), "--model", "mixtral-8x7b", "--network", "5g-mec", "--nodes", "3",
                 "--seed", "4", "-o", str(out)]) == 0
    inst = read_instance(out)
    assert inst.L == 4 and inst.U == 3 and inst.N == 3
    assert inst.metadata["params"]["seed"] == 4 and inst.metadata["trace"]["source"] == "sample-trace.csv"
    bad = tmp_path / "bad.csv"
    bad.write_text("user,token,layer,expert\nu,0,0,9\n")
    assert main(["from-trace", str(bad), "--model", "mixtral-8x7b", "-o", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "expert 9 out of range" in err[0]


# ------------------------------------------------------------ marginal-only sources
def _fiddler(path, counts, tokens):
    path.write_text(json.dumps({"total_input_tokens": tokens, "expert_popularity": counts.tolist()}))


def test_marginal_only_sources_synthesise_sets_and_say_so(tmp_path, capsys):
    from slimcaching.instances.routing import inclusion_probabilities, plackett_luce_exact, zipf_popularity
    from slimcaching.instances.traces import instance_from_marginals, read_marginals

    rng = np.random.default_rng(4)
    folder = tmp_path / "fiddler"
    folder.mkdir()
    truth = {}
    for task in ("math", "code"):
        pops = [zipf_popularity(8, 1.1, rng) for _ in range(32)]
        dists = [plackett_luce_exact(w, 2) for w in pops]
        freq = np.stack([inclusion_probabilities(s, p, 8) for s, p in dists])     # exact marginals
        _fiddler(folder / f"{task}.json", freq * 1000.0, 1000)
        truth[task] = dists
    marg = read_marginals(folder, top_k=2)
    assert marg.user_names == ("code", "math") and marg.counts.shape == (2, 32, 8)
    inst = instance_from_marginals(marg, model="mixtral-8x7b", nodes=2, seed=1)
    assert inst.metadata["coactivation"].startswith("synthesised")
    assert inst.metadata["trace"]["plackett_luce_fit_max_error"] < 1e-6
    # Plackett-Luce is identified by its Top-2 marginals: the synthesised sets are the true ones
    for u, task in enumerate(marg.user_names):
        for l in (0, 17, 31):
            s_true, p_true = truth[task][l]
            sl = inst.sets_of(u, l)
            assert np.array_equal(inst.set_experts[sl], s_true)
            assert np.allclose(inst.set_prob[sl], p_true, atol=1e-5)
    # the same through the command line, format detected from the extension
    out = tmp_path / "m.json"
    assert main(["from-trace", str(folder / "math.json"), "--model", "mixtral-8x7b", "--nodes", "2",
                 "-o", str(out)]) == 0
    assert read_instance(out).metadata["trace"]["format"] == "fiddler"
    # MoE-Infinity-style count arrays [sequences, layers, experts]
    npy = tmp_path / "counts.npy"
    np.save(npy, rng.integers(0, 50, size=(3, 32, 8)))
    assert main(["from-trace", str(npy), "--model", "mixtral-8x7b", "--format", "counts-npy", "--nodes", "2",
                 "-o", str(out)]) == 0
    assert read_instance(out).metadata["coactivation"].startswith("synthesised")


def test_bad_marginal_files(tmp_path):
    from slimcaching.instances.traces import instance_from_marginals, read_marginals

    f = tmp_path / "a.json"
    _fiddler(f, np.ones((4, 8)), 10)
    with pytest.raises(InputError, match=r"a.json: \$.expert_popularity: counts are 4 layers x 8 experts but "
                                         r"Mixtral-8x7B has 32 MoE layers x 8 experts"):
        instance_from_marginals(read_marginals(f, top_k=2), model="mixtral-8x7b")
    c = np.full((32, 8), 1.0)
    c[3, 5] = 20
    _fiddler(f, c, 10)
    with pytest.raises(InputError, match=r"\$.expert_popularity\[3\]\[5\]: expert 5 of layer 3 is activated by more "
                                         r"tokens than the file has"):
        instance_from_marginals(read_marginals(f, top_k=2), model="mixtral-8x7b")
    f.write_text('{"expert_popularity": []}')
    with pytest.raises(InputError, match=r"a Fiddler popularity file needs total_input_tokens and expert_popularity"):
        read_marginals(f, top_k=2)
    with pytest.raises(InputError, match=r"counts-npy needs the model's top-k"):
        read_marginals(f, fmt="counts-npy")


def test_list_traces_reject_empty_lists_and_non_integers(long_df):
    lst = _to_list(long_df)
    as_str = lst.assign(experts=lst["experts"].map(lambda v: " ".join(map(str, v))))
    with pytest.raises(InputError, match=r"bad.csv: \$\[4\]\.experts: a token must activate at least one expert, "
                                         r"got an empty list"):
        trace_from_frame(as_str.assign(experts=as_str["experts"].where(as_str.index != 4, "[]")), file="bad.csv")
    with pytest.raises(InputError, match=r"bad.csv: \$\[2\]\.experts: a token must activate at least one expert"):
        trace_from_frame(lst.assign(experts=lst["experts"].where(lst.index != 2, None).map(
            lambda v: [] if v is None else v)), file="bad.csv")
    with pytest.raises(InputError, match=r"bad.csv: \$\[6\]\.expert: expert must be an integer, got 'x'"):
        trace_from_frame(as_str.assign(experts=as_str["experts"].where(as_str.index != 6, "1 x")), file="bad.csv")


# ------------------------------------------------------------------ issue 18: values that wrapped or crashed
@pytest.mark.parametrize("row,match", [
    ("u0,inf,0,1", r"\$\[0\]\.token: token must be an integer, got inf"),
    ("u0,0,0,1e30", r"\$\[0\]\.expert: expert must be an integer, got 1e\+30 \(beyond 2\*\*53, where ids stop"),
    (",0,0,1", r"\$\[0\]\.user: empty user cell: every row needs a user"),
])
def test_ids_that_would_wrap_and_empty_users_are_one_line(tmp_path, row, match):
    from slimcaching.instances.traces import read_trace

    f = tmp_path / "t.csv"
    f.write_text("user,token,layer,expert\n" + row + "\nu0,0,0,2\nu0,1,0,3\n")
    with pytest.raises(InputError, match=r"t.csv: " + match):
        read_trace(f)


def test_layer_base_applies_to_csv(tmp_path):
    from slimcaching.instances.traces import read_trace

    f = tmp_path / "t.csv"
    f.write_text("user,token,layer,expert\nu0,0,1,1\nu0,0,2,3\nu0,1,1,0\n")
    assert sorted(set(read_trace(f, layer_base=1).layer.tolist())) == [0, 1]
    assert sorted(set(read_trace(f).layer.tolist())) == [1, 2]


def test_fiddler_counts_beyond_float_range_are_one_line(tmp_path):
    """Found by the fuzzer: an integer count of 10^400 overflowed in the float conversion."""
    from slimcaching.instances.traces import read_marginals

    f = tmp_path / "pop.json"
    f.write_text('{"total_input_tokens": 100, "expert_popularity": [[1, ' + "1" + "0" * 400 + ']]}')
    with pytest.raises(InputError, match=r"pop.json: \$\.expert_popularity: must be a list of lists of counts"):
        read_marginals(f, fmt="fiddler", top_k=2)
    f.write_text('{"total_input_tokens": 100, "expert_popularity": [[1, 1e400]]}')
    with pytest.raises(InputError, match=r"pop.json: \$: counts and total_input_tokens must be finite"):
        read_marginals(f, fmt="fiddler", top_k=2)
