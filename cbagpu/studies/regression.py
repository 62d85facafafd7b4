"""Regressions of the M-factor on morphology (paper Section 3.4, Eqs. 28-29).

* Eq. 28: ``M_hat = eps^a * beta^b / tau^c`` with ``a, b, c >= 0``. The paper's formula has
  **no prefactor**, so neither fit has an intercept. Two fits are offered:

  - ``space="linear"`` (the default, :func:`fit_power_law_linear`): non-linear least
    squares on M itself, ``min sum (eps^a beta^b tau^-c - M)^2`` with the bounds
    ``a, b, c >= 0`` (:func:`scipy.optimize.least_squares`, trust-region reflective).
    This is what the paper describes -- it approximates M, not log M, and states the
    bounds -- and, pooled over both phases, reproduces the kind of coefficients it reports
    (``b`` at its bound, a large ``c``): the solid phase's M is ~100x below the pore
    phase's, so a fit on M is dominated by the pore rows, where a fit on log M weighs both
    phases equally.
  - ``space="log"`` (:func:`fit_power_law`): linear least squares in log space,
    ``log M = a log eps + b log beta - c log tau``; ``nonnegative=True`` solves the bounded
    problem (:func:`scipy.optimize.nnls`), ``False`` plain OLS. Right when the scatter of M
    is multiplicative (a constant relative error).

  :func:`fit_eq28` dispatches on ``space``.
* Eq. 29: ``M_tilde = c1 * V1 + c0`` -- ordinary least squares, ``V1`` the volume fraction of
  the graphite set Xi1 (the paper plots against the V1 of Table 3, i.e. the model's V1).

Confidence intervals: ``coef +- t_{1-(1-q)/2, n-p} * se`` (Student t, n - p degrees of
freedom, p the free coefficients). Log space: the usual OLS ones, ``se = sqrt(diag(s^2
(X^T X)^-1))``, ``s^2 = SSR / (n - p)``. Linear space: the same with the Jacobian J of the
model at the solution in place of X (the asymptotic covariance ``s^2 (J^T J)^-1`` of
non-linear least squares, as :func:`scipy.optimize.curve_fit` reports it). A coefficient
held at 0 by its bound has no interval (NaN; ``None`` in JSON) and the others' intervals
are those of the fit on the free coefficients, i.e. conditional on the active set.

Rows used: log space needs a logarithm of every quantity, so rows with ``M <= 0``,
``beta <= 0``, ``eps <= 0``, a non-finite value or ``tau`` infinite (a phase that does not
percolate) are excluded and counted in ``n_excluded``; linear space keeps ``beta = 0``
(``beta^b`` is 0 for b > 0 and 1 for b = 0) and ``M <= 0``, and excludes the rest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cbagpu.errors import InvalidInputError

__all__ = [
    "EQ28_DEFAULT_SPACE",
    "EQ28_SPACES",
    "Coefficient",
    "LinearFit",
    "PowerLawFit",
    "fit_eq28",
    "fit_linear",
    "fit_power_law",
    "fit_power_law_linear",
    "ols",
]

#: Where Eq. 28 can be fitted: on M ("linear") or on log M ("log").
EQ28_SPACES = ("linear", "log")
#: The paper's description (least squares on M with a, b, c >= 0); see the module docstring.
EQ28_DEFAULT_SPACE = "linear"


def _f(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


@dataclass(frozen=True)
class Coefficient:
    """One fitted coefficient: value, standard error and confidence interval."""

    value: float
    stderr: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN -> None)."""
        return {
            "value": float(self.value),
            "stderr": _f(self.stderr),
            "ci": [_f(self.ci_low), _f(self.ci_high)],
        }


@dataclass(frozen=True)
class OLSResult:
    """Ordinary least squares ``y ~ X beta`` (no intercept unless X has a column of ones)."""

    coef: np.ndarray
    stderr: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    residuals: np.ndarray
    dof: int
    sigma: float  # residual standard deviation s


