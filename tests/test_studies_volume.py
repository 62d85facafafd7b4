"""Block-wise generation into Zarr (cbagpu.studies.volume, issue 6 items 3-4, issue 16
item 4).

The reference is ``generate`` of the whole window on the same backend: by the engine's
window consistency the chunked store must equal it byte for byte, through a local Dask
cluster of 2 processes as well as in-process, for chunk shapes that divide the shape or not,
and after an interrupted generation has been resumed (finished tasks kept, not recomputed).
The cost is counted, not timed: the number of block FFTs equals that of the in-memory
generation of the window, whatever the number of chunks.

Task counts below are worked out by hand from the field-block grid: at 80 nm the blocks
have 108 voxels, so the window z in [50, 146), y in [-40, 40), x in [0, 64) meets the 4
blocks (0|1, -1|0, 0) with borders at z = 108 and y = 0.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import zarr

from cbagpu import generate, preset
from cbagpu.io import read_image, write_image
from cbagpu.memory import InsufficientMemoryError
from cbagpu.simulate.realization import realize
from cbagpu.studies import volume
from cbagpu.studies.tasks import TaskStore
from cbagpu.studies.volume import (
    INCOMPLETE_ATTR,
    TASKS_DIR,
    chunk_grid,
    generate_zarr,
    normalise_chunks,
)

SHAPE = (96, 80, 64)
VOXEL = 80.0  # field blocks of 108 voxels (FFT 160^3): cheap chunks on the 2-core CPU
ORIGIN = (50, -40, 0)  # the window crosses field-block boundaries at z = 108 and y = 0
SEED = 7
PARAMS = preset("paper")


def gen(path, **kw):
    """generate_zarr of the test window (NumPy backend unless told otherwise)."""
    kw = {"origin": ORIGIN, "backend": "numpy"} | kw
    return generate_zarr(PARAMS, SHAPE, VOXEL, SEED, path, **kw)


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return generate(PARAMS, SHAPE, VOXEL, SEED, origin=ORIGIN, backend="numpy")


@pytest.fixture(scope="module")
def odd_store(tmp_path_factory, reference) -> Path:
    """Chunks (40, 48, 64): 96 = 40+40+16, 80 = 48+32 -> 6 chunks, in-process."""
    path = tmp_path_factory.mktemp("odd") / "odd.zarr"
    r = gen(path, chunks=(40, 48, 64), workers=1)
    # z chunks [50,90) [90,130)* [130,146), y chunks [-40,8)* [8,40): * crosses a border;
    # 2 of the 6 chunks lie inside one block, 4 are assembled: 4 field + 4 chunk tasks
    assert (r.tasks_total, r.tasks_computed, r.tasks_reused, r.field_blocks) == (8, 8, 0, 4)
    assert r.chunks == (40, 48, 64)
    return path


def _chunk_files(path: Path) -> dict[str, tuple[int, int]]:
    """Zarr v2 chunk files ('i.j.k') -> (inode, mtime_ns): a rewrite changes both."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in path.iterdir() if p.is_file() and not p.name.startswith(".")}


# ----------------------------------------------------------------------------- chunking
def test_chunk_grid_covers_the_window_once():
    grid = chunk_grid((10, 7, 5), (4, 3, 5))
    cover = np.zeros((10, 7, 5), int)
    for _, start, size in grid:
        cover[tuple(slice(s, s + n) for s, n in zip(start, size, strict=True))] += 1
    assert (cover == 1).all()
    assert len(grid) == 3 * 3 * 1
    assert grid[-1] == ((2, 2, 0), (8, 6, 0), (2, 1, 5))


def test_chunks_are_clipped_to_the_shape():
    assert normalise_chunks(512, (96, 80, 64)) == (96, 80, 64)
    assert normalise_chunks((8, 100, np.int64(3)), (10, 10, 10)) == (8, 10, 3)


@pytest.mark.parametrize("bad", [0, -32, 2.5, 32.0, True, "32", (32, 32), (32, 0, 32),
                                 (32, 32, 1.5), None])
def test_bad_chunks_refused_before_writing(tmp_path, bad):
    path = tmp_path / "bad.zarr"
    with pytest.raises(ValueError, match="chunk"):
        gen(path, chunks=bad, workers=1)
    assert not path.exists()


