"""Datasets: official annotation readers, samples, clip datasets."""