def ols(X: Any, y: Any, confidence: float = 0.95) -> OLSResult:
    """Least squares with t-based confidence intervals from ``s^2 (X^T X)^-1``.

    Raises ValueError for too few rows (``n <= p``) or a rank-deficient design.
    """
    from scipy import stats

    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    if X.ndim != 2 or y.shape != (X.shape[0],):
        raise InvalidInputError(f"design {X.shape} and response {y.shape} do not match")
    if not 0.0 < confidence < 1.0:
        raise InvalidInputError(f"confidence must lie in (0, 1), got {confidence!r}")
    n, p = X.shape
    if n <= p:
        raise InvalidInputError(f"{n} data points cannot determine {p} coefficients with an error "
                         f"estimate (need at least {p + 1})")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise InvalidInputError("non-finite values in the regression data")
    # QR keeps the conditioning of X (not X^T X); R^-1 R^-T = (X^T X)^-1
    Q, R = np.linalg.qr(X)
    d = np.abs(np.diag(R))
    if d.min() <= 1e-12 * max(d.max(), 1e-300):
        raise InvalidInputError("the regressors are linearly dependent (e.g. a quantity that does "
                         "not vary across the data); the coefficients are not identifiable")
    coef = np.linalg.solve(R, Q.T @ y)
    resid = y - X @ coef
    dof = n - p
    s2 = float(resid @ resid) / dof
    Rinv = np.linalg.solve(R, np.eye(p))
    cov = s2 * (Rinv @ Rinv.T)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    t = float(stats.t.ppf(0.5 + confidence / 2.0, dof))
    return OLSResult(coef, se, coef - t * se, coef + t * se, resid, dof, math.sqrt(s2))


def _r2(y: np.ndarray, yhat: np.ndarray) -> float:
    """Centred coefficient of determination ``1 - SSR / sum (y - mean y)^2`` (may be < 0)."""
    sst = float(((y - y.mean()) ** 2).sum())
    ssr = float(((y - yhat) ** 2).sum())
    if sst == 0.0:
        return 1.0 if ssr == 0.0 else -math.inf
    return 1.0 - ssr / sst


@dataclass(frozen=True)
class PowerLawFit:
    """Eq. 28 fit ``M_hat = eps^a beta^b / tau^c`` (no prefactor).

    ``space``: "log" (least squares on log M) or "linear" (on M). ``r2_log``: centred R^2
    of ``log M`` (NaN in linear space when a row has M <= 0); ``r2``: centred R^2 of
    ``M_hat`` against ``M``. ``residual_std_log`` / ``residual_std``: residual standard
    deviation of log M / of M (the one of the other space is computed from the same
    residuals, without the degrees-of-freedom correction of the fitted space).
    ``fixed``: coefficients held at 0 by the constraint ``a, b, c >= 0``.
    """

    a: Coefficient
    b: Coefficient
    c: Coefficient
    r2_log: float
    r2: float
    n: int
    n_excluded: int
    dof: int
    residual_std_log: float
    nonnegative: bool
    fixed: tuple[str, ...]
    confidence: float
    space: str = "log"
    residual_std: float = math.nan

    def predict(self, epsilon: Any, beta: Any, tau: Any) -> np.ndarray:
        """``M_hat`` of Eq. 28 (``beta^0 = 1`` even for beta = 0)."""
        eps = np.asarray(epsilon, np.float64)
        be = np.asarray(beta, np.float64)
        ta = np.asarray(tau, np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            bterm = np.ones_like(be) if self.b.value == 0.0 else be**self.b.value
            return eps**self.a.value * bterm / ta**self.c.value

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        where = "in log space (on log M)" if self.space == "log" else "on M (linear space)"
        return {
            "equation": f"M_hat = epsilon^a * beta^b / tau^c (Eq. 28, least squares {where}, "
            "no prefactor)",
            "space": self.space,
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "c": self.c.to_dict(),
            "r2_log": _f(self.r2_log),
            "r2": _f(self.r2),
            "n": self.n,
            "n_excluded": self.n_excluded,
            "dof": self.dof,
            "residual_std_log": _f(self.residual_std_log),
            "residual_std": _f(self.residual_std),
            "nonnegative": self.nonnegative,
            "fixed_at_zero": list(self.fixed),
            "confidence": self.confidence,
        }


@dataclass(frozen=True)
class LinearFit:
    """Eq. 29 fit ``M_tilde = c1 * V1 + c0`` (ordinary least squares)."""

    c1: Coefficient
    c0: Coefficient
    r2: float
    n: int
    dof: int
    residual_std: float
    confidence: float

    def predict(self, V1: Any) -> np.ndarray:
        """``M_tilde`` of Eq. 29."""
        return self.c1.value * np.asarray(V1, np.float64) + self.c0.value

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "equation": "M_tilde = c1 * V1 + c0 (Eq. 29, least squares)",
            "c1": self.c1.to_dict(),
            "c0": self.c0.to_dict(),
            "r2": _f(self.r2),
            "n": self.n,
            "dof": self.dof,
            "residual_std": _f(self.residual_std),
            "confidence": self.confidence,
        }


