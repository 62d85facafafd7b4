"""The GPU route's cost account (cbagpu.backend.accounting) and the budgets it holds
(benchmarks/budget.py): counts are deterministic, so a change that adds a host round trip
to an inner loop fails here, in CI, without a GPU."""

from __future__ import annotations

import numpy as np
import pytest

from cbagpu.backend.accounting import AccountingBackend, DeviceArray
from cbagpu.backend.host_kernels import HostKernelBackend, compile_host_kernels, compiler


@pytest.fixture(scope="module")
def libs():
    if compiler() is None:
        pytest.skip("no C++ compiler to build the host kernels")
    return compile_host_kernels()


@pytest.fixture
def acct(libs):
    be = AccountingBackend(HostKernelBackend(workers=1, libs=libs))
    yield be
    be.close()


def test_account_counts_reads_launches_and_bytes(acct):
    xp = acct.xp
    with acct.stage("s") as c:
        a = xp.ones((10, 10), dtype=np.float32)  # one launch (a fill), 400 bytes
        b = a[2:5]  # a view: free
        s = (b * 2).sum()  # two launches, a 0-d device array
        assert isinstance(s, DeviceArray) and s.ndim == 0
        assert float(s) == 60.0  # one read of 4 bytes
        host = acct.to_host(a)  # one read of 400 bytes
        assert isinstance(host, np.ndarray) and not isinstance(host, DeviceArray)
        if bool((a > 0).all()):  # two launches, one read
            pass
        acct.synchronize()
    assert c.reads == 3 and c.read_bytes == 4 + 400 + 1
    assert c.launches == 1 + 2 + 2
    assert c.syncs == 1
    assert c.peak_new_bytes >= 400 + 120  # a and b * 2 alive together


def test_account_counts_kernel_launches_and_host_writes(acct):
    from cbagpu.transport.device_pcg import dense_solve_args

    inv = np.eye(5)
    with acct.stage("k") as c:
        r = acct.asarray(np.arange(5, dtype=np.float32))  # one write
        z = acct.xp.empty(5, dtype=np.float32)  # free
        acct.kernel("transport.cu", "cba_dense_solve")((1,), (32,),
                                                       dense_solve_args(inv, r, z))
    assert c.kernels["cba_dense_solve"] == 1 and c.launches == 1
    assert c.writes == 2 and c.write_bytes == 20 + inv.nbytes  # inv went from the host
    np.testing.assert_array_equal(acct.to_host(z), np.arange(5))


@pytest.mark.parametrize("stage", ["transport", "geodesic", "intrusion", "generate", "field"])
def test_budget_is_met(libs, stage):
    from benchmarks.budget import run_budget

    report = run_budget([stage])
    failed = [c.to_dict() for c in report.checks if not c.ok]
    assert report.checks and not failed, failed


@pytest.mark.slow
def test_fit_budget_is_met(libs):
    from benchmarks.budget import run_budget

    report = run_budget(["fit"])
    assert report.checks and report.ok, [c.to_dict() for c in report.checks]


def test_transport_budget_fails_with_a_read_per_iteration(libs, monkeypatch):
    """The budget can fail: one extra scalar read in the CG iteration exceeds it."""
    from benchmarks.budget import run_budget
    from cbagpu.transport import device_pcg

    original = device_pcg.DevicePCG.vcycle

    def chatty(self, r, z):
        original(self, r, z)
        float(z[0, 0, 0])  # a host round trip per iteration

    monkeypatch.setattr(device_pcg.DevicePCG, "vcycle", chatty)
    report = run_budget(["transport"])
    reads = [c for c in report.checks if c.name == "reads_per_iteration"][0]
    assert reads.value == pytest.approx(1.5) and not reads.ok


def test_device_loop_matches_the_host_loop(libs):
    """The fused device PCG (host-compiled kernels) and the host loop (Numba kernels) give
    the same tortuosity factor within the solver's tolerance, in the same iterations."""
    from cbagpu import generate, preset
    from cbagpu.transport import transport

    labels = generate(preset("paper"), (40, 40, 40), 40, 2, backend="numpy")
    for phase in ("pore", "solid"):
        a = transport(labels, phase, 0, backend="numpy", tol=1e-3 * 1.5)
        b = transport(labels, phase, 0, backend=HostKernelBackend(workers=1, libs=libs),
                      tol=1e-3 * 1.5)
        assert b.converged and a.converged
        assert abs(b.tau_eff - a.tau_eff) <= 3e-3 * a.tau_eff