def test_other_bad_arguments_refused(tmp_path):
    with pytest.raises(ValueError, match=r"\.zarr"):
        gen(tmp_path / "x.tif", chunks=32, workers=1)
    with pytest.raises(ValueError, match="workers"):
        gen(tmp_path / "x.zarr", workers=0)
    with pytest.raises(ValueError, match="not both"):
        gen(tmp_path / "x.zarr", workers=2,
                      scheduler="tcp://127.0.0.1:1")
    assert list(tmp_path.iterdir()) == []


def test_chunk_too_large_for_memory_refused_before_writing(tmp_path, monkeypatch):
    monkeypatch.setattr(volume, "host_available_memory", lambda: 64 << 20)
    path = tmp_path / "big.zarr"
    with pytest.raises(InsufficientMemoryError, match="per worker"):
        gen(path, chunks=32, workers=1)
    assert not path.exists()


# ----------------------------------------------------------------------------- equality
def test_dask_two_processes_equal_whole_window(tmp_path, reference):
    path = tmp_path / "dask.zarr"
    seen: list[tuple[int, int]] = []
    r = gen(path, chunks=32, workers=2, progress=lambda d, t, left: seen.append((d, t)))
    # 18 chunks; z [82,114) and y [-8,24) cross borders: 2*2*2 inside, 10 assembled
    assert (r.tasks_total, r.tasks_computed, r.tasks_reused) == (14, 14, 0)
    assert seen[0] == (0, 14) and seen[-1] == (14, 14)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    data, meta = read_image(path)
    assert data.dtype == np.uint8 and data.shape == SHAPE
    assert data.tobytes() == reference.tobytes()
    assert zarr.open_array(str(path), mode="r").chunks == (32, 32, 32)
    counts = np.bincount(reference.ravel(), minlength=3)
    assert r.fractions == pytest.approx(dict(zip(("pore", "cbd", "graphite"),
                                                 counts / reference.size, strict=True)))


def test_in_process_odd_chunks_equal_whole_window(odd_store, reference):
    data, _ = read_image(odd_store)
    assert data.tobytes() == reference.tobytes()
    assert zarr.open_array(str(odd_store), mode="r").chunks == (40, 48, 64)
    assert not (odd_store / TASKS_DIR).exists()


def test_origin_is_honoured(tmp_path):
    origin = (-20, 13, 1000)
    ref = generate(PARAMS, (40, 30, 20), VOXEL, SEED, origin=origin, backend="numpy")
    r = generate_zarr(PARAMS, (40, 30, 20), VOXEL, SEED, tmp_path / "o.zarr", chunks=(24, 30, 20),
                      origin=origin, backend="numpy", workers=1)
    data, meta = read_image(r.path)
    assert data.tobytes() == ref.tobytes()
    assert meta["origin"] == list(origin)


def test_metadata_matches_write_image_of_a_generated_image(odd_store, reference):
    _, meta = read_image(odd_store)
    expected = realize(PARAMS, SHAPE, VOXEL, SEED, origin=ORIGIN, backend="numpy").metadata()
    for key, value in expected.items():
        if key in ("created", "generator"):
            continue
        assert meta[key] == json.loads(json.dumps(value)), key
    assert meta["generator"] == volume.GENERATOR
    assert meta["chunks"] == [40, 48, 64]
    assert INCOMPLETE_ATTR not in meta
    counts = np.bincount(reference.ravel(), minlength=3)
    assert meta["label_counts"] == {"pore": counts[0], "cbd": counts[1], "graphite": counts[2]}


def test_rerun_of_a_finished_store_does_nothing(odd_store):
    before = _chunk_files(odd_store)
    r = gen(odd_store, chunks=(40, 48, 64), workers=1)
    assert (r.tasks_total, r.tasks_computed, r.tasks_reused) == (8, 0, 8)
    assert _chunk_files(odd_store) == before


