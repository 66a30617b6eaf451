"""Vector files: seeded, reproducible, and refused with a clear message when bad."""

import json

import numpy as np
import pytest

from pyref import ops, vectors
from pyref.vectors import VectorError


@pytest.fixture
def vector_dir(tmp_path):
    for name in ("requant", "mac"):
        vectors.write(name, tmp_path, seed=5)
    return tmp_path


def test_same_seed_same_vectors_other_seed_other_vectors(tmp_path):
    a = vectors.load("mac", vectors.write("mac", tmp_path / "a", 1).parent)
    b = vectors.load("mac", vectors.write("mac", tmp_path / "b", 1).parent)
    c = vectors.load("mac", vectors.write("mac", tmp_path / "c", 2).parent)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["act"][:100], c["act"][:100])


def test_expected_values_come_from_pyref(vector_dir):
    v = vectors.load("requant", vector_dir, seed=5)
    assert np.array_equal(v["y"], ops.requantise(v["x"]))
    m = vectors.load("mac", vector_dir, seed=5)
    assert [int(ops.dot(m["act"][span], m["weight"][span]))
            for span in vectors.segments(m["lengths"])] == m["acc"].tolist()


def test_manifest_records_formats_shapes_seed_and_hash(vector_dir):
    manifest = json.loads((vector_dir / "mac.json").read_text())
    assert manifest["seed"] == 5 and manifest["formats"]["ACT"]["bits"] == 16
    assert set(manifest["arrays"]) == {"act", "weight", "lengths", "acc"}
    assert len(manifest["sha256"]) == 64


def test_missing_file_names_it_and_the_fix(tmp_path):
    with pytest.raises(VectorError, match=r"mac\.npz is missing.*make vectors"):
        vectors.load("mac", tmp_path)


def test_corrupt_file_is_refused(vector_dir):
    path = vector_dir / "mac.npz"
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(VectorError, match=r"mac\.npz does not match.*sha256.*make vectors"):
        vectors.load("mac", vector_dir)


def test_corrupt_manifest_is_refused(vector_dir):
    (vector_dir / "mac.json").write_text("{not json")
    with pytest.raises(VectorError, match=r"corrupt.*make vectors"):
        vectors.load("mac", vector_dir)


def test_stale_file_is_refused(vector_dir, monkeypatch):
    monkeypatch.setattr(vectors, "fingerprint", lambda: "another-model")
    with pytest.raises(VectorError, match=r"stale.*make vectors"):
        vectors.load("mac", vector_dir)


def test_other_seed_is_refused_and_ensure_regenerates(vector_dir):
    with pytest.raises(VectorError, match=r"SEED=5, not SEED=6"):
        vectors.load("mac", vector_dir, seed=6)
    vectors.ensure("mac", vector_dir, 6)
    assert vectors.check("mac", vector_dir, 6)["seed"] == 6


def test_unknown_set_lists_the_known_ones(tmp_path):
    with pytest.raises(VectorError, match="unknown vector set 'nope'.*mac"):
        vectors.write("nope", tmp_path, 0)


@pytest.mark.parametrize("name", list(vectors.GENERATORS))
def test_same_seed_gives_byte_identical_files(tmp_path, name):
    first = vectors.write(name, tmp_path / "a", 9)
    second = vectors.write(name, tmp_path / "b", 9)
    assert first.with_suffix(".npz").read_bytes() == second.with_suffix(".npz").read_bytes()
    assert first.read_text() == second.read_text()
