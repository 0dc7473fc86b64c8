"""Built-in synthetic suite: small datasets of real encoded videos in the official annotation formats.

See ``suite`` for the manifest/caching and ``motion``, ``fine``, ``count``, ``multilabel`` for the datasets.
"""

from .suite import (
    GENERATORS,
    MANIFEST,
    SCALES,
    SYNTH_VERSION,
    complete_manifest,
    ensure_suite,
    generate_suite,
    load_manifest,
)

__all__ = [
    "GENERATORS",
    "MANIFEST",
    "SCALES",
    "SYNTH_VERSION",
    "complete_manifest",
    "ensure_suite",
    "generate_suite",
    "load_manifest",
]
