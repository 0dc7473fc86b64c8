"""Minibatch CKA (Nguyen et al., ICLR 2021): average unbiased HSIC over minibatches, then normalise.

CKA_mb(A_i, B_j) = mean_b HSIC_1(K_ib, L_jb) / sqrt(mean_b HSIC_1(K_ib, K_ib) · mean_b HSIC_1(L_jb, L_jb)).
Only the per-batch Gram matrices and the (|A| × |B|) accumulators live in memory, so memory does not grow
with the number of examples. Per batch, each representation's Gram matrix is built once and the HSIC of every
pair comes from three matrix products (tr(K̃L̃), 1ᵀK̃1·1ᵀL̃1, 1ᵀK̃L̃1 for all pairs at once).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .cka import MIN_BATCH, as_features, gram_linear, gram_rbf, rbf_bandwidth


class MinibatchCKA:
    """Accumulate CKA between representations ``A_1..A_p`` and ``B_1..B_q`` of the same examples.

    ``update(feats_a, feats_b)`` takes one minibatch: two lists of (b, d_i) arrays/tensors (rows aligned).
    ``compute()`` returns the (p × q) CKA matrix. ``kernel="rbf"`` fixes each representation's bandwidth from
    its first batch (``rbf_scale`` × median distance) so every batch uses the same kernel.
    """

    def __init__(self, n_a: int, n_b: int, kernel: str = "linear", rbf_scale: float = 1.0,
                 device: str | torch.device = "cpu"):
        if kernel not in ("linear", "rbf"):
            raise ValueError(f"unknown kernel {kernel!r}; linear or rbf")
        self.kernel, self.rbf_scale, self.device = kernel, rbf_scale, torch.device(device)
        self.xy = torch.zeros(n_a, n_b, dtype=torch.float64)
        self.xx = torch.zeros(n_a, dtype=torch.float64)
        self.yy = torch.zeros(n_b, dtype=torch.float64)
        self.batches = 0
        self.examples = 0
        self._sigma_a: list[float] | None = None
        self._sigma_b: list[float] | None = None

    def _grams(self, feats: Sequence, sigmas: list[float] | None) -> tuple[torch.Tensor, list[float] | None]:
        grams = []
        xs = [as_features(f).to(self.device) for f in feats]
        if self.kernel == "rbf" and sigmas is None:
            sigmas = [rbf_bandwidth(x, self.rbf_scale) for x in xs]
        for i, x in enumerate(xs):
            g = gram_linear(x) if self.kernel == "linear" else gram_rbf(x, sigmas[i])
            grams.append(g.fill_diagonal_(0))
        return torch.stack(grams), sigmas  # (r, b, b), zero diagonals

    @staticmethod
    def _pair_hsic(ka: torch.Tensor, kb: torch.Tensor) -> torch.Tensor:
        """Unbiased HSIC for every pair (a, b) of zero-diagonal Gram stacks ka (p,n,n), kb (q,n,n)."""
        n = ka.shape[1]
        trace = ka.reshape(len(ka), -1) @ kb.reshape(len(kb), -1).T  # tr(K̃L̃) (symmetric Grams)
        sums = torch.outer(ka.sum((1, 2)), kb.sum((1, 2))) / ((n - 1) * (n - 2))
        cross = 2.0 / (n - 2) * (ka.sum(1) @ kb.sum(1).T)  # 1ᵀK̃L̃1 = (K̃1)·(L̃1)
        return (trace + sums - cross) / (n * (n - 3))

    def update(self, feats_a: Sequence, feats_b: Sequence) -> None:
        n = len(feats_a[0])
        if any(len(f) != n for f in list(feats_a) + list(feats_b)):
            raise ValueError("all representations of a minibatch must have the same number of rows")
        if n < MIN_BATCH:
            raise ValueError(f"minibatches need at least {MIN_BATCH} examples (got {n}); merge the last batch")
        ka, self._sigma_a = self._grams(feats_a, self._sigma_a)
        kb, self._sigma_b = self._grams(feats_b, self._sigma_b)
        self.xy += self._pair_hsic(ka, kb).cpu()
        self.xx += torch.diagonal(self._pair_hsic(ka, ka)).cpu()
        self.yy += torch.diagonal(self._pair_hsic(kb, kb)).cpu()
        self.batches += 1
        self.examples += n

    def compute(self) -> np.ndarray:
        if not self.batches:
            raise ValueError("no minibatch was added")
        denom = torch.sqrt(torch.clamp(torch.outer(self.xx, self.yy), min=0.0))
        out = torch.where(denom > 0, self.xy / denom, torch.full_like(self.xy, float("nan")))
        return out.numpy()


def batch_bounds(n: int, batch_size: int) -> list[tuple[int, int]]:
    """[start, stop) bounds of minibatches of ``batch_size``; a tail shorter than MIN_BATCH joins the last batch."""
    if n < MIN_BATCH:
        raise ValueError(f"CKA needs at least {MIN_BATCH} examples, got {n}")
    if batch_size < MIN_BATCH:
        raise ValueError(f"batch size must be at least {MIN_BATCH}")
    bounds = [(s, min(s + batch_size, n)) for s in range(0, n, batch_size)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < MIN_BATCH:
        tail = bounds.pop()
        bounds[-1] = (bounds[-1][0], tail[1])
    return bounds


def minibatch_cka_matrix(feats_a: Sequence[np.ndarray], feats_b: Sequence[np.ndarray], batch_size: int = 256,
                         kernel: str = "linear", rbf_scale: float = 1.0, shuffle_seed: int | None = 0,
                         device: str = "cpu") -> np.ndarray:
    """CKA between every representation in ``feats_a`` and every one in ``feats_b`` (rows = same examples).

    Rows are visited in a fixed pseudo-random order (``shuffle_seed``; ``None`` keeps the stored order) so a
    minibatch is a sample of the whole list, not, say, one class of a sorted list; the order is read through
    sorted index chunks, so memory-mapped inputs are never loaded whole.
    """
    arrays = list(feats_a) + list(feats_b)
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"representations have different numbers of rows: {[len(a) for a in arrays]}")
    order = np.arange(n) if shuffle_seed is None else np.random.default_rng(shuffle_seed).permutation(n)
    acc = MinibatchCKA(len(feats_a), len(feats_b), kernel=kernel, rbf_scale=rbf_scale, device=device)
    p = len(feats_a)
    for start, stop in batch_bounds(n, batch_size):
        idx = np.sort(order[start:stop])
        batch = [np.asarray(a[idx], dtype=np.float64) for a in arrays]
        acc.update(batch[:p], batch[p:])
    return acc.compute()


def minibatch_cka(x: np.ndarray, y: np.ndarray, **kw) -> float:
    return float(minibatch_cka_matrix([x], [y], **kw)[0, 0])


class RowSubset:
    """A row subset of a (memory-mapped) array without copying it: ``view[idx]`` reads only those rows."""

    def __init__(self, array, rows: np.ndarray):
        self.array, self.rows = array, np.asarray(rows)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, idx):
        return self.array[self.rows[idx]]


def finite_rows(arrays: Sequence, chunk: int = 4096) -> np.ndarray:
    """Indices of the rows that are finite in every array (read chunk by chunk)."""
    n = len(arrays[0])
    keep = np.ones(n, dtype=bool)
    for a in arrays:
        for s in range(0, n, chunk):
            block = np.asarray(a[s:s + chunk], dtype=np.float64).reshape(min(chunk, n - s), -1)
            keep[s:s + chunk] &= np.isfinite(block).all(1)
    return np.flatnonzero(keep)


def cka_of_arrays(feats_a: Sequence, feats_b: Sequence, batch_size: int = 1024, kernel: str = "linear",
                  rbf_scale: float = 1.0, device: str = "cpu", strict: bool = True) -> tuple[np.ndarray, int]:
    """(CKA matrix, examples used) between stored representations; rows non-finite in any of them
    (e.g. undecodable videos) are left out of all. ``strict``: a constant representation (CKA undefined, NaN)
    is an error instead of a NaN entry."""
    from ..errors import SevereError

    arrays = list(feats_a) + list(feats_b)
    sizes = sorted({len(a) for a in arrays})
    if len(sizes) != 1:
        raise SevereError(f"the representations have different numbers of rows ({sizes}); CKA compares the "
                          "same examples in the same order")
    if batch_size < MIN_BATCH:
        raise SevereError(f"the CKA batch size must be at least {MIN_BATCH} (the unbiased HSIC estimator divides "
                          f"by n(n-3)), got {batch_size}")
    rows = finite_rows(arrays)
    if len(rows) < MIN_BATCH:
        raise SevereError(f"CKA needs at least {MIN_BATCH} examples with finite features, got {len(rows)}")
    view = [RowSubset(a, rows) for a in arrays]
    p = len(feats_a)
    try:
        matrix = minibatch_cka_matrix(view[:p], view[p:], batch_size=batch_size, kernel=kernel,
                                      rbf_scale=rbf_scale, device=device)
    except ValueError as exc:  # what is left: an RBF bandwidth of 0 (the rows of a minibatch mostly identical)
        raise SevereError(f"{kernel} CKA: {exc}") from None
    if strict and np.isnan(matrix).any():
        raise SevereError("CKA is undefined for a constant representation (zero HSIC with itself)")
    return matrix, len(rows)