def _vectors(*arrays: Any) -> list[np.ndarray]:
    out = [np.asarray(a, np.float64).ravel() for a in arrays]
    if len({a.size for a in out}) != 1:
        raise InvalidInputError(f"the data have different lengths: {[a.size for a in out]}")
    return out


def fit_power_law(
    epsilon: Any,
    beta: Any,
    tau: Any,
    M: Any,
    *,
    nonnegative: bool = True,
    confidence: float = 0.95,
) -> PowerLawFit:
    """Fit Eq. 28, ``M_hat = eps^a beta^b / tau^c``, by least squares in log space.

    ``log M = a log eps + b log beta - c log tau`` without intercept (Eq. 28 has no
    prefactor). ``nonnegative=True`` (the paper's ``a, b, c >= 0``) solves the bounded
    problem (:func:`scipy.optimize.nnls`); coefficients at the bound are reported as 0
    without an interval, the others with the OLS intervals of the free columns.
    Rows without a logarithm (M, beta or eps <= 0, tau infinite, NaN) are excluded and
    counted. Raises ValueError when fewer than (free coefficients + 1) rows remain or the
    regressors are linearly dependent.
    """
    eps, bet, ta, m = _vectors(epsilon, beta, tau, M)
    with np.errstate(divide="ignore", invalid="ignore"):
        X = np.column_stack([np.log(eps), np.log(bet), -np.log(ta)])
        y = np.log(m)
    ok = np.isfinite(X).all(axis=1) & np.isfinite(y) & (ta > 0)
    n_excl = int((~ok).sum())
    X, y = X[ok], y[ok]
    if X.shape[0] == 0:
        raise InvalidInputError(f"no usable rows for Eq. 28: all {n_excl} rows have M, beta or eps "
                         "<= 0 or an infinite tortuosity")
    names = ("a", "b", "c")
    free = [0, 1, 2]
    if nonnegative:
        from scipy.optimize import nnls

        if X.shape[0] <= 3:
            raise InvalidInputError(
                f"{X.shape[0]} usable data points cannot determine 3 coefficients "
                "with an error estimate (need at least 4)")
        sol, _ = nnls(X, y)
        free = [i for i in range(3) if sol[i] > 0.0]
        if not free:
            raise InvalidInputError("the non-negative fit of Eq. 28 put every coefficient at 0")
    res = ols(X[:, free], y, confidence)
    coefs: dict[str, Coefficient] = {}
    full = np.zeros(3)
    for j, i in enumerate(free):
        full[i] = res.coef[j]
        coefs[names[i]] = Coefficient(
            float(res.coef[j]), float(res.stderr[j]), float(res.ci_low[j]), float(res.ci_high[j])
        )
    fixed = tuple(names[i] for i in range(3) if i not in free)
    for nm in fixed:
        coefs[nm] = Coefficient(0.0, math.nan, math.nan, math.nan)
    yhat = X @ full
    return PowerLawFit(
        a=coefs["a"], b=coefs["b"], c=coefs["c"],
        r2_log=_r2(y, yhat),
        r2=_r2(np.exp(y), np.exp(yhat)),
        space="log",
        residual_std=float(np.sqrt(np.mean((np.exp(y) - np.exp(yhat)) ** 2))),
        n=int(X.shape[0]),
        n_excluded=n_excl,
        dof=res.dof,
        residual_std_log=res.sigma,
        nonnegative=bool(nonnegative),
        fixed=fixed,
        confidence=float(confidence),
    )


