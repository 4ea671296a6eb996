"""Tiny hostile weight files are refused cheaply (issue 20, bug 7): each refusal runs in a fresh
process whose peak RSS growth (resource.getrusage) and time are bounded, for generated files: a
stride-0 huge .t7 tensor, trees of shared references of growing depth, a TF index whose
prefix-compressed keys grow by a byte per entry."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from torch7_writer import NUMBER, TABLE, TorchObject, Writer

from bench.methods.tf_bundle import (
    MAX_KEY_LENGTH,
    Bundle,
    BundleError,
    proto_field,
    table_of,
    varint,
)

MAX_GROWTH_MIB = 150  # far below the gigabytes the files claim
MAX_SECONDS = 60

PROBE = """
import json, resource, sys
from bench.core.errors import BadInput
from bench import methods
from bench.methods.tf_bundle import Bundle
kind, path = sys.argv[1:]
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
if kind == "t7":
    methods.create("gl")  # the network itself, before the baseline
before, message = peak(), ""
try:
    if kind == "t7":
        methods.create("gl", checkpoint=path)
    else:
        Bundle(path).tensor("a")
except BadInput as error:
    message = str(error)
print(json.dumps({"grown_mib": (peak() - before) / 1024, "message": message}))
"""


def refusal_cost(kind: str, path: Path) -> tuple[float, str, float]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, kind, str(path)],
        capture_output=True,
        text=True,
        timeout=MAX_SECONDS * 3,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["grown_mib"], result["message"], time.perf_counter() - start


def write_gl_file(path: Path, mean_writer) -> Path:
    """GL's layout (`model`, `mean`) with an empty Sequential and `mean` written by `mean_writer`."""
    with path.open("wb") as handle:
        writer = Writer(handle)
        writer.header(TABLE)
        writer.raw("i", 2)
        writer.write("model")
        writer.write(TorchObject("nn.Sequential", {"modules": []}))
        writer.write("mean")
        mean_writer(writer)
    return path


def stride_zero_tensor(side: int):
    def write(writer: Writer) -> None:
        writer.torch_header("torch.FloatTensor")
        writer.raw("i", 2)
        writer.raw("2q", side, side)
        writer.raw("2q", 0, 0)  # every element is the storage's one value
        writer.raw("q", 1)
        writer.torch_header("torch.FloatStorage")
        writer.raw("q", 1)
        writer.raw("f", 0.5)

    return write


def shared_tree(depth: int):
    """A table whose two entries are one table of depth − 1 (written once, then referenced)."""

    def write(writer: Writer) -> None:
        def level(d: int) -> None:
            if d == 0:  # a table {0.5}
                writer.header(TABLE)
                writer.raw("i", 1)
                writer.write(1)
                writer.raw("id", NUMBER, 0.5)
                return
            writer.header(TABLE)
            writer.raw("i", 2)
            writer.write(1)
            child = writer.index + 1
            level(d - 1)
            writer.write(2)
            writer.raw("ii", TABLE, child)  # a reference to the child already written

        level(depth)

    return write


@pytest.mark.parametrize("side", [16384])
def test_a_stride_zero_t7_tensor_is_refused_without_materialising_it(tmp_path, side):
    path = write_gl_file(tmp_path / "stride0.t7", stride_zero_tensor(side))
    assert path.stat().st_size < 400
    grown, message, seconds = refusal_cost("t7", path)
    assert "reuses the 1 of its storage" in message and "\n" not in message
    assert grown < MAX_GROWTH_MIB and seconds < MAX_SECONDS


@pytest.mark.parametrize("depth", [40])
def test_a_tree_of_shared_references_costs_linear_not_exponential(tmp_path, depth):
    path = write_gl_file(tmp_path / "tree.t7", shared_tree(depth))
    grown, message, seconds = refusal_cost("t7", path)
    assert "data.mean must hold 3 finite numbers" in message and len(message) < 400
    assert grown < MAX_GROWTH_MIB and seconds < MAX_SECONDS


def growing_keys_index(path: Path, entries: int) -> Path:
    """An index block whose every key shares all of the previous key and adds one byte."""
    block = b"".join(varint(i) + varint(1) + varint(0) + b"k" for i in range(entries))
    path.write_bytes(table_of(block + (0).to_bytes(4, "little") + (1).to_bytes(4, "little"), b"k" * entries))
    return path


@pytest.mark.parametrize("entries", [40_000])
def test_a_tf_index_with_growing_keys_is_refused_in_bounded_memory(tmp_path, entries):
    path = growing_keys_index(tmp_path / "snap-0.index", entries)
    grown, message, seconds = refusal_cost("tf", path)
    assert f"at most {MAX_KEY_LENGTH:,}" in message and "\n" not in message
    assert grown < MAX_GROWTH_MIB and seconds < MAX_SECONDS


@pytest.mark.parametrize(("offset", "size"), [(2**64 - 1, 4), (0, 2**63), (7, 4)])
def test_a_tf_entry_past_its_shard_is_one_line(tmp_path, offset, size):
    entry = proto_field(1, 1) + proto_field(2, proto_field(2, proto_field(1, size // 4)))
    entry += proto_field(4, offset) + proto_field(5, size) + proto_field(6, 0, fixed32=True)
    header = proto_field(1, 1)
    block = varint(0) + varint(0) + varint(len(header)) + header
    block += varint(0) + varint(1) + varint(len(entry)) + b"a" + entry
    (tmp_path / "snap-0.index").write_bytes(
        table_of(block + (0).to_bytes(4, "little") + (1).to_bytes(4, "little"), b"a")
    )
    (tmp_path / "snap-0.data-00000-of-00001").write_bytes(bytes(8))
    with pytest.raises(BundleError, match="ends before the tensor's bytes") as refusal:
        Bundle(tmp_path / "snap-0.index").tensor("a")
    assert "\n" not in str(refusal.value)
