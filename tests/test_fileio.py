"""The one output path and the one input path (slimcaching.fileio), with fault injection.

Outputs: devices, FIFOs and symbolic links are written through (never renamed
over), a full disk and a read-only folder are one line with exit code 1, an
input of the command is never overwritten, and no temporary file is left
behind.  Inputs: strict JSON, capped decompression, .npy headers checked.
"""
from __future__ import annotations

import gzip
import json
import os
import resource
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from slimcaching.cli import main
from slimcaching.errors import InputError, OutputError
from slimcaching.fileio import (check_output, loads_json, protect_inputs, read_json, read_npy, write_bytes,
                                write_json, write_text, write_with)

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "tests" / "data" / "tiny.json"
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, mount)")


def _run(capsys, argv):
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".slimcaching"))


# ------------------------------------------------------------------ special files
@ROOT_ONLY
def test_device_output_is_written_through_not_replaced(tmp_path, capsys):
    null = tmp_path / "null"
    os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    rc, _, err = _run(capsys, ["generate", "--seed", "1", "-o", null])
    assert rc == 0 and err == ""
    st = os.stat(null)
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(1, 3)
    assert _leftovers(tmp_path) == []


@ROOT_ONLY
def test_dev_full_reports_a_full_disk(tmp_path, capsys):
    full = tmp_path / "full"
    os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    rc, _, err = _run(capsys, ["generate", "--seed", "1", "-o", full])
    assert rc == 1
    assert err == f"{full}: cannot write: No space left on device\n"
    assert stat.S_ISCHR(os.stat(full).st_mode)
    with pytest.raises(OutputError, match=r"full: cannot write: No space left on device"):
        write_bytes(b"x" * 10, full)


def test_fifo_output_is_written_through(tmp_path, capsys):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got = {}

    def reader():
        with open(fifo, "rb") as fh:
            got["data"] = fh.read()

    t = threading.Thread(target=reader)
    t.start()
    rc, _, err = _run(capsys, ["solve", TINY, "--algorithm", "greedy", "-o", fifo])
    t.join(30)
    assert rc == 0 and err == ""
    assert json.loads(got["data"])["format"] == "slimcaching-placement/1"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert _leftovers(tmp_path) == []


def test_symlink_output_writes_its_target_and_keeps_its_mode(tmp_path, capsys):
    target = tmp_path / "real" / "placement.json"
    target.parent.mkdir()
    target.write_text("old")
    os.chmod(target, 0o640)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    rc, _, err = _run(capsys, ["solve", TINY, "--algorithm", "greedy", "-o", link])
    assert rc == 0 and err == ""
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text())["algorithm"] == "greedy"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert _leftovers(tmp_path) == [] and _leftovers(target.parent) == []


