from __future__ import annotations

import numpy as np
import pytest
from reference import REFERENCE

from bench.methods.tf_bundle import Bundle, BundleError, crc32c, masked_crc32c, write_bundle

OFFICIAL = REFERENCE / "deepfill_v1_inpaint_net_variables.tsv"


def official_variables() -> dict[str, tuple[int, ...]]:
    rows = [line.split("\t") for line in OFFICIAL.read_text().splitlines() if not line.startswith("#")]
    return {name: tuple(int(s) for s in shape.split("x")) for name, shape, _ in rows}


def random_tensors(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = official_variables()
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"123456789", 0xE3069283),  # the CRC catalogue's check value for CRC-32C
        (bytes(32), 0x8A9136AA),  # RFC 3720 (iSCSI) B.4: 32 bytes of zeros
        (b"\xff" * 32, 0x62A8AB43),  # RFC 3720 B.4: 32 bytes of ones
        (bytes(range(32)), 0x46DD794E),  # RFC 3720 B.4: incrementing bytes
    ],
)
def test_crc32c_known_vectors(data, expected):
    assert crc32c(data) == expected


def test_masked_crc_is_leveldbs_rotation_plus_constant():
    crc = crc32c(b"foo")
    rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
    assert masked_crc32c(b"foo") == (rotated + 0xA282EAD8) & 0xFFFFFFFF
    assert masked_crc32c(b"foo") != crc


def test_reader_returns_every_tensor_of_a_written_bundle(tmp_path):
    tensors = random_tensors() | {"global_step": np.array(12, np.int64), "flags": np.array([True, False])}
    index = write_bundle(tmp_path / "snap-0", tensors)
    bundle = Bundle(tmp_path)  # the folder, as the releases are distributed
    assert bundle.index == index and bundle.num_shards == 1
    assert set(bundle.entries) == set(tensors)
    for name, array in tensors.items():
        read = bundle.tensor(name)
        assert read.dtype == array.dtype and read.shape == array.shape, name
        assert np.array_equal(read, array), name
    assert bundle.entries["inpaint_net/conv1/kernel"].shape == (5, 5, 5, 32)
    assert Bundle(tmp_path / "snap-0").entries.keys() == Bundle(index).entries.keys()


def test_corrupt_tensor_bytes_are_refused_with_the_tensor_name(tmp_path):
    write_bundle(tmp_path / "snap-0", {"a": np.zeros(4, np.float32), "b": np.ones(4, np.float32)})
    data = tmp_path / "snap-0.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[20] ^= 1  # inside "b" (bytes 16–31)
    data.write_bytes(bytes(raw))
    bundle = Bundle(tmp_path)
    assert np.array_equal(bundle.tensor("a"), np.zeros(4, np.float32))
    with pytest.raises(BundleError, match="b: checksum mismatch"):
        bundle.tensor("b")


def test_corrupt_or_foreign_index_is_refused(tmp_path):
    index = write_bundle(tmp_path / "snap-0", {"a": np.zeros(4, np.float32)})
    raw = bytearray(index.read_bytes())
    raw[3] ^= 0x40
    index.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match="block checksum mismatch"):
        Bundle(index)
    index.write_bytes(b"not a table" * 10)
    with pytest.raises(BundleError, match="not a TensorFlow checkpoint index"):
        Bundle(index)


def test_truncated_data_and_missing_files_are_named(tmp_path):
    write_bundle(tmp_path / "snap-0", {"a": np.zeros(64, np.float32)})
    data = tmp_path / "snap-0.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100])
    with pytest.raises(BundleError, match="ends before"):
        Bundle(tmp_path).tensor("a")
    data.unlink()
    with pytest.raises(BundleError, match=r"data file snap-0.data-00000-of-00001 does not exist"):
        Bundle(tmp_path).tensor("a")
    with pytest.raises(BundleError, match="does not exist"):
        Bundle(tmp_path / "other")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"expected one TensorFlow checkpoint .* none"):
        Bundle(tmp_path / "empty")


def test_tensorflow_reads_our_bundles_and_we_read_its(tmp_path):
    tf = pytest.importorskip("tensorflow", reason="the optional [tf] extra is not installed")
    tensors = random_tensors(1) | {"global_step": np.array(7, np.int64)}
    write_bundle(tmp_path / "ours", tensors)
    reader = tf.train.load_checkpoint(str(tmp_path / "ours"))
    assert set(reader.get_variable_to_shape_map()) == set(tensors)
    for name, array in tensors.items():
        assert np.array_equal(reader.get_tensor(name), array), name
    names = sorted(tensors)
    tf.raw_ops.SaveV2(
        prefix=str(tmp_path / "theirs"),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tensors[n] for n in names],
    )
    bundle = Bundle(tmp_path / "theirs.index")
    assert set(bundle.entries) == set(tensors)
    for name, array in tensors.items():
        assert np.array_equal(bundle.tensor(name), array), name
