"""Video decoding (``reader``), clip sampling (``sampling``) and clip transforms (``transforms``).

``transforms`` imports torch/torchvision; import it explicitly (``from severe_bench.video.transforms import
...``) so that decoding and sampling stay light.
"""

from .reader import VideoDecodeError, VideoHandle, decode_clips, open_video, resolve_backend
from .sampling import retimed_indices, test_clip_indices, train_clip_indices

__all__ = [
    "VideoDecodeError",
    "VideoHandle",
    "decode_clips",
    "open_video",
    "resolve_backend",
    "retimed_indices",
    "test_clip_indices",
    "train_clip_indices",
]
