"""Centered kernel alignment (Kornblith et al., ICML 2019) and the unbiased HSIC estimator (Song et al., 2012),
as used minibatch-wise by Nguyen et al. (ICLR 2021).

Everything here works on one batch at a time in float64; ``streaming`` accumulates batches.

* ``hsic_unbiased(K, L)``: HSIC_1 = [tr(K̃L̃) + 1ᵀK̃1·1ᵀL̃1 / ((n−1)(n−2)) − 2/(n−2)·1ᵀK̃L̃1] / (n(n−3)),
  K̃, L̃ = K, L with the diagonal set to zero; needs n ≥ 4.
* ``hsic_biased(K, L)``: tr(KHLH) / (n−1)², the estimator of Kornblith et al.'s full-batch CKA.
* ``cka(X, Y)``: HSIC(K, L) / sqrt(HSIC(K, K)·HSIC(L, L)), linear (K = XXᵀ) or RBF kernel.
"""

from __future__ import annotations

import numpy as np
import torch

MIN_BATCH = 4  # the unbiased estimator divides by n(n−3)


def as_features(x) -> torch.Tensor:
    """(n, ...) array or tensor -> (n, d) float64 tensor."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if t.ndim < 2:
        raise ValueError(f"features must have shape (n, d), got {tuple(t.shape)}")
    return t.reshape(t.shape[0], -1).to(torch.float64)


def gram_linear(x: torch.Tensor) -> torch.Tensor:
    return x @ x.T


def rbf_bandwidth(x: torch.Tensor, scale: float = 1.0) -> float:
    """σ = scale · sqrt(median squared pairwise distance) (the heuristic of Kornblith et al.)."""
    sq = torch.cdist(x, x).pow(2)
    off = sq[~torch.eye(len(x), dtype=torch.bool, device=x.device)]
    return float(scale * off.median().sqrt())


def gram_rbf(x: torch.Tensor, sigma: float) -> torch.Tensor:
    if sigma <= 0:
        raise ValueError("RBF bandwidth must be positive (are the features constant?)")
    return torch.exp(-torch.cdist(x, x).pow(2) / (2.0 * sigma**2))


def hsic_unbiased(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    n = k.shape[0]
    if n < MIN_BATCH:
        raise ValueError(f"the unbiased HSIC estimator needs at least {MIN_BATCH} examples, got {n}")
    k = k.clone().fill_diagonal_(0)
    l = l.clone().fill_diagonal_(0)
    trace = (k * l).sum()
    middle = k.sum() * l.sum() / ((n - 1) * (n - 2))
    last = 2.0 / (n - 2) * (k.sum(0) @ l.sum(0))
    return (trace + middle - last) / (n * (n - 3))


def hsic_biased(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    n = k.shape[0]
    h = torch.eye(n, dtype=k.dtype, device=k.device) - 1.0 / n
    return torch.trace(k @ h @ l @ h) / (n - 1) ** 2


def cka(x, y, kernel: str = "linear", unbiased: bool = True, rbf_scale: float = 1.0) -> float:
    """Full-batch CKA between two representations (rows = the same examples)."""
    x, y = as_features(x), as_features(y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"different numbers of examples: {x.shape[0]} vs {y.shape[0]}")
    if kernel == "linear":
        k, l = gram_linear(x), gram_linear(y)
    elif kernel == "rbf":
        k, l = gram_rbf(x, rbf_bandwidth(x, rbf_scale)), gram_rbf(y, rbf_bandwidth(y, rbf_scale))
    else:
        raise ValueError(f"unknown kernel {kernel!r}")
    hsic = hsic_unbiased if unbiased else hsic_biased
    kl, kk, ll = hsic(k, l), hsic(k, k), hsic(l, l)
    return float(kl / torch.sqrt(kk * ll))


def linear_cka_feature_space(x, y) -> float:
    """Kornblith et al.'s linear CKA, ||YᵀX||²_F / (||XᵀX||_F ||YᵀY||_F) on centred features (biased)."""
    x, y = as_features(x), as_features(y)
    x = x - x.mean(0)
    y = y - y.mean(0)
    return float((y.T @ x).pow(2).sum() / (torch.linalg.norm(x.T @ x) * torch.linalg.norm(y.T @ y)))
