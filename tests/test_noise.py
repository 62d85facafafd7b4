"""Counter-based white noise: window consistency and distribution."""

from __future__ import annotations

import numpy as np
import scipy.stats

from cbagpu.simulate.noise import field_key, white_noise_numpy


def test_noise_is_a_function_of_the_global_index():
    key = field_key(7)
    big = white_noise_numpy(key, (-13, -2, -9), (40, 30, 50))
    for origin, shape in [
        ((-13, -2, -9), (5, 6, 7)),
        ((0, 0, 0), (10, 11, 12)),
        ((-4, 5, -8), (20, 3, 41)),
        ((-12, -1, -8), (1, 1, 1)),
    ]:
        sub = white_noise_numpy(key, origin, shape)
        sl = tuple(
            slice(
                o + 13 * (i == 0) + 2 * (i == 1) + 9 * (i == 2),
                o + 13 * (i == 0) + 2 * (i == 1) + 9 * (i == 2) + s,
            )
            for i, (o, s) in enumerate(zip(origin, shape, strict=True))
        )
        np.testing.assert_array_equal(sub, big[sl])


def test_threads_do_not_change_values():
    key = field_key(3)
    a = white_noise_numpy(key, (1, 2, 3), (64, 32, 33), threads=1)
    b = white_noise_numpy(key, (1, 2, 3), (64, 32, 33), threads=2)
    np.testing.assert_array_equal(a, b)


def test_seeds_give_different_noise():
    assert len({field_key(s) for s in range(1000)}) == 1000
    a = white_noise_numpy(field_key(1), (0, 0, 0), (8, 8, 8))
    b = white_noise_numpy(field_key(2), (0, 0, 0), (8, 8, 8))
    assert not np.array_equal(a, b)


def test_noise_is_standard_normal_and_white():
    n = white_noise_numpy(field_key(11), (-50, 0, 3), (64, 128, 128)).astype(np.float64)
    m = n.size
    # mean 0 and variance 1 within 4 standard errors (SE of the variance: sqrt(2/m))
    assert abs(n.mean()) < 4 / np.sqrt(m)
    assert abs(n.var() - 1) < 4 * np.sqrt(2 / m)
    # normality (fixed seed; deterministic): KS on a subsample
    p = scipy.stats.kstest(n.ravel()[::17], "norm").pvalue
    assert p > 1e-3
    # no correlation at lag 1 along each axis, nor between the two Box-Muller outputs
    for ax in range(3):
        a = np.moveaxis(n, ax, 0)
        r = np.mean(a[1:] * a[:-1])
        assert abs(r) < 4 / np.sqrt(a[1:].size)
    even, odd = n[:, :, 0::2], n[:, :, 1::2]
    assert abs(np.mean(even * odd)) < 4 / np.sqrt(even.size)
    # squares uncorrelated too (catches a shared radius in Box-Muller pairs)
    c = np.corrcoef((even**2).ravel(), (odd**2).ravel())[0, 1]
    assert abs(c) < 4 / np.sqrt(even.size)


def test_white_noise_dispatch_by_capability():
    """A backend without kernels runs the twin on its worker threads; one that launches
    kernels gets one launch of ``white_noise`` with the grid of ``launch_blocks``."""
    from cbagpu.backend.host_kernels import HostKernelBackend, compiler
    from cbagpu.backend.kernels import launch_blocks
    from cbagpu.backend.numpy_backend import NumPyBackend
    from cbagpu.simulate.noise import white_noise

    key = field_key(5)
    origin, shape = (3, -2, 7), (9, 8, 13)
    ref = white_noise_numpy(key, origin, shape)
    np.testing.assert_array_equal(white_noise(NumPyBackend(workers=3), key, origin, shape), ref)
    if compiler() is None:
        return
    launches = []

    class Spy(HostKernelBackend):
        def kernel(self, filename, name):
            fn = super().kernel(filename, name)

            def launch(grid, block, args):
                launches.append((filename, name, grid, block))
                fn(grid, block, args)

            return launch

    out = white_noise(Spy(), key, origin, shape)
    assert launches == [("noise.cu", "white_noise", (launch_blocks(9 * 8 * 13, 256),), (256,))]
    np.testing.assert_allclose(out, ref, rtol=2e-6, atol=2e-6)