def _eq28_terms(theta: np.ndarray, leps: np.ndarray, beta: np.ndarray, ltau: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Model ``eps^a beta^b tau^-c`` and its Jacobian (n, 3) in (a, b, c); ``beta^b`` is 1
    for b = 0 and 0 for beta = 0 < b, and its derivative in b is taken as 0 at beta = 0
    (the limit of ``beta^b log beta`` for b > 0)."""
    a, b, c = theta
    pos = beta > 0
    lbeta = np.where(pos, np.log(np.where(pos, beta, 1.0)), 0.0)
    bterm = np.where(pos, np.exp(b * lbeta), 1.0 if b == 0.0 else 0.0)
    m = np.exp(a * leps - c * ltau) * bterm
    jac = np.column_stack([m * leps, m * lbeta, -m * ltau])
    return m, jac


def fit_power_law_linear(
    epsilon: Any,
    beta: Any,
    tau: Any,
    M: Any,
    *,
    nonnegative: bool = True,
    confidence: float = 0.95,
) -> PowerLawFit:
    """Fit Eq. 28, ``M_hat = eps^a beta^b / tau^c``, by non-linear least squares on M.

    Minimises ``sum (eps^a beta^b tau^-c - M)^2`` with :func:`scipy.optimize.least_squares`
    (trust-region reflective), under ``a, b, c >= 0`` when ``nonnegative`` (the paper's
    constraint), from several starting points (the log-space fit among them); the best
    is kept. Intervals from ``s^2 (J^T J)^-1`` over the free coefficients (module
    docstring); a coefficient on its bound is reported as 0 without an interval.
    Rows with a non-finite value, ``eps <= 0``, ``beta < 0`` or ``tau <= 0`` (infinite
    for a phase that does not percolate) are excluded and counted. Raises
    :class:`~cbagpu.errors.InvalidInputError` when fewer than 4 rows remain or the
    coefficients are not identifiable.
    """
    from scipy import stats
    from scipy.optimize import least_squares

    if not 0.0 < confidence < 1.0:
        raise InvalidInputError(f"confidence must lie in (0, 1), got {confidence!r}")
    eps, bet, ta, m = _vectors(epsilon, beta, tau, M)
    with np.errstate(invalid="ignore"):
        ok = (np.isfinite(eps) & np.isfinite(bet) & np.isfinite(ta) & np.isfinite(m)
              & (eps > 0) & (bet >= 0) & (ta > 0))
    n_excl = int((~ok).sum())
    eps, bet, ta, m = eps[ok], bet[ok], ta[ok], m[ok]
    n = int(m.size)
    if n == 0:
        raise InvalidInputError(f"no usable rows for Eq. 28: all {n_excl} rows have eps <= 0, "
                                "beta < 0, a non-finite value or an infinite tortuosity")
    if n <= 3:
        raise InvalidInputError(
            f"{n} usable data points cannot determine 3 coefficients with an error estimate "
            f"(need at least 4; {n_excl} rows excluded)")
    leps, ltau = np.log(eps), np.log(ta)

    def resid(th: np.ndarray) -> np.ndarray:
        return _eq28_terms(th, leps, bet, ltau)[0] - m

    def jac(th: np.ndarray) -> np.ndarray:
        return _eq28_terms(th, leps, bet, ltau)[1]

    lo = 0.0 if nonnegative else -np.inf
    starts = [np.array(x, np.float64) for x in ((1.0, 0.0, 1.0), (2.0, 0.0, 5.0),
                                                 (1.0, 1.0, 1.0))]
    try:
        lf = fit_power_law(eps[bet > 0], bet[bet > 0], ta[bet > 0], m[bet > 0],
                           nonnegative=nonnegative)
        starts.insert(0, np.array([lf.a.value, lf.b.value, lf.c.value]))
    except ValueError:
        pass
    best = None
    for x0 in starts:
        x0 = np.maximum(x0, 0.0) if nonnegative else x0
        sol = least_squares(resid, x0, jac=jac, bounds=(lo, np.inf), method="trf",
                            x_scale="jac", xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=5000)
        if best is None or sol.cost < best.cost:
            best = sol
    assert best is not None
    theta = np.array(best.x, np.float64)
    names = ("a", "b", "c")
    if nonnegative:
        at_bound = (best.active_mask != 0) | (theta <= 0.0)
        theta[at_bound] = 0.0
    else:
        at_bound = np.zeros(3, bool)
    free = [i for i in range(3) if not at_bound[i]]
    if not free:
        raise InvalidInputError("the non-negative fit of Eq. 28 put every coefficient at 0")
    mhat, J = _eq28_terms(theta, leps, bet, ltau)
    r = mhat - m
    dof = n - len(free)
    s2 = float(r @ r) / dof
    Jf = J[:, free]
    Q, R = np.linalg.qr(Jf)
    d = np.abs(np.diag(R))
    if d.min() <= 1e-12 * max(d.max(), 1e-300):
        raise InvalidInputError("the regressors of Eq. 28 are linearly dependent (e.g. a "
                                "quantity that does not vary across the data); the "
                                "coefficients are not identifiable")
    Rinv = np.linalg.solve(R, np.eye(len(free)))
    se = np.sqrt(np.clip(np.diag(s2 * (Rinv @ Rinv.T)), 0.0, None))
    t = float(stats.t.ppf(0.5 + confidence / 2.0, dof))
    coefs = {nm: Coefficient(0.0, math.nan, math.nan, math.nan) for nm in names}
    for j, i in enumerate(free):
        v = float(theta[i])
        coefs[names[i]] = Coefficient(v, float(se[j]), v - t * float(se[j]),
                                      v + t * float(se[j]))
    with np.errstate(divide="ignore", invalid="ignore"):
        ly, lyhat = np.log(m), np.log(mhat)
    both = np.isfinite(ly) & np.isfinite(lyhat)
    r2_log = _r2(ly, lyhat) if both.all() else math.nan
    res_log = float(np.sqrt(np.mean((ly - lyhat) ** 2))) if both.all() else math.nan
    return PowerLawFit(
        a=coefs["a"], b=coefs["b"], c=coefs["c"],
        r2_log=r2_log, r2=_r2(m, mhat), n=n, n_excluded=n_excl, dof=dof,
        residual_std_log=res_log, nonnegative=bool(nonnegative),
        fixed=tuple(names[i] for i in range(3) if at_bound[i]),
        confidence=float(confidence), space="linear", residual_std=math.sqrt(s2),
    )


def fit_eq28(
    epsilon: Any,
    beta: Any,
    tau: Any,
    M: Any,
    *,
    space: str = EQ28_DEFAULT_SPACE,
    nonnegative: bool = True,
    confidence: float = 0.95,
) -> PowerLawFit:
    """Fit Eq. 28 on M (``space="linear"``, the default: the paper's description) or on
    log M (``space="log"``); see :func:`fit_power_law_linear` and :func:`fit_power_law`."""
    if space not in EQ28_SPACES:
        raise InvalidInputError(f"space must be one of {EQ28_SPACES}, got {space!r}")
    fn = fit_power_law_linear if space == "linear" else fit_power_law
    return fn(epsilon, beta, tau, M, nonnegative=nonnegative, confidence=confidence)


def fit_linear(V1: Any, M: Any, *, confidence: float = 0.95) -> LinearFit:
    """Fit Eq. 29, ``M_tilde = c1 * V1 + c0``, by ordinary least squares with CIs.

    Rows with a non-finite value are refused (ValueError): a non-percolating phase has
    M = 0, which is a valid value here.
    """
    v, m = _vectors(V1, M)
    if not (np.isfinite(v).all() and np.isfinite(m).all()):
        raise InvalidInputError("non-finite V1 or M in the data of Eq. 29")
    res = ols(np.column_stack([v, np.ones_like(v)]), m, confidence)
    c = [Coefficient(float(res.coef[i]), float(res.stderr[i]), float(res.ci_low[i]),
                     float(res.ci_high[i])) for i in range(2)]
    return LinearFit(
        c1=c[0], c0=c[1], r2=_r2(m, m - res.residuals), n=int(v.size), dof=res.dof,
        residual_std=res.sigma, confidence=float(confidence),
    )


def predict_eq28(fit: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """M-hat = eps^a beta^b / tau^c (Eq. 28) of the fitted coefficients ``fit`` (``"a"``,
    ``"b"``, ``"c"`` with ``"value"``) for table rows with ``epsilon``, ``constrictivity``
    and ``geodesic_tortuosity``; b = 0 gives beta^0 = 1 even where beta = 0."""
    a, b, c = (fit[k]["value"] for k in "abc")
    eps = np.array([r["epsilon"] for r in rows], dtype=float)
    beta = np.array([r["constrictivity"] for r in rows], dtype=float)
    tau = np.array([r["geodesic_tortuosity"] for r in rows], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        bterm = np.ones_like(beta) if b == 0 else beta**b
        return eps**a * bterm / tau**c
