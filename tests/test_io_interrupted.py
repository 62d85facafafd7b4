"""Killed and interrupted writes (issue 14, item 5): temporaries are removed on SIGINT and
SIGTERM; a write to the same target removes the temporaries that a killed writer (SIGKILL)
left; a sidecar is never visible without its data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cbagpu.io import read_image, write_image
from cbagpu.io.atomic import TMP_SUFFIX, Staging, remove_stale_temporaries

IMAGE = np.arange(4 * 5 * 6, dtype=np.uint8).reshape(4, 5, 6) % 3

# a child that stages a temporary for TARGET, then sends itself SIGNAL
CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from cbagpu.io.atomic import Staging
    target = Path(sys.argv[1])
    with Staging() as st:
        tmp = st.file(target)
        tmp.write_bytes(b"x" * 4096)
        print(tmp, flush=True)
        os.kill(os.getpid(), getattr(signal, sys.argv[2]))
        signal.pause()
""")


def _child(target: Path, sig: str) -> tuple[int, Path]:
    res = subprocess.run([sys.executable, "-c", CHILD, str(target), sig], capture_output=True,
                         text=True, timeout=60, cwd=Path(__file__).resolve().parents[1])
    return res.returncode, Path(res.stdout.strip())


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(TMP_SUFFIX))


@pytest.mark.parametrize("sig, status", [("SIGTERM", 128 + 15), ("SIGINT", -signal.SIGINT)])
def test_terminated_or_interrupted_write_removes_its_temporary(tmp_path, sig, status):
    code, tmp = _child(tmp_path / "x.tif", sig)
    assert tmp.parent == tmp_path and tmp.name.endswith(TMP_SUFFIX)
    assert code == status
    assert _hidden(tmp_path) == []


def test_killed_writer_leaves_a_temporary_that_the_next_write_removes(tmp_path):
    code, tmp = _child(tmp_path / "x.tif", "SIGKILL")
    assert code == -signal.SIGKILL
    assert tmp.exists()  # SIGKILL cannot be caught...
    write_image(tmp_path / "x.tif", IMAGE, {"voxel_size": 20.0})
    assert not tmp.exists()  # ...but the next write to the target removes it
    assert _hidden(tmp_path) == []
    assert read_image(tmp_path / "x.tif")[0].tobytes() == IMAGE.tobytes()


def test_temporaries_of_running_writers_and_other_targets_stay(tmp_path):
    parent = os.getppid()  # alive, and not this process
    live = tmp_path / f".x.tif.{parent}-abc{TMP_SUFFIX}"
    other = tmp_path / f".y.tif.999999999-abc{TMP_SUFFIX}"
    for p in (live, other):
        p.write_bytes(b"")
    assert remove_stale_temporaries(tmp_path / "x.tif") == []
    assert live.exists() and other.exists()


def test_a_failed_data_file_leaves_no_sidecar(tmp_path, monkeypatch):
    """A fresh .raw/.npy pair: the data is placed first, so when that fails no sidecar
    appears without it."""
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        if Path(dst).suffix in (".raw", ".npy"):
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "link", lambda *a, **k: (_ for _ in ()).throw(OSError("no links")))
    for name in ("a.raw", "b.npy"):
        with pytest.raises(OSError, match="disk full"):
            write_image(tmp_path / name, IMAGE, {"voxel_size": 20.0})
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_staging_restores_the_sigterm_handler():
    before = signal.getsignal(signal.SIGTERM)
    with Staging():
        inside = signal.getsignal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == before
    assert inside != before or before != signal.SIG_DFL