# ----------------------------------------------------------------------------- cost
def test_plan_covers_every_chunk_once_and_the_window_once():
    """Field regions tile the window; each chunk lies in one region or is a border chunk
    whose pieces (its intersections with the regions it meets) tile it."""
    from cbagpu.studies.volume import _intersect, _plan

    shape, origin, block = (50, 31, 17), (-7, 100, 3), 12
    plan = _plan(shape, (9, 31, 5), origin, block)
    cover = np.zeros(shape, int)
    for (z, y, x), (start, size) in plan.regions.items():
        assert all(b * block <= o + s and o + s + n <= (b + 1) * block
                   for b, o, s, n in zip((z, y, x), origin, start, size, strict=True))
        cover[tuple(slice(s, s + n) for s, n in zip(start, size, strict=True))] += 1
    assert (cover == 1).all()
    chunks = np.zeros(shape, int)
    for b, inner in plan.inner.items():
        for _, (start, size) in inner:
            assert _intersect((start, size), plan.regions[b]) == (start, size)
            chunks[tuple(slice(s, s + n) for s, n in zip(start, size, strict=True))] += 1
    for _, box, meets in plan.border:
        assert len(meets) > 1
        for b in meets:
            start, size = _intersect(box, plan.regions[b])
            assert min(size) > 0
            chunks[tuple(slice(s, s + n) for s, n in zip(start, size, strict=True))] += 1
    assert (chunks == 1).all()
    assert len(_plan(shape, (50, 31, 17), (0, 0, 0), 64).border) == 0


def test_field_tasks_on_the_cpu_run_in_process_by_default():
    """A field task uses every core: no local cluster unless workers are asked for."""
    from cbagpu.simulate.realization import MemoryEstimate

    def est(_):
        return MemoryEstimate(1, 0)

    assert volume._plan_local("numpy", None, 8, est, "x") == ("numpy", 1)
    assert volume._plan_local("numpy", 2, 8, est, "x") == ("numpy", 2)
    assert volume._plan_local("numpy", 4, 1, est, "x") == ("numpy", 4)  # run_tasks caps it


@pytest.fixture
def count_ffts(monkeypatch):
    """Count the forward block FFTs of the NumPy backend (one per field block computed)."""
    from cbagpu.backend.numpy_backend import NumPyBackend

    calls = [0]
    real = NumPyBackend.rfftn

    def rfftn(self, a):
        calls[0] += 1
        return real(self, a)

    monkeypatch.setattr(NumPyBackend, "rfftn", rfftn)
    return calls


@pytest.mark.parametrize(
    "chunks",
    [16,  # 6x5x4 = 120 chunks, edge below the kernel halo (26 voxels at 80 nm)
     (40, 48, 64),  # does not divide the shape
     (17, 80, 9),  # nor this, thin in x
     512],  # one chunk
)
def test_block_ffts_do_not_grow_with_the_chunks(tmp_path, reference, count_ffts, chunks):
    """As many block FFTs as the in-memory generation of the window (4 blocks), whatever
    the number of chunks; the labels are those of the in-memory generation."""
    generate(PARAMS, SHAPE, VOXEL, SEED, origin=ORIGIN, backend="numpy")
    assert count_ffts[0] == 4
    count_ffts[0] = 0
    r = gen(tmp_path / "n.zarr", chunks=chunks, workers=1)
    assert count_ffts[0] == 4 == r.field_blocks
    data, _ = read_image(r.path)
    assert data.tobytes() == reference.tobytes()
    count_ffts[0] = 0
    again = gen(tmp_path / "n.zarr", chunks=chunks, workers=1)  # finished: nothing redone
    assert count_ffts[0] == 0 and again.tasks_computed == 0


# ----------------------------------------------------------------------------- refusals
@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"seed": SEED + 1}, "seed"),
        ({"chunks": 48}, "chunks"),
        ({"shape": (96, 80, 63)}, "shape"),
        ({"voxel_size": 40.0}, "voxel_size"),
        ({"params": PARAMS.replace(lambda_x=2.21e-11)}, "params.lambda_x"),
        ({"origin": (0, 0, 1)}, "origin"),
    ],
)
def test_other_settings_into_the_same_store_refused(odd_store, change, named):
    before = _chunk_files(odd_store)
    kw = {"params": PARAMS, "shape": SHAPE, "voxel_size": VOXEL, "seed": SEED,
          "chunks": (40, 48, 64)} | change
    with pytest.raises(ValueError, match=rf"other settings: .*{named} \(stored"):
        generate_zarr(kw["params"], kw["shape"], kw["voxel_size"], kw["seed"], odd_store,
                      chunks=kw["chunks"], origin=kw.get("origin", ORIGIN), backend="numpy",
                      workers=1)
    assert _chunk_files(odd_store) == before


