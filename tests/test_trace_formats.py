"""Every trace adapter on small files in its source's real layout; streaming counts
equal a plain Python count and the in-memory path; set keys; bad inputs."""
from __future__ import annotations

import collections
import io
import json
import pickle
import sys
import types
import zipfile
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from slimcaching.cli import main
from slimcaching.errors import InputError
from slimcaching.instances.io import read_instance
from slimcaching.instances.traces import (count_trace, detect_format, open_source, read_trace, trace_distributions)
from slimcaching.instances.traces.stream import Chunk, SetCodec, count_chunks

L, E, K = 3, 8, 2


def _random_rows(seed, users=("a", "b"), tokens=(7, 5), L=L, E=E, K=K):
    """{user: int [T, L, K]} distinct ids per row."""
    rng = np.random.default_rng(seed)
    return {u: np.array([[rng.choice(E, K, replace=False) for _ in range(L)] for _ in range(T)], dtype=np.int16)
            for u, T in zip(users, tokens)}


def _truth(arrays, layer_of=lambda l: l):
    c = Counter()
    for u, a in arrays.items():
        for t in range(a.shape[0]):
            for l in range(a.shape[1]):
                c[(u, layer_of(l), tuple(sorted(int(e) for e in np.atleast_1d(a[t, l]) if e >= 0)))] += 1
    return c


def _as_dict(counts):
    out = Counter()
    for p in range(len(counts.parts)):
        for u, name in enumerate(counts.user_names):
            for i, l in enumerate(counts.layers):
                k = counts.index(p, u, i)
                for s, c in zip(counts.sets[k], counts.counts[k]):
                    out[(name, int(l), tuple(int(e) for e in s if e >= 0))] += int(c)
    return out


def _count(path, fmt="auto", layers=L, experts=E, top_k=K, **kw):
    chunk = kw.pop("chunk_rows", 4)
    src = open_source(path, fmt, user_column=kw.pop("user_column", "user"), experts=experts, top_k=top_k)
    return count_trace(src, layers=layers, experts=experts, top_k=top_k, chunk_rows=chunk, **kw)


# ------------------------------------------------------------------ adapters
def test_vllm_npy_folder_and_npz(tmp_path):
    arrays = _random_rows(1)
    d = tmp_path / "npy"
    d.mkdir()
    for u, a in arrays.items():
        np.save(d / f"{u}.npy", a)
    np.savez_compressed(tmp_path / "reqs.npz", **arrays)
    for path in (d, tmp_path / "reqs.npz"):
        assert detect_format(path, experts=E, top_k=K) == "npy"
        c = _count(path)
        assert _as_dict(c) == _truth(arrays)
        assert c.info["format"] == "npy" and set(c.user_names) == {"a", "b"}


def test_exflow_top1_needs_top_k_1(tmp_path):
    a = _random_rows(2)["a"][:, :, 0].astype(np.int32)
    np.save(tmp_path / "exflow.npy", a)
    assert detect_format(tmp_path / "exflow.npy", experts=E, top_k=K) == "exflow"
    assert _as_dict(_count(tmp_path / "exflow.npy", top_k=1)) == _truth({"exflow": a[:, :, None]})
    out = tmp_path / "x.json"
    assert main(["from-trace", str(tmp_path / "exflow.npy"), "--model", "mixtral-8x7b", "-o", str(out)]) == 2
    assert main(["from-trace", str(tmp_path / "exflow.npy"), "--model", "mixtral-8x7b", "--top-k", "1",
                 "-o", str(out)]) == 0
    inst = read_instance(out)
    assert inst.max_top_k == 1 and inst.metadata["trace"]["format"] == "exflow"