def test_new_file_gets_the_umask_mode_and_replace_is_atomic(tmp_path):
    old = os.umask(0o027)
    try:
        write_text("a", tmp_path / "f.txt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "f.txt").st_mode) == 0o640
    ino = os.stat(tmp_path / "f.txt").st_ino
    write_text("b", tmp_path / "f.txt")
    assert (tmp_path / "f.txt").read_text() == "b"
    assert os.stat(tmp_path / "f.txt").st_ino != ino  # a new file renamed over: readers see old or new


def test_directory_as_output_is_one_line_exit_1(tmp_path, capsys):
    rc, _, err = _run(capsys, ["generate", "--seed", "1", "-o", tmp_path])
    assert rc == 1 and err == f"{tmp_path}: cannot write: is a directory\n"
    with pytest.raises(OutputError, match="is a directory"):
        write_json({}, tmp_path)


def test_missing_directory_is_one_line_exit_1(tmp_path, capsys):
    out = tmp_path / "nope" / "x.json"
    rc, _, err = _run(capsys, ["generate", "--seed", "1", "-o", out])
    assert rc == 1 and err.count("\n") == 1
    assert f"{out}: cannot write: directory" in err and "does not exist" in err
    assert not (tmp_path / "nope").exists()


@pytest.fixture
def mounted(tmp_path):
    """Mount a filesystem at a private folder for the test (root only); unmount afterwards."""
    points = []

    def mount(*args) -> Path:
        point = tmp_path / f"mnt{len(points)}"
        point.mkdir()
        r = subprocess.run(["mount", *args, str(point)], capture_output=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount: {r.stderr.decode().strip()}")
        points.append(point)
        return point

    yield mount
    for p in reversed(points):
        subprocess.run(["umount", "-l", str(p)], capture_output=True)


@ROOT_ONLY
def test_read_only_directory_is_one_line_exit_1(tmp_path, capsys, mounted):
    ro = mounted("-t", "tmpfs", "-o", "ro,size=64k", "tmpfs")
    rc, _, err = _run(capsys, ["solve", TINY, "--algorithm", "greedy", "-o", ro / "p.json"])
    assert rc == 1 and err.count("\n") == 1
    assert f"{ro / 'p.json'}: cannot write: read-only file system" in err
    with pytest.raises(OutputError, match="Read-only file system"):
        write_json({}, ro / "p.json")


@ROOT_ONLY
def test_full_filesystem_is_one_line_and_leaves_no_temporary(tmp_path, capsys, mounted):
    small = mounted("-t", "tmpfs", "-o", "size=64k", "tmpfs")
    out = small / "big.json"
    out.write_text("precious")
    with pytest.raises(OutputError, match=r"big.json: cannot write: No space left on device"):
        write_bytes(b"x" * (1 << 20), out)
    assert out.read_text() == "precious"  # the old content survives a failed replace
    assert sorted(p.name for p in small.iterdir()) == ["big.json"]
    # the same through the command line, with an instance bigger than the filesystem
    rc, _, err = _run(capsys, ["generate", "--model", "mixtral-8x7b", "--seed", "0", "-o", small / "i.json"])
    assert rc == 1 and err == f"{small / 'i.json'}: cannot write: No space left on device\n"
    assert sorted(p.name for p in small.iterdir()) == ["big.json"]


def test_file_size_limit_is_one_line_and_leaves_no_temporary(tmp_path):
    """RLIMIT_FSIZE (e.g. a quota) makes write fail with EFBIG; Python ignores SIGXFSZ."""
    out = tmp_path / "inst.json"

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    r = subprocess.run([sys.executable, "-m", "slimcaching.cli", "generate", "--model", "mixtral-8x7b", "-o", str(out)],
                       capture_output=True, text=True, preexec_fn=limit, cwd=ROOT, timeout=300)
    assert r.returncode == 1, r.stderr
    assert r.stderr == f"{out}: cannot write: File too large\n"
    assert list(tmp_path.iterdir()) == []


def test_stdout_on_a_full_device_is_one_line_exit_1(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "slimcaching.cli", "validate", str(TINY)], stdout=full,
                           stderr=subprocess.PIPE, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 1 and r.stderr == "<stdout>: cannot write: No space left on device\n"


def test_interrupted_write_leaves_no_temporary(tmp_path):
    def boom(fh):
        fh.write(b"partial")
        raise KeyboardInterrupt

    from slimcaching.fileio import _publish

    (tmp_path / "keep.json").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        _publish(tmp_path / "keep.json", boom, ())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.json"]
    assert (tmp_path / "keep.json").read_text() == "old"


def test_write_with_moves_sibling_files_and_cleans_up(tmp_path):
    def writer(name):
        Path(name).write_text("main")
        Path(name).with_suffix(".row").write_text("rows")

    write_with(tmp_path / "m.nl", writer)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nl", "m.row"]

    def failing(name):
        Path(name).write_text("half")
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError, match="writer failed"):
        write_with(tmp_path / "n.nl", failing)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nl", "m.row"]


# ------------------------------------------------------------------ inputs are never overwritten
def test_solve_output_equal_to_its_input_is_refused(tmp_path, capsys):
    inst = tmp_path / "inst.json"
    shutil.copy(TINY, inst)
    before = inst.read_bytes()
    rc, _, err = _run(capsys, ["solve", inst, "--algorithm", "greedy", "-o", inst])
    assert rc == 2 and err == f"--output: {str(inst)!r} is an input of this command; refusing to overwrite it\n"
    assert inst.read_bytes() == before
    link = tmp_path / "alias.json"
    link.symlink_to(inst)  # another name of the same file
    rc, _, err = _run(capsys, ["solve", inst, "--algorithm", "greedy", "-o", link])
    assert rc == 2 and "is an input of this command" in err
    hard = tmp_path / "hard.json"
    os.link(inst, hard)
    rc, _, err = _run(capsys, ["export", hard, "--formulation", "level", "--format", "lp", "-o", inst])
    assert rc == 2 and inst.read_bytes() == before


def test_report_db_to_itself_leaves_the_database_intact(tmp_path, capsys):
    db = tmp_path / "results.sqlite"
    rc, _, _ = _run(capsys, ["bench", TINY, "--algorithms", "cloud,greedy", "--db", db, "--jobs", "1",
                             "--no-progress", "--quiet"])
    assert rc == 0
    before = db.read_bytes()
    rc, _, err = _run(capsys, ["report", db, "-o", db])
    assert rc == 2 and err == f"--output: {str(db)!r} is an input of this command; refusing to overwrite it\n"
    assert db.read_bytes() == before
    rc, out, _ = _run(capsys, ["report", db, "-o", tmp_path / "r.md"])
    assert rc == 0 and "greedy" in (tmp_path / "r.md").read_text()


def test_library_writes_inside_a_command_cannot_replace_an_input(tmp_path):
    src = tmp_path / "in.json"
    src.write_text("{}")
    with protect_inputs([src]):
        with pytest.raises(InputError, match=r"in.json: is an input of this command"):
            write_json({"a": 1}, src)
    assert src.read_text() == "{}"
    write_json({"a": 1}, src)  # outside the command it is an ordinary file
    with pytest.raises(InputError, match="is an input"):
        check_output(src, inputs=[src])


# ------------------------------------------------------------------ strict JSON
def test_duplicate_key_is_rejected_with_its_path(tmp_path, capsys):
    text = TINY.read_text().replace('"capacity": 4\n', '"capacity": 4, "capacity": 4000\n', 1)
    f = tmp_path / "dup.json"
    f.write_text(text)
    with pytest.raises(InputError, match=r"dup.json: \$\.nodes\[0\]\.capacity: duplicate key 'capacity'"):
        read_json(f)
    rc, _, err = _run(capsys, ["validate", f])
    assert rc == 2 and err.count("\n") == 1 and "duplicate key 'capacity'" in err


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_rejected(literal):
    with pytest.raises(InputError, match=rf"f.json: \$\.a\[1\]: {literal} is not valid JSON"):
        loads_json(f'{{"a": [1, {literal}]}}', "f.json")


@pytest.mark.parametrize("value,rule", [
    ("1" + "0" * 30, r"at most 9007199254740992, got 1000000000000000000000000000000$"),
    (str(2**63), r"at most 9007199254740992, got 9223372036854775808$"),
    ("1" + "0" * 400, r"at most 9007199254740992, got 10000000000000000000\.\.\.00000000 \(401 digits\)$"),
    ("9" * 5000, r"\$: number out of range: Exceeds the limit \(4300 digits\)"),
])
def test_huge_integers_are_one_line_exit_2(tmp_path, capsys, value, rule):
    f = tmp_path / "big.json"
    f.write_text(TINY.read_text().replace('"capacity": 4\n', f'"capacity": {value}\n', 1))
    rc, _, err = _run(capsys, ["validate", f])
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(str(f) + ": ")
    import re
    assert re.search(rule, err.strip()), err


def test_deep_nesting_is_one_line_exit_2(tmp_path, capsys):
    f = tmp_path / "deep.json"
    f.write_text("[" * 100_000 + "]" * 100_000)
    rc, _, err = _run(capsys, ["validate", f])
    assert rc == 2 and err == f"{f}: $: nested too deeply (more than about {sys.getrecursionlimit()} levels)\n"


def test_lone_surrogate_round_trips_as_an_escape(tmp_path):
    doc = loads_json('{"name": "a\\ud800b"}')
    write_json(doc, tmp_path / "s.json")
    assert read_json(tmp_path / "s.json") == doc


# ------------------------------------------------------------------ input limits
def _bomb(path: Path, mib: int) -> None:
    """A valid gzip file (one member per MiB) of a JSON string padded with ``mib`` MiB of spaces."""
    block = gzip.compress(b" " * (1 << 20), compresslevel=9, mtime=0)
    path.write_bytes(gzip.compress(b'{"a": "', mtime=0) + block * mib + gzip.compress(b'"}', mtime=0))


def test_gzip_bomb_is_refused_early_with_little_memory(tmp_path):
    bomb = tmp_path / "bomb.json.gz"
    _bomb(bomb, 1024)  # about 1 MB that expands to 1 GiB
    assert bomb.stat().st_size < 1_200_000
    code = ("import resource, sys\n"
            "from slimcaching.cli import main\n"
            "rc = main(['validate', sys.argv[1]])\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
            "sys.exit(rc)\n")
    base = subprocess.run([sys.executable, "-c", code, str(TINY)], capture_output=True, text=True, cwd=ROOT)
    r = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 2
    msg, rss = r.stderr.splitlines()
    assert msg.startswith(f"{bomb}: decompresses more than 200 times its compressed size")
    extra_mib = (int(rss) - int(base.stderr.splitlines()[-1])) / 1024
    assert extra_mib < 200, f"the bomb cost {extra_mib:.0f} MiB"


def test_decompressed_size_limit_is_adjustable(tmp_path, monkeypatch):
    f = tmp_path / "i.json.gz"
    f.write_bytes(gzip.compress(TINY.read_bytes()))
    assert read_json(f)["name"] == "example-tiny"
    monkeypatch.setenv("SLIMCACHING_MAX_INPUT_BYTES", "1KiB")
    with pytest.raises(InputError, match=r"i.json.gz: decompresses to more than 1024 bytes, the input limit "
                                         r"\(set SLIMCACHING_MAX_INPUT_BYTES to raise it\)"):
        read_json(f)
    with pytest.raises(InputError, match=r"tiny.json: file has \d+ bytes, more than the input limit of 1024"):
        read_json(TINY)
    monkeypatch.setenv("SLIMCACHING_MAX_INPUT_BYTES", "lots")
    with pytest.raises(InputError, match=r"SLIMCACHING_MAX_INPUT_BYTES: must be a size"):
        read_json(f)


def test_shipped_instances_pass_the_gzip_ratio_limit_from_the_first_byte(monkeypatch):
    """Real files compress 10-25 times: far below the limit of 200 at every point of the stream."""
    import slimcaching.fileio as fileio

    monkeypatch.setattr(fileio, "GZIP_RATIO_AFTER", 1 << 16)
    files = sorted(ROOT.glob("instances/*/*.json.gz"))
    assert len(files) >= 6
    for f in files:
        assert read_json(f)["format"] == "slimcaching-instance/1"
    monkeypatch.setenv("SLIMCACHING_MAX_GZIP_RATIO", "5")
    with pytest.raises(InputError, match="refusing a likely gzip bomb"):
        read_json(files[0])


def test_npy_header_is_checked_against_the_file_size(tmp_path, capsys):
    from numpy.lib import format as npf

    f = tmp_path / "huge.npy"
    with open(f, "wb") as fh:
        npf.write_array_header_1_0(fh, {"descr": "<i8", "fortran_order": False, "shape": (10**9, 32, 2)})
    assert f.stat().st_size < 200
    with pytest.raises(InputError, match=r"huge.npy: header claims shape \(1000000000, 32, 2\) of int64 "
                                         r"\(512000000000 bytes\) but the file holds 0 bytes of data"):
        read_npy(f)
    rc, _, err = _run(capsys, ["from-trace", f, "--model", "mixtral-8x7b"])
    assert rc == 2 and err.count("\n") == 1 and "header claims shape" in err
    ok = tmp_path / "ok.npy"
    np.save(ok, np.arange(12).reshape(2, 3, 2))
    assert np.array_equal(read_npy(ok), np.arange(12).reshape(2, 3, 2))
    ok.write_bytes(ok.read_bytes()[:-8])  # truncated data
    with pytest.raises(InputError, match=r"holds 88 bytes of data"):
        read_npy(ok)


@pytest.mark.parametrize("header", [b"{'descr': '<i8', 'fortran_order': False, 'shape': (10,",
                                    b"{'descr': '<i8', 'fortran_order': False, 'shape': (3, 2,{8), }"])
def test_garbled_npy_header_is_one_line(tmp_path, header):
    """Found by the fuzzer: numpy's header parser raised tokenize.TokenError."""
    from numpy.lib import format as npf

    f = tmp_path / "g.npy"
    pad = header + b" " * (118 - len(header)) + b"\n"
    f.write_bytes(npf.magic(1, 0) + len(pad).to_bytes(2, "little") + pad + b"\0" * 64)
    with pytest.raises(InputError, match=r"g.npy: not a valid .npy header"):
        read_npy(f)


def test_corrupt_store_is_one_line_exit_2(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    db.write_bytes(b"SQLite format 3\0" + bytes(range(256)) * 8)
    rc, _, err = _run(capsys, ["report", db])
    assert rc == 2 and err.count("\n") == 1 and err.startswith(f"{db}: not a readable results database")


def test_endless_device_is_refused_at_the_first_chunk(capsys):
    """/dev/zero used to be read up to the input limit (4 GiB) before failing."""
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    rc, _, err = _run(capsys, ["validate", "/dev/zero"])
    assert rc == 2 and err == "/dev/zero: $: not valid JSON: unexpected byte b'\\x00' at the start\n"


def test_gzip_through_a_fifo(tmp_path):
    fifo = tmp_path / "in.json.gz"
    os.mkfifo(fifo)
    t = threading.Thread(target=lambda: fifo.write_bytes(gzip.compress(TINY.read_bytes())))
    t.start()
    assert read_json(fifo)["name"] == "example-tiny"
    t.join(30)


def test_files_inside_an_input_folder_are_inputs(tmp_path, capsys):
    suite = tmp_path / "suite"
    suite.mkdir()
    shutil.copy(TINY, suite / "a.json")
    rc, _, err = _run(capsys, ["bench", suite, "--db", suite / "a.json", "--algorithms", "cloud", "--no-progress"])
    assert rc == 2 and "--db: " in err and "is an input of this command" in err
    assert (suite / "a.json").read_bytes() == TINY.read_bytes()
