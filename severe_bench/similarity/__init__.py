"""Representation similarity: CKA with the unbiased HSIC estimator, full-batch and minibatch (streaming)."""

from .cka import cka, hsic_biased, hsic_unbiased, linear_cka_feature_space
from .streaming import MinibatchCKA, minibatch_cka, minibatch_cka_matrix

__all__ = ["cka", "hsic_biased", "hsic_unbiased", "linear_cka_feature_space", "MinibatchCKA", "minibatch_cka",
           "minibatch_cka_matrix"]