def test_megatron_router_trace(tmp_path):
    """router_trace_rank{r}.jsonl: one record per (step, block, layer); mtp records skipped."""
    arrays = _random_rows(3, users=("rank-0", "rank-1"), tokens=(6, 6))
    d = tmp_path / "mg"
    d.mkdir()
    for r, (u, a) in enumerate(arrays.items()):
        with open(d / f"router_trace_rank{r}.jsonl", "w") as fh:
            for step, (t0, t1) in enumerate(((0, 4), (4, 5), (5, 6))):
                for l in range(L):
                    fh.write(json.dumps({"step": step, "stage": "pre_dispatch", "block": "decoder", "layer": l + 1,
                                         "rank": r, "num_tokens": t1 - t0, "topk": K,
                                         "top_indices": a[t0:t1, l].tolist()}) + "\n")
                fh.write(json.dumps({"step": step, "stage": "pre_dispatch", "block": "mtp", "layer": 1, "rank": r,
                                     "num_tokens": 1, "topk": K, "top_indices": [[0, 1]], "mtp_idx": 0}) + "\n")
    assert detect_format(d) == "megatron"
    c = _count(d, user_column="rank", layer_base=1)
    assert _as_dict(c) == _truth(arrays)
    assert c.info["skipped_mtp_records"] == 6
    one = _count(d, layer_base=1)
    assert one.user_names == ("all",) and one.rows == 12 * L
    tr = read_trace(d, user_column="rank", layer_base=1)
    assert len(np.unique(np.stack([tr.user, tr.token], 1), axis=0)) == 12     # (step, rank, row) tokens


