"""Read (and, for tests, write) TensorFlow V2 checkpoint bundles without TensorFlow.

A bundle `PREFIX` is `PREFIX.index` plus data shards `PREFIX.data-SSSSS-of-NNNNN`
(tensorflow/core/util/tensor_bundle/tensor_bundle.{h,cc}, naming.cc). The index is a LevelDB
table (table/format.{h,cc}, block_builder.cc: prefix-compressed entries, restart array, a 5-byte
trailer of block type and masked CRC-32C, a 48-byte footer ending in the magic number). Its
values are serialized protocol buffers (tensor_bundle.proto): key "" holds the BundleHeaderProto
(num_shards, endianness), every other key a tensor's BundleEntryProto (dtype, shape, shard_id,
offset, size, masked CRC-32C of the tensor's raw bytes). Tensors are raw little-endian bytes.
Nothing in a bundle is executed: only numbers and names are decoded, and every CRC is checked.
"""

from __future__ import annotations

import glob
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import crc32c as crc32c_package
import numpy as np

from bench.core.errors import MethodError
from bench.core.files import sha256_files

TABLE_MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_TRAILER_SIZE = 5
NO_COMPRESSION = 0
MASK_DELTA = 0xA282EAD8
# tensorflow/core/framework/types.proto: DataType → numpy (little-endian)
DTYPES = {1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 9: "<i8", 10: "?", 17: "<u2", 19: "<f2"}
DTYPE_CODES = {np.dtype(v): k for k, v in DTYPES.items()}


class BundleError(MethodError):
    """A checkpoint bundle that is missing, corrupt or not understood; the message says which."""


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as tensorflow/core/lib/hash/crc32c.h `Value`."""
    return crc32c_package.crc32c(data)


def masked_crc32c(data: bytes) -> int:
    """crc32c.h `Mask`: rotate right by 15 bits and add a constant (how TF and LevelDB store CRCs)."""
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + MASK_DELTA) & 0xFFFFFFFF


@dataclass(frozen=True)
class Entry:
    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    crc: int


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise BundleError("truncated or malformed varint")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if byte < 0x80:
            return value, pos


def proto_fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message: ints for varint/fixed fields, bytes otherwise."""
    fields, pos = [], 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(data, pos)
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, pos = int.from_bytes(data[pos : pos + width], "little"), pos + width
        elif wire == 2:
            length, pos = read_varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        else:
            raise BundleError(f"unsupported protobuf wire type {wire}")
        if pos > len(data):
            raise BundleError("truncated protobuf message")
        fields.append((number, value))
    return fields


def parse_entry(name: str, data: bytes) -> Entry:
    """BundleEntryProto: 1 dtype, 2 shape (TensorShapeProto: 2 dim {1 size}), 3 shard_id, 4 offset,
    5 size, 6 crc32c, 7 slices (partitioned variables: not supported)."""
    values: dict[int, int | bytes] = {}
    shape: list[int] = []
    for number, value in proto_fields(data):
        if number == 2:
            dims = [v for n, v in proto_fields(value) if n == 2]
            shape = [next((s for n, s in proto_fields(d) if n == 1), 0) for d in dims]
        elif number == 7:
            raise BundleError(f"{name}: partitioned (sliced) tensors are not supported")
        else:
            values[number] = value
    return Entry(
        dtype=int(values.get(1, 0)),
        shape=tuple(shape),
        shard=int(values.get(3, 0)),
        offset=int(values.get(4, 0)),
        size=int(values.get(5, 0)),
        crc=int(values.get(6, 0)),
    )


def read_block(table: bytes, offset: int, size: int, source: str) -> bytes:
    end = offset + size + BLOCK_TRAILER_SIZE
    if end > len(table):
        raise BundleError(f"{source}: a block runs past the end of the file (truncated?)")
    contents, kind = table[offset : offset + size], table[offset + size]
    (stored,) = struct.unpack("<I", table[offset + size + 1 : end])
    if masked_crc32c(table[offset : offset + size + 1]) != stored:
        raise BundleError(f"{source}: block checksum mismatch at offset {offset} (corrupt file)")
    if kind != NO_COMPRESSION:  # BundleWriter writes its index with table::kNoCompression
        raise BundleError(f"{source}: compressed index blocks (type {kind}) are not supported")
    return contents


# Bounds of a trustworthy index, checked while it is parsed: TensorFlow variable names are short
# (CA's longest is under 100 bytes) and a checkpoint holds thousands of tensors, not millions.
MAX_KEY_LENGTH = 4096
MAX_ENTRIES = 1_000_000