def test_foreign_store_refused(tmp_path, reference):
    path = tmp_path / "plain.zarr"
    write_image(path, reference[:8, :8, :8], {"voxel_size": VOXEL})
    with pytest.raises(FileExistsError, match="not a block-wise generation"):
        gen(path, chunks=32, workers=1)
    (tmp_path / "dir.zarr").mkdir()
    with pytest.raises(FileExistsError, match="not a block-wise generation"):
        gen(tmp_path / "dir.zarr", chunks=32, workers=1)


# ----------------------------------------------------------------------------- resuming
def test_failed_field_block_then_rerun_recomputes_only_it(tmp_path, reference, monkeypatch):
    """In-process: one field block raises; the others are kept; the rerun generates that
    block alone and then assembles the chunks crossing its borders."""
    path = tmp_path / "fail.zarr"
    calls: list[tuple[int, ...]] = []
    real = volume.generate
    broken = [(108, -40, 0)]  # field block (1, -1, 0)

    def flaky(params, shape, voxel_size, seed, origin=(0, 0, 0), **kw):
        calls.append(tuple(origin))
        if tuple(origin) in broken:
            raise OSError("disk on fire")
        return real(params, shape, voxel_size, seed, origin=origin, **kw)

    monkeypatch.setattr(volume, "generate", flaky)
    # chunks (48, 48, 64): z [50,98) [98,146)*, y [-40,8)* [8,40): 1 inside, 3 assembled
    with pytest.raises(RuntimeError, match=r"1 of 4 tasks failed: field-1\.-1\.0"):
        gen(path, chunks=(48, 48, 64), workers=1)
    assert len(calls) == 4
    assert zarr.open_array(str(path), mode="r").attrs[INCOMPLETE_ATTR] is True
    assert TaskStore(path / TASKS_DIR).keys() == ["field-0.-1.0", "field-0.0.0", "field-1.0.0"]
    with pytest.raises(ValueError, match="incomplete block-wise generation"):
        read_image(path)
    with pytest.raises(ValueError, match="other settings: seed"):  # no mixing on resume either
        generate_zarr(PARAMS, SHAPE, VOXEL, SEED + 1, path, chunks=(48, 48, 64),
                      origin=ORIGIN, backend="numpy", workers=1)

    calls.clear()
    broken.clear()  # the disk is fixed
    r = gen(path, chunks=(48, 48, 64), workers=1)
    assert calls == [(108, -40, 0)]
    assert (r.tasks_total, r.tasks_computed, r.tasks_reused) == (7, 4, 3)
    data, meta = read_image(path)
    assert data.tobytes() == reference.tobytes()
    assert not (path / TASKS_DIR).exists()


def test_failed_border_chunk_then_rerun_assembles_only_it(tmp_path, reference, monkeypatch):
    """A chunk crossing a block border fails to be assembled: the rerun computes no field
    block and assembles that chunk alone; the chunks already written are not rewritten."""
    path = tmp_path / "fail2.zarr"
    real = volume._assemble_chunk
    assembled: list[list[int]] = []
    broken = [[48, 0, 0]]  # chunk (1, 0, 0), across z = 108 and y = 0

    def flaky(path, start, shape, chunks, pieces):
        assembled.append(list(start))
        if list(start) in broken:
            raise OSError("disk on fire")
        return real(path, start, shape, chunks, pieces)

    monkeypatch.setattr(volume, "_assemble_chunk", flaky)
    with pytest.raises(RuntimeError, match=r"1 of 3 tasks failed: chunk-1\.0\.0"):
        gen(path, chunks=(48, 48, 64), workers=1)
    files = _chunk_files(path)
    assert sorted(files) == ["0.0.0", "0.1.0", "1.1.0"]
    blocks = []
    monkeypatch.setattr(volume, "generate", lambda *a, **k: blocks.append(a) or 1 / 0)
    assembled.clear()
    broken.clear()
    r = gen(path, chunks=(48, 48, 64), workers=1)
    assert blocks == [] and assembled == [[48, 0, 0]]
    assert (r.tasks_total, r.tasks_computed, r.tasks_reused) == (7, 1, 6)
    after = _chunk_files(path)
    assert {k: after[k] for k in files} == files
    data, _ = read_image(path)
    assert data.tobytes() == reference.tobytes()


class _Stop(Exception):
    pass