def test_flame_parquet_folder(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    a = _random_rows(4, users=("flame",), tokens=(9,), K=6, E=64)["flame"]
    d = tmp_path / "actives" / "iter_0540"
    d.mkdir(parents=True)
    for l in range(L):
        idx = pa.array(a[:, l].tolist(), type=pa.list_(pa.int16()))
        sc = pa.array(np.full((9, 6), 0.1).tolist(), type=pa.list_(pa.float16()))
        pq.write_table(pa.table({"scores": sc, "indices": idx}), d / f"layer_{l + 2:02d}.parquet")
    with pytest.raises(InputError, match=r"pick one checkpoint, e.g. .*iter_0540"):
        open_source(tmp_path / "actives", "flame")
    assert detect_format(d) == "flame"
    c = _count(d, experts=64, top_k=6, layer_base=2)
    assert _as_dict(c) == _truth({"flame": a})


def test_llamacpp_log_token_is_position_within_layer(tmp_path):
    arrays = _random_rows(5)
    d = tmp_path / "logs"
    d.mkdir()
    for u, a in arrays.items():
        lines = ["layer_id,expert_ids"]
        for t in range(a.shape[0]):
            for l in range(L):
                lines.append(f"{l + 3},{' '.join(map(str, a[t, l]))}")
            lines.append("gate_input,3,0,0.12 -0.4 0.7")
        (d / f"{u}.log").write_text("\n".join(lines) + "\n")
    assert detect_format(d) == "llamacpp"
    c = _count(d, layer_base=3)
    assert _as_dict(c) == _truth(arrays)
    assert c.info["skipped_lines"] == 12 and "position" in c.info["token"]
    tr = read_trace(d, layer_base=3)
    a = arrays["a"]
    sel = (tr.user == tr.user_names.index("a")) & (tr.layer == 1)
    assert np.array_equal(tr.token[sel], np.arange(a.shape[0]))
    assert np.array_equal(tr.experts[sel], np.sort(a[:, 1], axis=1))


def test_jsonl_list_and_long_tables(tmp_path):
    arrays = _random_rows(6)
    rows = [(u, t, l, a[t, l].tolist()) for u, a in arrays.items() for t in range(a.shape[0]) for l in range(L)]
    with open(tmp_path / "log.jsonl", "w") as fh:
        for u, t, l, s in rows:
            fh.write(json.dumps({"user": u, "layer_idx": l, "token_idx": t, "selected_ids": s,
                                 "gate_weights": [0.6, 0.4]}) + "\n")
    lst = pd.DataFrame(rows, columns=["user", "token", "layer", "experts"])
    lst.to_parquet(tmp_path / "list.parquet")
    lst.assign(experts=lst["experts"].map(lambda v: "[" + ", ".join(map(str, v)) + "]")).to_csv(
        tmp_path / "list.csv", index=False)
    long = lst.explode("experts").rename(columns={"experts": "expert"})
    long.to_csv(tmp_path / "long.csv", index=False)
    truth = _truth(arrays)
    for f, fmt in (("log.jsonl", "jsonl"), ("list.parquet", "list"), ("list.csv", "list"), ("long.csv", "long")):
        assert detect_format(tmp_path / f) == fmt
        assert _as_dict(_count(tmp_path / f)) == truth, f


def _fake_torch_modules():
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # only its name is pickled
        raise AssertionError

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in ("IntStorage", "LongStorage", "FloatStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils
    return {"torch": torch, "torch._utils": utils}


def torch_save(obj, path):
    """Write ``obj`` in the zip layout of ``torch.save`` (numpy arrays as tensors), for tests without PyTorch:
    ``archive/data.pkl`` (protocol 2, storages as persistent ids) and ``archive/data/<key>``."""
    mods = _fake_torch_modules()
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        storages = {}

        class Storage:
            def __init__(self, arr):
                self.arr = np.ascontiguousarray(arr)
                self.key = str(len(storages))
                storages[self.key] = self.arr

        class Tensor:
            def __init__(self, arr):
                self.arr = np.asarray(arr)

            def __reduce__(self):
                st = Storage(self.arr.ravel())
                stride = tuple(s // self.arr.itemsize for s in np.ascontiguousarray(self.arr).strides)
                return (mods["torch._utils"]._rebuild_tensor_v2,
                        (st, 0, tuple(self.arr.shape), stride, False, collections.OrderedDict()))

        names = {np.dtype(np.int32): "IntStorage", np.dtype(np.int64): "LongStorage",
                 np.dtype(np.float32): "FloatStorage"}

        class P(pickle.Pickler):
            def persistent_id(self, o):
                if isinstance(o, Storage):
                    return ("storage", getattr(mods["torch"], names[o.arr.dtype]), o.key, "cpu", o.arr.size)
                return None

        def wrap(o):
            if isinstance(o, np.ndarray):
                return Tensor(o)
            if isinstance(o, dict):
                return {k: wrap(v) for k, v in o.items()}
            if isinstance(o, list):
                return [wrap(v) for v in o]
            return o

        buf = io.BytesIO()
        P(buf, protocol=2).dump(wrap(obj))
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("archive/data.pkl", buf.getvalue())
            zf.writestr("archive/byteorder", "little")
            for k, a in storages.items():
                zf.writestr(f"archive/data/{k}", a.tobytes())
            zf.writestr("archive/version", "3\n")
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def test_sglang_per_token_dump_maps_physical_to_logical(tmp_path):
    """per_token mode: topk_ids_of_layer [layers, tokens, 8] physical ids, -1 padded; layer 0 dense."""
    arrays = _random_rows(7, users=("all",), tokens=(10,))
    a = arrays["all"]
    nphys = E + 2
    p2l = np.tile(np.r_[np.arange(E), [0, 3]], (L + 1, 1)).astype(np.int64)         # 2 redundant replicas
    recs = []
    for fp, (t0, t1) in enumerate(((0, 6), (6, 10))):
        ids = np.full((L + 1, t1 - t0, 8), -1, dtype=np.int32)
        phys = a[t0:t1].astype(np.int32).copy()
        phys[phys == 3] = 9                                                         # replica of expert 3
        ids[1:, :, :K] = phys.transpose(1, 0, 2)
        recs.append({"forward_pass_id": fp, "rank": 0, "gatherer_key": "primary", "input_ids": list(range(t1 - t0)),
                     "positions": list(range(t0, t1)), "extend_seq_lens": None, "forward_mode": 2,
                     "topk_ids_of_layer": ids, "misc_objects": [],
                     "global_physical_count": np.zeros((L + 1, nphys), dtype=np.int32)})
    f = tmp_path / "expert_distribution_recorder_1.0_0.pt"
    torch_save({"records": recs, "last_physical_to_logical_map": p2l}, f)
    assert detect_format(f) == "sglang"
    assert _as_dict(_count(f, layer_base=1)) == _truth(arrays)
    stat = tmp_path / "stat.pt"
    torch_save({"rank": 0, "logical_count": np.ones((4, L, E), dtype=np.int32) * 3,
                "average_utilization_rate_over_window": None}, stat)
    assert detect_format(stat) == "sglang-stat"


def test_torch_reader_refuses_code(tmp_path):
    f = tmp_path / "evil.pt"
    with zipfile.ZipFile(f, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps(print, protocol=2))
    from slimcaching.instances.traces.torchfile import load_torch_file

    with pytest.raises(InputError, match=r"refusing to load (__builtin__|builtins)\.print"):
        load_torch_file(str(f))


def test_count_arrays_are_detected_and_read_as_marginals(tmp_path, capsys):
    rng = np.random.default_rng(8)
    f = tmp_path / "moe_infinity.npy"
    counts = rng.integers(0, 20, size=(5, 32, 8)).astype(np.float32)
    counts[:, :, :] = counts * 2 // 2
    np.save(f, counts)
    assert detect_format(f, experts=8, top_k=2) == "counts-npy"
    np.save(tmp_path / "ints.npy", counts.astype(np.int64))
    assert detect_format(tmp_path / "ints.npy", experts=8, top_k=2) == "counts-npy"
    out = tmp_path / "m.json"
    assert main(["from-trace", str(f), "--model", "mixtral-8x7b", "--nodes", "2", "-o", str(out)]) == 0
    assert read_instance(out).metadata["coactivation"].startswith("synthesised")
    np.save(tmp_path / "odd.npy", np.zeros((5, 32, 5), dtype=np.int64))
    with pytest.raises(InputError, match="pass --format npy .* or --format counts-npy"):
        detect_format(tmp_path / "odd.npy", experts=8, top_k=2)


# ------------------------------------------------------------------ streaming == in-memory
@pytest.mark.parametrize("seed", range(3))
def test_streaming_equals_in_memory_for_every_chunk_size(seed, tmp_path):
    arrays = _random_rows(10 + seed, tokens=(4, 3))
    rng = np.random.default_rng(seed)
    for a in arrays.values():                          # some single-expert sets
        a[rng.random(a.shape[:2]) < 0.3, 1] = -1
    d = tmp_path / "npy"
    d.mkdir()
    for u, a in arrays.items():
        np.save(d / f"{u}.npy", a)
    tr = read_trace(d)
    layers, routing, tokens = trace_distributions(tr)
    ref = Counter()
    for u, per in enumerate(routing):
        for i, (s, p) in enumerate(per):
            for row, q in zip(s, p):
                ref[(tr.user_names[u], int(layers[i]), tuple(int(e) for e in row if e >= 0))] += int(round(q * tokens[u, i]))
    n = tr.n_sets
    for chunk in range(1, n + 1):
        assert _as_dict(_count(d, chunk_rows=chunk)) == ref, chunk
        pieces = np.sort(rng.choice(np.arange(1, n), size=min(3, n - 1), replace=False))
        bounds = np.r_[0, pieces, n]
        chunks = [Chunk(tr.user[a:b], tr.token[a:b], tr.layer[a:b], tr.experts[a:b], tr.row[a:b])
                  for a, b in zip(bounds[:-1], bounds[1:])]
        c = count_chunks(chunks, user_names=lambda: tr.user_names, file="t", layers=L, experts=E, top_k=K)
        assert _as_dict(c) == ref


@pytest.mark.parametrize("E_, K_", [(8, 2), (64, 6), (256, 8), (384, 8)])
def test_set_keys_round_trip(E_, K_):
    codec = SetCodec(E_, K_)
    rng = np.random.default_rng(E_)
    sets = np.full((200, K_), -1, dtype=np.int64)
    for i in range(200):
        k = rng.integers(1, K_ + 1)
        sets[i, :k] = np.sort(rng.choice(E_, k, replace=False))
    if codec.mode == "rows":
        assert E_ * 0 == 0 and codec.K * codec.bits > 64
        return
    back = codec.decode(codec.encode(sets))
    back = np.pad(back, ((0, 0), (0, K_ - back.shape[1])), constant_values=-1)[:, :K_]
    assert np.array_equal(back, sets)
    keys = codec.encode(sets)
    assert len(np.unique(keys)) == len(np.unique(sets, axis=0))


# ------------------------------------------------------------------ bad input: one line, exit 2
def _cli(args, capsys):
    rc = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    return rc, [e for e in err if not e.startswith("warning:")]


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    base = ["--model", "mixtral-8x7b", "-o", str(tmp_path / "o.json")]
    cases = {}
    (tmp_path / "inf.csv").write_text('user,token,layer,experts\nu,0,0,"[1, 2]"\nu,inf,0,"[1, 3]"\n')
    cases["inf.csv"] = r"\$\[1\]\.token: token must be an integer, got"
    (tmp_path / "big.jsonl").write_text(json.dumps({"layer_idx": 0, "token_idx": 1e30, "selected_ids": [1, 2]}) + "\n")
    cases["big.jsonl"] = r"token_idx must be an integer, got 1e\+30 \(beyond 2\*\*53"
    (tmp_path / "blank.csv").write_text('user,token,layer,experts\nu,0,0,"[1, 2]"\n,1,0,"[1, 3]"\n')
    cases["blank.csv"] = r"\$\[1\]\.user: empty user cell"
    (tmp_path / "blank_long.csv").write_text("user,token,layer,expert\nu,0,0,1\n,0,0,2\n")
    cases["blank_long.csv"] = r"\$\[1\]\.user: empty user cell"
    a = np.zeros((100, 32, 2), dtype=np.int16)
    a[:, :, 1] = 1
    np.save(tmp_path / "short.npy", a)
    raw = (tmp_path / "short.npy").read_bytes()
    (tmp_path / "short.npy").write_bytes(raw[: len(raw) // 2])
    cases["short.npy"] = r"header claims shape \(100, 32, 2\) of int16 \(12800 bytes\) but the file holds"
    for name, pattern in cases.items():
        rc, err = _cli(["from-trace", str(tmp_path / name), *base], capsys)
        assert rc == 2 and len(err) == 1, (name, err)
        assert pytest.importorskip("re").search(pattern, err[0]), (name, err[0])


def test_layer_base_applies_to_tables(tmp_path, capsys):
    (tmp_path / "one.csv").write_text('user,token,layer,experts\nu,0,1,"[1, 2]"\nu,0,2,"[1, 3]"\n')
    inst_path = tmp_path / "o.json"
    assert main(["from-trace", str(tmp_path / "one.csv"), "--model", "mixtral-8x7b", "--layer-base", "1",
                 "-o", str(inst_path)]) == 0
    assert read_instance(inst_path).metadata["trace"]["model_layers"] == [0, 1]
    rc, err = _cli(["from-trace", str(tmp_path / "one.csv"), "--model", "mixtral-8x7b", "--layer-base", "2",
                    "-o", str(inst_path)], capsys)
    assert rc == 2 and len(err) == 1 and "unknown layer 1 after --layer-base 2" in err[0]
    long = tmp_path / "long.parquet"
    pd.DataFrame({"user": ["u"] * 4, "token": [0, 0, 0, 0], "layer": [1, 1, 2, 2], "expert": [1, 2, 1, 3]}).to_parquet(long)
    assert main(["from-trace", str(long), "--model", "mixtral-8x7b", "--layer-base", "1", "-o", str(inst_path)]) == 0
    assert read_instance(inst_path).metadata["trace"]["model_layers"] == [0, 1]
