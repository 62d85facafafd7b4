"""Against TauFactor 1.2 (optional peer, ``pip install -e .[peers]``), like with like.

TauFactor's binary ``Solver`` puts the boundary values half a voxel outside the end layers
(length N, our default ``boundary_offset=0.5``) and reports tau = VF / D_rel.  Its
``MultiPhaseSolver`` puts them on a copy of the end layers and divides by N + 1 (our
``boundary_offset=1.0``) and reports tau = (sum_p VF_p D_p) / D_eff with VF_p over the whole
image: the same formula as our ``tau_eff``.  TauFactor is run converged well beyond its
default (conv_crit 1e-4) so that its own error is far below the 0.5 % compared.
"""

from __future__ import annotations

import numpy as np
import pytest

from cbagpu.transport import effective_conductivity
from tests.test_transport import random_labels

tf = pytest.importorskip("taufactor")


def _silent_solve(solver) -> float:
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        tau = solver.solve(verbose=False, conv_crit=1e-4, iter_limit=200000)
    return float(np.asarray(tau).ravel()[0])


@pytest.mark.parametrize("seed", [0, 1])
def test_binary_solver(seed):
    lab = random_labels((40, 32, 36), (0.4, 0.6), seed)  # 1 conducts
    ref = _silent_solve(tf.Solver(lab.astype(np.uint8), device="cpu"))
    r = effective_conductivity(lab, {0: 0.0, 1: 1.0}, tol=1e-4)
    assert r.tau_eff == pytest.approx(ref, rel=5e-3)


@pytest.mark.parametrize("seed", [2, 3])
def test_multiphase_solver(seed):
    lab = random_labels((32, 28, 30), (0.3, 0.35, 0.35), seed)
    cond = {1: 0.01, 2: 1.0}
    ref = _silent_solve(tf.MultiPhaseSolver(lab.astype(np.uint8), cond=cond, device="cpu"))
    r = effective_conductivity(lab, {0: 0.0, **cond}, tol=1e-4, boundary_offset=1.0)
    assert r.tau_eff == pytest.approx(ref, rel=5e-3)