def block_entries(block: bytes, source: str = "index") -> list[tuple[bytes, bytes]]:
    """The (key, value) pairs of a LevelDB block (block_builder.cc). A key longer than
    MAX_KEY_LENGTH (prefix compression lets keys that grow by a byte cost quadratic memory), a
    shared prefix longer than the previous key, or a value past the block's end is refused."""
    if len(block) < 4:
        raise BundleError(f"{source}: malformed index block")
    (restarts,) = struct.unpack("<I", block[-4:])
    end = len(block) - 4 * (restarts + 1)
    if end < 0:
        raise BundleError(
            f"{source}: malformed index block ({restarts:,} restart points in {len(block):,} bytes)"
        )
    entries, pos, key = [], 0, b""
    while pos < end:
        shared, pos = read_varint(block, pos)
        unshared, pos = read_varint(block, pos)
        value_length, pos = read_varint(block, pos)
        if shared > len(key) or shared + unshared > MAX_KEY_LENGTH or pos + unshared + value_length > end:
            raise BundleError(
                f"{source}: malformed index entry {len(entries)} (a key of {shared + unshared:,} bytes, "
                f"at most {MAX_KEY_LENGTH:,}, sharing {shared:,} with a previous key of {len(key):,})"
            )
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        entries.append((key, block[pos : pos + value_length]))
        pos += value_length
    return entries


def read_table(table: bytes, source: str) -> list[tuple[bytes, bytes]]:
    if len(table) < FOOTER_SIZE or struct.unpack("<Q", table[-8:])[0] != TABLE_MAGIC:
        raise BundleError(f"{source}: not a TensorFlow checkpoint index (no table magic number)")
    footer = table[-FOOTER_SIZE:]
    _, pos = read_varint(footer, 0)
    _, pos = read_varint(footer, pos)  # metaindex handle: unused by TF bundles
    index_offset, pos = read_varint(footer, pos)
    index_size, _ = read_varint(footer, pos)
    entries = []
    for _, handle in block_entries(read_block(table, index_offset, index_size, source), source):
        offset, pos = read_varint(handle, 0)
        size, _ = read_varint(handle, pos)
        entries += block_entries(read_block(table, offset, size, source), source)
        if len(entries) > MAX_ENTRIES:
            raise BundleError(f"{source}: more than {MAX_ENTRIES:,} index entries; not a model checkpoint")
    return entries


def index_path(path: str | Path) -> Path:
    """A bundle's `.index` from itself, its prefix, or a folder holding exactly one bundle."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.index"))
        if len(found) != 1:
            names = ", ".join(p.name for p in found) or "none"
            raise BundleError(f"{path}: expected one TensorFlow checkpoint (*.index) in the folder: {names}")
        return found[0]
    if path.suffix != ".index":
        path = path.with_name(path.name + ".index")
    if not path.is_file():
        raise BundleError(f"checkpoint index {path} does not exist")
    return path


def bundle_files(path: str | Path) -> list[Path]:
    """The files a bundle is read from: its `.index` and its `.data-*-of-*` shards (nothing else
    in its folder: a README or an unrelated file beside it is not part of the checkpoint)."""
    index = index_path(path)
    prefix = index.name[: -len(".index")]
    return [index, *sorted(index.parent.glob(f"{glob.escape(prefix)}.data-*-of-*"))]


def loaded_sha256(path: str | Path) -> str:
    """SHA-256 over the bundle's own files (bundle_files), names relative to its folder."""
    files = bundle_files(path)
    return sha256_files(files[0].parent, files)


