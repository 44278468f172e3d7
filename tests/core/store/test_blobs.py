"""Blob folder: content keys, bit-exact round trips, corruption detection, speed."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pytest

from dosimetry_core.errors import StoreError
from dosimetry_core.store import BlobStore, array_key


@pytest.fixture()
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.mark.parametrize(
    "array",
    [
        np.array([[[0.0, -0.0, np.nan, np.inf], [-np.inf, 1e-45, 3.4e38, -1.5]]], dtype=np.float32),
        np.arange(-32768, 32767, 7, dtype=np.int16)[:9360].reshape(6, 40, 39),
        np.arange(256, dtype=np.uint8).reshape(4, 8, 8),
        np.array([[[True, False, True]], [[False, False, True]]]),
        np.linspace(-1, 1, 60, dtype=np.float64).reshape(3, 4, 5),
        np.arange(24, dtype=np.int32).reshape(2, 3, 4) * -99991,
        np.zeros((0, 3, 4), dtype=np.float32),
    ],
    ids=["float32", "int16", "uint8", "bool", "float64", "int32", "empty"],
)
def test_round_trip_is_bit_exact(blobs: BlobStore, array: np.ndarray) -> None:
    key = blobs.put_array(array)
    back = blobs.get_array(key)
    assert _same_bits(back, array)
    assert back.flags.c_contiguous and back.flags.writeable
    back[...] = 0  # the caller owns the copy


def test_bool_arrays_come_back_as_bool_one_byte_per_voxel(blobs: BlobStore) -> None:
    mask = np.zeros((3, 4, 5), dtype=bool)
    mask[1, 2, 3] = True
    info = blobs.put(mask)
    assert (info.dtype, info.shape, info.nbytes) == ("bool", (3, 4, 5), 60)
    back = blobs.get_array(info.key)
    assert back.dtype == np.bool_ and back.sum() == 1 and back[1, 2, 3]


def test_key_is_sha256_of_canonical_dtype_shape_and_data(blobs: BlobStore) -> None:
    a = np.array([[[1.5, -2.0]]], dtype=np.float32)
    expected = hashlib.sha256(b"<f4|1,1,2\n" + a.tobytes()).hexdigest()
    assert array_key(a) == expected
    assert blobs.put_array(a) == expected
    assert blobs.path_for(expected) == blobs.root / expected[:2] / expected[2:]
    assert blobs.path_for(expected).is_file()


def test_identical_arrays_share_one_file_and_are_not_rewritten(blobs: BlobStore) -> None:
    a = np.arange(1000, dtype=np.int16).reshape(10, 10, 10)
    k1 = blobs.put_array(a)
    inode = blobs.path_for(k1).stat().st_ino
    k2 = blobs.put_array(a.copy())
    assert k1 == k2
    assert blobs.path_for(k1).stat().st_ino == inode  # no rewrite
    assert list(blobs.keys()) == [k1]


def test_dtype_shape_and_byte_order_in_the_key(blobs: BlobStore) -> None:
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    assert array_key(a) != array_key(a.reshape(4, 3, 2))  # same bytes, other shape
    assert array_key(a) != array_key(a.view(np.float32))  # same bytes, other dtype
    big = a.astype(">i4")
    assert array_key(big) == array_key(a)  # byte order normalised to little-endian
    back = blobs.get_array(blobs.put_array(big))
    assert back.dtype == np.dtype("<i4") and np.array_equal(back, a)


def test_non_contiguous_input_is_stored_in_c_order(blobs: BlobStore) -> None:
    a = np.arange(60, dtype=np.float32).reshape(3, 4, 5)
    view = a.transpose(2, 1, 0)[::-1]
    assert not view.flags.c_contiguous
    back = blobs.get_array(blobs.put_array(view))
    assert np.array_equal(back, view) and back.shape == (5, 4, 3)


def test_no_temporary_file_is_left_behind(blobs: BlobStore) -> None:
    blobs.put_array(np.ones((4, 4, 4), dtype=np.float32))
    leftovers = [p for p in blobs.root.rglob("*") if p.is_file() and p.name.startswith(".tmp-")]
    assert leftovers == []


def test_a_modified_byte_is_detected(blobs: BlobStore) -> None:
    a = np.arange(4000, dtype=np.float32).reshape(10, 20, 20)
    key = blobs.put_array(a)
    path = blobs.path_for(key)
    raw = bytearray(path.read_bytes())
    raw[-20] ^= 0x01  # inside the compressed payload
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match=f"blob {key} is corrupt or was modified"):
        blobs.get_array(key)
    assert blobs.verify(key) is not None


def test_a_consistently_rewritten_file_is_detected(blobs: BlobStore) -> None:
    """A valid blob file of other content placed under the key fails the hash check."""
    key = blobs.put_array(np.zeros((2, 2, 2), dtype=np.int16))
    other = blobs.put_array(np.ones((2, 2, 2), dtype=np.int16))
    blobs.path_for(key).write_bytes(blobs.path_for(other).read_bytes())
    with pytest.raises(StoreError, match="content hash does not match"):
        blobs.get_array(key)


def test_truncated_and_missing_files(blobs: BlobStore) -> None:
    key = blobs.put_array(np.ones((5, 5, 5), dtype=np.float32))
    path = blobs.path_for(key)
    path.write_bytes(path.read_bytes()[:30])
    with pytest.raises(StoreError, match="corrupt"):
        blobs.get_array(key)
    path.unlink()
    with pytest.raises(StoreError, match=f"blob {key} is missing: file .*{key[2:]}"):
        blobs.get_array(key)


def test_bad_keys_and_dtypes_are_refused(blobs: BlobStore) -> None:
    with pytest.raises(StoreError, match="not a blob key"):
        blobs.get_array("../../etc/passwd")
    with pytest.raises(StoreError, match="not a blob key"):
        blobs.get_array("A" * 64)
    with pytest.raises(StoreError, match="dtype object"):
        blobs.put_array(np.array([None, 1], dtype=object))


def test_stale_temporary_files_are_removed(blobs: BlobStore) -> None:
    key = blobs.put_array(np.ones((2, 2, 2), dtype=np.uint8))
    tmp = blobs.path_for(key).parent / ".tmp-deadbeef"
    tmp.write_bytes(b"partial")
    assert blobs.remove_stale_temp_files(older_than_s=3600) == 0
    assert blobs.remove_stale_temp_files(older_than_s=0) == 1
    assert not tmp.exists() and blobs.exists(key)


def test_clinical_sized_volumes_round_trip_compressed(blobs: BlobStore) -> None:
    """Clinical-sized SPECT and CT round-trip bit-exactly and compress (times are printed,
    not asserted: speed is for benchmarks)."""
    rng = np.random.default_rng(1)
    z, y, x = np.ogrid[:120, :128, :128]
    spect = (
        2e3 * ((y - 64) ** 2 + (x - 64) ** 2 < 45**2)
        + 5e5 * np.exp(-((z - 60) ** 2 + (y - 50) ** 2 + (x - 70) ** 2) / 50.0)
    ) * rng.gamma(20, 1 / 20, (120, 128, 128))
    spect = spect.astype(np.float32)
    z, y, x = np.ogrid[:115, :192, :192]
    ct = (
        np.where((y - 96) ** 2 / 80**2 + (x - 96) ** 2 / 60**2 < 1, 40, -1000)
        + rng.normal(0, 15, (115, 192, 192))
    ).astype(np.int16)
    for array in (spect, ct):
        t = time.perf_counter()
        key = blobs.put_array(array)
        t_write = time.perf_counter() - t
        t = time.perf_counter()
        back = blobs.get_array(key)
        t_read = time.perf_counter() - t
        assert np.array_equal(back, array)
        size = blobs.path_for(key).stat().st_size
        print(
            f"{array.shape} {array.dtype}: write {t_write * 1e3:.0f} ms, "
            f"read {t_read * 1e3:.0f} ms, {size / array.nbytes:.2f} of {array.nbytes / 1e6:.1f} MB"
        )
        assert size < array.nbytes  # the blob is compressed