def test_interrupted_dask_generation_resumes(tmp_path, reference):
    """2 Dask processes; the caller is interrupted after 2 of 4 field blocks (as by Ctrl-C);
    the rerun keeps the chunk files those blocks wrote untouched and does the rest."""
    path = tmp_path / "cut.zarr"
    # chunks (48, 40, 64): z [50,98) [98,146)*, y [-40,0) [0,40); the chunks of z [50,98)
    # lie inside blocks (0,-1,0) and (0,0,0); the two others are assembled: 4 + 2 tasks
    inside = {"field-0.-1.0": "0.0.0", "field-0.0.0": "0.1.0"}

    def stop_after_2(done, total, left):
        if done >= 2:
            raise _Stop

    with pytest.raises(_Stop):
        gen(path, chunks=(48, 40, 64), workers=2, progress=stop_after_2)
    finished = TaskStore(path / TASKS_DIR).keys()
    assert len(finished) == 2 and all(k.startswith("field-") for k in finished)
    with pytest.raises(ValueError, match="incomplete"):
        read_image(path)
    files = _chunk_files(path)
    kept = {inside[k]: files[inside[k]] for k in finished if k in inside}

    r = gen(path, chunks=(48, 40, 64), workers=2)
    assert (r.tasks_total, r.tasks_computed, r.tasks_reused) == (6, 4, 2)
    after = _chunk_files(path)
    assert {k: after[k] for k in kept} == kept  # not rewritten
    data, _ = read_image(path)
    assert data.tobytes() == reference.tobytes()


def test_running_cluster_via_scheduler_address(tmp_path):
    """--scheduler path: the backend and memory are probed on a worker, chunks sent there."""
    from distributed import LocalCluster

    from cbagpu.backend import gpu_available

    shape, origin = (24, 20, 16), (3, -4, 5)
    ref = generate(PARAMS, shape, VOXEL, SEED, origin=origin, backend="numpy")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster:
        address = cluster.scheduler_address
        r = generate_zarr(PARAMS, shape, VOXEL, SEED, tmp_path / "s.zarr", chunks=(12, 20, 16),
                          origin=origin, backend="numpy", scheduler=address)
        # y in [-4, 16) meets 2 field blocks; both chunks cross y = 0 and are assembled
        assert (r.tasks_total, r.tasks_computed, r.backend) == (4, 4, "numpy")
        data, _ = read_image(r.path)
        assert data.tobytes() == ref.tobytes()
        if not gpu_available():
            with pytest.raises(ValueError, match="cannot run on the workers"):
                generate_zarr(PARAMS, shape, VOXEL, SEED, tmp_path / "c.zarr", chunks=12,
                              backend="cupy", scheduler=address)
            assert not (tmp_path / "c.zarr").exists()


# ----------------------------------------------------------------------------- CLI
def _generate(argv: list[str]) -> int:
    from cbagpu.cli import main

    return main(["generate", *argv])


def test_cli_generate_zarr(tmp_path, capsys):
    out = tmp_path / "cli.zarr"
    assert _generate(
        ["--preset", "paper", "--voxel-size", "80", "--shape", "24", "20", "16", "--seed", "3",
         "--origin", "5", "0", "0", "--out", str(out), "--chunks", "512", "--workers", "1",
         "--backend", "numpy", "--json"]) == 0
    cap = capsys.readouterr()
    res = json.loads(cap.out)
    assert res["chunks"] == [24, 20, 16] and res["tasks"] == {"total": 1, "computed": 1,
                                                              "reused": 0, "field_blocks": 1}
    assert "tasks 1/1" in cap.err
    data, _ = read_image(out)
    ref = generate(PARAMS, (24, 20, 16), 80, 3, origin=(5, 0, 0), backend="numpy")
    assert data.tobytes() == ref.tobytes()
    assert res["fractions"]["pore"] == pytest.approx(np.mean(ref == 0))

    capsys.readouterr()
    assert _generate(["--voxel-size", "40", "--shape", "8", "8", "8", "--seed", "1",
                      "--out", str(tmp_path / "x.tif"), "--chunks", "8"]) == 2
    assert ".zarr" in capsys.readouterr().err
    assert _generate(["--voxel-size", "40", "--shape", "8", "8", "8", "--seed", "1",
                      "--out", str(tmp_path / "x.zarr"), "--chunks", "8", "8"]) == 2
    assert "1 or 3 values" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x.zarr")
