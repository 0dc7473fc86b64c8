"""Write frames to a real encoded video file with PyAV (the codec follows the file extension)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

# extension -> (encoder, encoder options); one encoder thread keeps the output bytes deterministic
CODECS = {
    ".avi": ("mpeg4", {"qmin": "2", "qmax": "4"}),  # UCF101/HMDB51 style: MPEG-4 part 2 in AVI
    ".mp4": ("libx264", {"crf": "20", "preset": "veryfast"}),  # FineGym / Charades / Diving48 style
    ".webm": ("libvpx-vp9", {"crf": "32", "b": "0", "deadline": "realtime", "cpu-used": "8"}),  # SSv2 style
    ".mkv": ("libx264", {"crf": "20", "preset": "veryfast"}),
}


def write_video(path, frames: np.ndarray, fps: float, codec: str | None = None, options: dict | None = None):
    """Encode ``frames`` (T, H, W, 3) uint8 RGB at ``fps`` into ``path``; H and W must be even."""
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    t, h, w, _ = frames.shape
    if h % 2 or w % 2:
        raise ValueError(f"frame size {w}x{h}: yuv420p encoders need even width and height")
    path = Path(path)
    default_codec, default_options = CODECS.get(path.suffix.lower(), ("libx264", {"crf": "20"}))
    codec = codec or default_codec
    options = dict(default_options if options is None else options) if codec == default_codec else dict(options or {})
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=rate, options=options)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.thread_count = 1
        for image in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():  # flush delayed frames
            container.mux(packet)
    return path
