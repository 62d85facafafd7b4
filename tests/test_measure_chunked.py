"""describe_chunked (issue 16): every descriptor of a chunked store, block by block, equals
the in-memory describe of the same voxels -- bit for bit for the counts (V, S, M, chi, C(h),
CPSD), and the windowed global descriptors say so and equal in-memory runs on the windows."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from cbagpu.cli import main
from cbagpu.errors import InvalidInputError
from cbagpu.io.zarr_store import create_label_store
from cbagpu.measure import chunked
from cbagpu.measure.chunked import describe_chunked
from cbagpu.measure.describe import describe
from cbagpu.measure.geodesic import geodesic_tortuosity
from cbagpu.measure.intrusion import constrictivity
from cbagpu.measure.phases import phase_mask

S = 20.0
SHAPE = (37, 41, 45)
LAG = 9  # voxels


def balls(shape: tuple[int, ...], seed: int, n: int = 60, rmax: int = 9) -> np.ndarray:
    """Labels 0/1/2: a Boolean model of balls of radii 2..rmax (1 and 2 alternating); its
    pores are wider than the small blocks of the tests."""
    rng = np.random.default_rng(seed)
    grid = np.indices(shape).reshape(3, -1).T.astype(np.float64)
    lab = np.zeros(int(np.prod(shape)), np.uint8)
    for i in range(n):
        c = rng.uniform(0, 1, 3) * shape
        r = rng.uniform(2, rmax)
        lab[np.sum((grid - c) ** 2, axis=1) <= r * r] = 1 + i % 2
    return lab.reshape(shape)


@pytest.fixture(scope="module")
def labels() -> np.ndarray:
    return balls(SHAPE, 7)


@pytest.fixture(scope="module")
def reference(labels: np.ndarray) -> dict:
    return describe(labels, S, max_lag=LAG * S, backend="numpy").to_dict()


def store(path, labels: np.ndarray, chunks, attrs=None) -> str:
    a = {"voxel_size": S, "generator": "test", "chunks": list(chunks)}
    a.update(attrs or {})
    create_label_store(path, labels.shape, tuple(chunks), a)
    from cbagpu.io.zarr_store import zarr_module

    zarr_module().open_array(store=str(path), mode="r+")[...] = labels
    return str(path)


def assert_same(ref: dict, got: dict) -> None:
    """Every descriptor of every phase equal (NaN equal to NaN), bit for bit."""
    for p in ("solid", "pore", "graphite"):
        for k, v in ref[p].items():
            if k == "seconds":
                continue
            w = got[p][k]
            a = json.dumps(v, sort_keys=True)
            b = json.dumps(w, sort_keys=True)
            assert a == b, f"{p} {k}: in memory {a[:200]} chunked {b[:200]}"


SMALL = (18, 19, 20)
_REFS: dict = {}


def image_and_reference(shape: tuple[int, ...]) -> tuple[np.ndarray, dict]:
    if shape not in _REFS:
        lab = balls(shape, 7) if shape == SHAPE else balls(shape, 3, n=14, rmax=6)
        _REFS[shape] = (lab, describe(lab, S, max_lag=LAG * S, backend="numpy").to_dict())
    return _REFS[shape]


@pytest.mark.parametrize(("shape", "chunks"), [
    (SHAPE, SHAPE),  # a single chunk
    (SHAPE, (16, 16, 16)),  # does not divide the shape
    (SHAPE, (37, 5, 45)),  # slabs
    (SMALL, (5, 6, 7)),  # edges smaller than the largest pore, many chunks (48)
    pytest.param(SHAPE, (7, 9, 11), marks=pytest.mark.slow),  # the same, 150 chunks
])
def test_store_equals_in_memory(tmp_path, monkeypatch, shape, chunks):
    monkeypatch.setattr(chunked, "DEFAULT_BLOCK", 1)  # blocks = the store's chunks
    labels, reference = image_and_reference(shape)
    path = store(tmp_path / "v.zarr", labels, chunks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # small blocks: the halo warning
        got = describe_chunked(path, max_lag=LAG * S, backend="numpy")
    d = got.to_dict()
    assert_same(reference, d)
    nblocks = math.prod(math.ceil(n / c) for n, c in zip(shape, chunks, strict=True))
    assert d["meta"]["chunking"]["blocks"] == nblocks
    assert d["meta"]["voxel_size"] == S  # from the store's attributes
    assert d["pore"]["global_descriptors"]["method"].startswith("whole volume")
    if max(chunks) < 12:  # the largest pore is wider than the blocks: so is the CPSD halo
        assert d["pore"]["r_max"] > 0
        assert d["meta"]["chunking"]["cpsd_halo"]["pore"] > max(chunks)


def test_dask_and_numpy_sources():
    da = pytest.importorskip("dask.array")
    labels, reference = image_and_reference(SMALL)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = describe_chunked(da.from_array(labels, chunks=(8, 10, 9)), S,
                               max_lag=LAG * S, backend="numpy")
        assert got.to_dict()["meta"]["chunking"]["source"] == "dask array"
        assert got.to_dict()["meta"]["chunking"]["blocks"] == 3 * 2 * 3
        assert_same(reference, got.to_dict())
        got = describe_chunked(labels, S, max_lag=LAG * S, backend="numpy", block=(10, 7, 20))
    assert_same(reference, got.to_dict())


def test_degenerate_phases_match():
    """A phase filling the window (r_max inf), an absent one (NaN): as in memory."""
    lab = np.zeros((12, 10, 11), np.uint8)
    ref = describe(lab, S, max_lag=3 * S, backend="numpy").to_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = describe_chunked(lab, S, max_lag=3 * S, backend="numpy", block=4).to_dict()
    assert_same(ref, got)
    assert got["pore"]["r_max"] is None and ref["pore"]["r_max"] is None


def test_windowed_global_descriptors_say_so(labels):
    """window < shape: mean and spread over the windows, each equal to an in-memory run."""
    got = describe_chunked(labels, S, max_lag=4 * S, backend="numpy", window=18)
    g = got.to_dict()["pore"]["global_descriptors"]
    # floor(37/18) = floor(41/18) = floor(45/18) = 2 windows per axis, nearly equal
    assert g["method"].startswith("windows of about 18x20x22 voxels (8 windows")
    assert g["windows"] == 8
    taus, betas = [], []
    e = [[0, 18, 37], [0, 20, 41], [0, 22, 45]]
    for z in range(2):
        for y in range(2):
            for x in range(2):
                w = labels[e[0][z]:e[0][z + 1], e[1][y]:e[1][y + 1], e[2][x]:e[2][x + 1]]
                m = phase_mask(w, "pore")
                betas.append(constrictivity(m, S, axis=0, backend="numpy").beta)
                t = geodesic_tortuosity(m, S, axis=0, backend="numpy").tau
                if math.isfinite(t):
                    taus.append(t)
    assert g["constrictivity"]["mean"] == pytest.approx(np.mean(betas), rel=1e-12)
    assert g["constrictivity"]["std"] == pytest.approx(np.std(betas, ddof=1), rel=1e-12)
    assert g["geodesic_tortuosity"]["n"] == len(taus) == g["percolating_windows"]
    assert got.phases["pore"].geodesic_tortuosity == pytest.approx(np.mean(taus), rel=1e-12)
    assert got.phases["pore"].constrictivity == pytest.approx(np.mean(betas), rel=1e-12)


def test_bad_input(tmp_path, labels):
    inc = store(tmp_path / "inc.zarr", labels, (16, 16, 16), {"incomplete": True})
    with pytest.raises(InvalidInputError, match="incomplete"):
        describe_chunked(inc)
    with pytest.raises(InvalidInputError, match="dtype float"):
        describe_chunked(labels.astype(np.float32), S)
    from cbagpu.io.formats import create_zarr_array

    f = create_zarr_array(tmp_path / "f.zarr", (8, 8, 8), (4, 4, 4), np.float32,
                          {"voxel_size": S})
    with pytest.raises(InvalidInputError, match="dtype float32"):
        describe_chunked(str(tmp_path / "f.zarr"))
    del f
    bad = labels.copy()
    bad[3, 4, 5] = 7
    with pytest.raises(InvalidInputError, match="found values"):
        describe_chunked(bad, S, block=16)
    with pytest.raises(InvalidInputError, match="voxel_size"):
        describe_chunked(labels)
    with pytest.raises(InvalidInputError, match="block"):
        describe_chunked(labels, S, block=0)


def test_halo_dominates_warns(labels):
    with pytest.warns(UserWarning, match="blocks too small for the halo of C\\(h\\)"):
        describe_chunked(labels[:12, :12, :12], S, max_lag=5 * S, backend="numpy", block=4,
                         phases=("solid",))


def test_cli_store(tmp_path, monkeypatch, labels, reference, capsys):
    monkeypatch.setattr(chunked, "DEFAULT_BLOCK", 1)  # blocks = the store's chunks
    # 2 x 2 x 1 blocks, ragged (37 = 19 + 18, 41 = 21 + 20), each task box at most ~4x its
    # block: halving all three axes of this small volume would make every task read over
    # 8x its block (the halos reach across it) and draw the "blocks too small" warning
    path = store(tmp_path / "v.zarr", labels, (19, 21, 45))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        assert main(["describe", path, "--json", "--quiet", "--workers", "1", "--max-lag",
                     str(LAG * S), "--backend", "numpy"]) == 0
        d = json.loads(capsys.readouterr().out)
        assert_same(reference, d)
        assert d["meta"]["chunking"]["blocks"] == 2 * 2 * 1
        assert d["meta"]["chunking"]["source"] == "zarr store"
        # a store written block-wise (attribute "chunks") is described block by block unasked
        assert main(["describe", path, "--quiet", "--workers", "1", "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    assert "chunked: 4 blocks" in out and "whole volume" in out


@pytest.mark.slow
def test_local_cluster_of_two_workers(tmp_path, monkeypatch):
    """The same numbers through a 2-process Dask LocalCluster (tasks pickled, the store
    opened by each worker)."""
    pytest.importorskip("distributed")
    labels, reference = image_and_reference(SMALL)
    path = store(tmp_path / "v.zarr", labels, (9, 10, 10))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = describe_chunked(path, max_lag=LAG * S, backend="numpy", workers=2, block=9)
    assert_same(reference, got.to_dict())
    assert got.chunking["workers"] == 2


def test_default_blocks_group_store_chunks(tmp_path):
    """A store's chunks are grouped into blocks of DEFAULT_BLOCK voxels (here 256 > shape:
    one block); the numbers do not change."""
    labels, reference = image_and_reference(SMALL)
    path = store(tmp_path / "v.zarr", labels, (5, 6, 7))
    got = describe_chunked(path, max_lag=LAG * S, backend="numpy").to_dict()
    assert got["meta"]["chunking"]["blocks"] == 1
    assert_same(reference, got)


def test_cli_refuses_incomplete_store(tmp_path, labels, capsys):
    inc = store(tmp_path / "inc.zarr", labels[:8, :8, :8], (4, 4, 4), {"incomplete": True})
    assert main(["describe", inc, "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "incomplete" in err[0]
    assert main(["describe", str(tmp_path / "x.npy"), "--chunked"]) == 2
    assert "needs a .zarr store" in capsys.readouterr().err


@pytest.mark.slow
def test_store_of_generate_chunks(tmp_path):
    """A store written by the block-wise generator (its attributes give the voxel size) equals
    the in-memory describe of the same store read whole; blocks smaller than its chunks."""
    from cbagpu.io import read_image
    from cbagpu.params import preset
    from cbagpu.studies.volume import generate_zarr

    path = tmp_path / "g.zarr"
    generate_zarr(preset("paper"), (24, 24, 24), 80.0, 1, path, chunks=12, backend="numpy",
                  workers=1)
    lab, _ = read_image(path)
    ref = describe(lab, 80.0, max_lag=11 * 80.0, backend="numpy").to_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        got = describe_chunked(str(path), max_lag=11 * 80.0, backend="numpy", block=5)
    assert got.voxel_size == 80.0
    assert_same(ref, got.to_dict())


def test_closing_euler_is_refused_before_any_work(tmp_path):
    """The guarded closing looks at whole groups of voxels, which may cross blocks: in
    memory only."""
    labels, _ = image_and_reference(SMALL)
    path = store(tmp_path / "v.zarr", labels, (7, 8, 9))
    with pytest.raises(InvalidInputError, match="in memory"):
        describe_chunked(path, backend="numpy", euler="closing")
    with pytest.raises(InvalidInputError, match="euler"):
        describe_chunked(path, backend="numpy", euler="smooth")
