"""Export for visualisation and simulation codes (cbagpu.export, issue 17 item 2).

References: VTK's own XML reader (.vti dimensions, spacing, origin and cell values), h5py
and the XML of the XDMF file, and for the STL surface a digitised ball (its voxel count).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from cbagpu.cli import main
from cbagpu.export import export_image, phase_surface
from cbagpu.io import image_metadata, write_image


@pytest.fixture
def labels() -> np.ndarray:
    rng = np.random.default_rng(4)
    return rng.choice(3, size=(5, 7, 9), p=[0.5, 0.3, 0.2]).astype(np.uint8)


def digitised_ball(radius: float, pad: int = 2) -> np.ndarray:
    n = int(2 * radius) + 1 + 2 * pad
    c = (n - 1) / 2
    z, y, x = np.ogrid[:n, :n, :n]
    return ((z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2 <= radius**2).astype(np.uint8)


def test_vti_read_back_by_vtk(tmp_path, labels):
    vtk = pytest.importorskip("vtk")
    from vtk.util.numpy_support import vtk_to_numpy

    meta = image_metadata({"mu": 0.1}, 3, 20.0, (1, 2, 3), "numpy")
    r = export_image(labels, tmp_path / "x.vti", voxel_size=20.0, origin=(1, 2, 3),
                     metadata=meta)
    reader = vtk.vtkXMLImageDataReader()
    reader.SetFileName(r.path)
    reader.Update()
    img = reader.GetOutput()
    assert img.GetDimensions() == (10, 8, 6)  # points: x, y, z = voxels + 1
    assert img.GetSpacing() == pytest.approx((20.0, 20.0, 20.0))
    assert img.GetOrigin() == pytest.approx((60.0, 40.0, 20.0))
    cells = vtk_to_numpy(img.GetCellData().GetArray("labels"))
    np.testing.assert_array_equal(cells.reshape(labels.shape), labels)  # x fastest
    side = json.loads((tmp_path / "x.vti.json").read_text())
    assert side["source"]["seed"] == 3 and side["voxel_size_nm"] == 20.0


def test_vti_in_micrometres(tmp_path, labels):
    vtk = pytest.importorskip("vtk")
    r = export_image(labels, tmp_path / "u.vti", voxel_size=20.0, unit="um")
    reader = vtk.vtkXMLImageDataReader()
    reader.SetFileName(r.path)
    reader.Update()
    assert reader.GetOutput().GetSpacing() == pytest.approx((0.02, 0.02, 0.02))


def test_xdmf_h5_read_back(tmp_path, labels):
    h5py = pytest.importorskip("h5py")
    meta = image_metadata({"mu": 0.1}, 5, 25.0, (0, 0, 4), "numpy")
    r = export_image(labels, tmp_path / "x.xdmf", voxel_size=25.0, origin=(0, 0, 4),
                     metadata=meta)
    assert r.files == (str(tmp_path / "x.h5"), str(tmp_path / "x.xdmf"))
    with h5py.File(tmp_path / "x.h5", "r") as f:
        np.testing.assert_array_equal(f["labels"][...], labels)
        assert f["labels"].attrs["voxel_size"] == 25.0
        assert json.loads(f.attrs["cbagpu_metadata"])["source"]["seed"] == 5
    root = ET.parse(tmp_path / "x.xdmf").getroot()
    topo = root.find(".//Topology")
    assert topo.get("TopologyType") == "3DCoRectMesh"
    assert topo.get("Dimensions") == "6 8 10"
    items = root.findall(".//Geometry/DataItem")
    origin, spacing = (np.array(d.text.split(), float) for d in items)
    np.testing.assert_allclose(origin, [0, 0, 100.0])
    np.testing.assert_allclose(spacing, [25.0] * 3)
    data = root.find(".//Attribute/DataItem")
    assert data.text.strip() == "x.h5:/labels" and data.get("Dimensions") == "5 7 9"


@pytest.mark.parametrize("radius", [6.3, 10.2])
def test_stl_of_a_ball_is_watertight_with_its_voxel_volume(tmp_path, radius):
    trimesh = pytest.importorskip("trimesh")
    pytest.importorskip("skimage")
    ball = 2 * digitised_ball(radius)  # graphite
    r = export_image(ball, tmp_path / "b.stl", voxel_size=10.0, phase="graphite")
    mesh = trimesh.load(r.path)
    assert mesh.is_watertight
    voxel_volume = ball.astype(bool).sum() * 10.0**3
    assert abs(mesh.volume) == pytest.approx(voxel_volume, rel=0.02)
    assert mesh.volume > 0  # outward normals
    assert r.mesh["watertight"] and r.mesh["volume"] == pytest.approx(abs(mesh.volume))


def test_stl_touching_the_image_faces_is_closed_and_in_micrometres(tmp_path):
    trimesh = pytest.importorskip("trimesh")
    pytest.importorskip("skimage")
    cube = np.ones((4, 5, 6), np.uint8)  # fills the image: closed by the padding
    r = export_image(cube, tmp_path / "c.stl", voxel_size=20.0, unit="um", phase="cbd")
    mesh = trimesh.load(r.path)
    assert mesh.is_watertight
    box = 4 * 5 * 6 * 0.02**3  # marching cubes cuts the box's edges and corners
    assert 0.9 * box < mesh.volume < box
    # the level 0.5 - 1/1024 moves the faces outwards by 1/1024 voxel
    np.testing.assert_allclose(mesh.bounds, [[0, 0, 0], [0.12, 0.1, 0.08]], atol=0.02 / 1000)


def test_edge_touching_voxels_give_a_closed_manifold():
    """Ties of binary data (saddles at exactly 0.5) must not leave edges of four faces."""
    trimesh = pytest.importorskip("trimesh")
    a = np.zeros((4, 4, 4), np.uint8)
    a[1, 1, 1] = a[2, 2, 1] = 1  # share an edge
    a[1, 2, 2] = 1  # and a corner with the others
    mesh = phase_surface(a, "cbd", voxel_size=1.0)
    counts = {len(g) for g in trimesh.grouping.group_rows(mesh.edges_sorted)}
    assert counts == {2} and mesh.is_watertight
    rng = np.random.default_rng(1)
    noisy = rng.choice(2, size=(12, 12, 12)).astype(np.uint8)  # many ties
    assert phase_surface(noisy, "cbd", voxel_size=1.0).is_watertight


def test_smoothing_and_decimation_keep_a_closed_surface(tmp_path):
    pytest.importorskip("trimesh")
    pytest.importorskip("fast_simplification")
    ball = digitised_ball(8.2)
    plain = phase_surface(ball, "cbd", voxel_size=1.0)
    smooth = phase_surface(ball, "cbd", voxel_size=1.0, smooth=10, decimate=0.5)
    assert smooth.is_watertight
    assert len(smooth.faces) < 0.7 * len(plain.faces)
    assert smooth.volume == pytest.approx(ball.sum(), rel=0.03)


def test_bad_requests_refused_before_writing(tmp_path, labels):
    with pytest.raises(ValueError, match="suffix"):
        export_image(labels, tmp_path / "x.vtk", voxel_size=20.0)
    with pytest.raises(ValueError, match="unit"):
        export_image(labels, tmp_path / "x.vti", voxel_size=20.0, unit="mm")
    with pytest.raises(ValueError, match="no graphite"):
        export_image(np.zeros((3, 3, 3), np.uint8), tmp_path / "x.stl", voxel_size=20.0,
                     phase="graphite")
    with pytest.raises(ValueError, match="phase"):
        export_image(labels, tmp_path / "x.stl", voxel_size=20.0, phase="binder")
    assert list(tmp_path.iterdir()) == []


def test_missing_extra_named(tmp_path, labels, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "h5py", None)  # import h5py -> ImportError
    with pytest.raises(ImportError, match=r"cbagpu\[export\]"):
        export_image(labels, tmp_path / "x.xdmf", voxel_size=20.0)
    assert list(tmp_path.iterdir()) == []


def test_cli_export(tmp_path, labels, capsys):
    pytest.importorskip("vtk")
    img = write_image(tmp_path / "in.tif", labels,
                      image_metadata({}, 1, 30.0, (0, 0, 0), "numpy"))
    assert main(["export", str(img), "--to", str(tmp_path / "o.vti"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["format"] == "vti" and out["voxel_size"] == 30.0
    assert main(["export", str(img), "--to", str(tmp_path / "o.stl"), "--phase", "solid"]) == 0
    assert "o.stl" in capsys.readouterr().out
    assert main(["export", str(img), "--to", str(tmp_path / "o.obj")]) == 2
    assert "--to must end in .vti" in capsys.readouterr().err