class Bundle:
    """The entries of a bundle; `tensor(name)` reads one tensor and checks its CRC-32C."""

    def __init__(self, path: str | Path) -> None:
        self.index = index_path(path)
        self.prefix = str(self.index)[: -len(".index")]
        source = self.index.name
        entries = read_table(self.index.read_bytes(), source)
        header = dict(entries).get(b"")
        if header is None:
            raise BundleError(f"{source}: no bundle header (key '')")
        fields = dict(proto_fields(header))
        self.num_shards, endianness = int(fields.get(1, 1)), int(fields.get(2, 0))
        if endianness != 0:
            raise BundleError(f"{source}: big-endian bundles are not supported")
        names = {k: k.decode(errors="backslashreplace") for k, _ in entries}  # never a traceback
        self.entries = {names[k]: parse_entry(names[k], v) for k, v in entries if k}

    def shard_path(self, shard: int) -> Path:
        return Path(f"{self.prefix}.data-{shard:05d}-of-{self.num_shards:05d}")

    def tensor(self, name: str) -> np.ndarray:
        entry = self.entries[name]
        if entry.dtype not in DTYPES:
            raise BundleError(f"{name}: unsupported TensorFlow dtype code {entry.dtype}")
        dtype = np.dtype(DTYPES[entry.dtype])
        if entry.size != dtype.itemsize * math.prod(entry.shape):  # Python ints: never wraps around
            shape = entry.shape if len(entry.shape) <= 8 else f"of {len(entry.shape)} dimensions"
            raise BundleError(f"{name}: {entry.size:,} bytes ≠ a {dtype} tensor of shape {shape}")
        shard = self.shard_path(entry.shard)
        if not shard.is_file():
            raise BundleError(f"{name}: data file {shard.name} does not exist")
        if entry.offset + entry.size > shard.stat().st_size:
            raise BundleError(
                f"{name}: {shard.name} ends before the tensor's bytes {entry.offset:,}–"
                f"{entry.offset + entry.size:,} ({shard.stat().st_size:,} bytes; truncated, or damaged index)"
            )
        with shard.open("rb") as file:
            file.seek(entry.offset)
            data = file.read(entry.size)
        if len(data) != entry.size:
            raise BundleError(f"{name}: {shard.name} ends before the tensor's bytes (truncated?)")
        if masked_crc32c(data) != entry.crc:
            raise BundleError(f"{name}: checksum mismatch in {shard.name} (corrupt data)")
        return np.frombuffer(data, dtype).reshape(entry.shape).astype(dtype.newbyteorder("="))


def varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def proto_field(number: int, value: int | bytes, fixed32: bool = False) -> bytes:
    if fixed32:
        return varint(number << 3 | 5) + struct.pack("<I", value)
    if isinstance(value, bytes):
        return varint(number << 3 | 2) + varint(len(value)) + value
    return varint(number << 3) + varint(value)


def build_block(entries: list[tuple[bytes, bytes]]) -> bytes:
    """A LevelDB block with prefix-compressed keys and one restart point."""
    out, previous = bytearray(), b""
    for key, value in entries:
        shared = next((i for i, (a, b) in enumerate(zip(previous, key, strict=False)) if a != b), None)
        shared = min(len(previous), len(key)) if shared is None else shared
        out += varint(shared) + varint(len(key) - shared) + varint(len(value)) + key[shared:] + value
        previous = key
    return bytes(out) + struct.pack("<II", 0, 1)


def table_of(block: bytes, last_key: bytes) -> bytes:
    """An index file (a LevelDB table) holding one data block `block` whose last key is `last_key`."""
    table = bytearray()

    def add_block(block: bytes) -> bytes:
        handle = varint(len(table)) + varint(len(block))
        table.extend(block + bytes([NO_COMPRESSION]))
        table.extend(struct.pack("<I", masked_crc32c(block + bytes([NO_COMPRESSION]))))
        return handle

    data_handle = add_block(block)
    meta_handle = add_block(build_block([]))
    index_handle = add_block(build_block([(last_key + b"\xff", data_handle)]))
    footer = (meta_handle + index_handle).ljust(FOOTER_SIZE - 8, b"\0") + struct.pack("<Q", TABLE_MAGIC)
    return bytes(table) + footer


def write_bundle(prefix: str | Path, tensors: dict[str, np.ndarray]) -> Path:
    """A single-shard, uncompressed V2 bundle of `tensors` (for tests); returns the `.index` path."""
    data, entries = bytearray(), [(b"", proto_field(1, 1) + proto_field(3, proto_field(1, 1)))]
    for name in sorted(tensors):
        array = np.asarray(tensors[name], order="C")
        raw = array.astype(array.dtype.newbyteorder("<")).tobytes()
        shape = b"".join(proto_field(2, proto_field(1, size)) for size in array.shape)
        entry = proto_field(1, DTYPE_CODES[array.dtype.newbyteorder("<")]) + proto_field(2, shape)
        entry += proto_field(4, len(data)) + proto_field(5, len(raw))
        entry += proto_field(6, masked_crc32c(raw), fixed32=True)
        entries.append((name.encode(), entry))
        data += raw
    index = Path(f"{prefix}.index")
    index.write_bytes(table_of(build_block(entries), entries[-1][0]))
    Path(f"{prefix}.data-00000-of-00001").write_bytes(bytes(data))
    return index
