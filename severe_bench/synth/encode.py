"""Write frames to a real encoded video file with PyAV (the codec follows the file extension).

libx264 output can differ in a few low bits between runs of the same input in one process (seen with the
PyAV 18 wheels); the pictures are the same up to encoder rounding, which is why the suite manifest hashes
annotation files, not videos.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
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
    if codec.startswith("libvpx") and "decord" in sys.modules:
        # decord's wheel bundles an old libvpx; once it is loaded, PyAV's VP8/VP9 encoders bind to it and fail
        # to open. Encode in a fresh interpreter instead (decoding is unaffected: FFmpeg decodes VP8/9 natively).
        return _encode_in_subprocess(path, frames, fps, codec, options)
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


def _encode_in_subprocess(path: Path, frames: np.ndarray, fps: float, codec: str, options: dict) -> Path:
    import json

    with tempfile.TemporaryDirectory() as tmp:
        npy = Path(tmp) / "frames.npy"
        np.save(npy, frames)
        args = json.dumps([str(path), str(npy), float(fps), codec, options])
        code = ("import json, sys, numpy as np; from severe_bench.synth.encode import write_video; "
                "p, f, fps, c, o = json.loads(sys.argv[1]); write_video(p, np.load(f), fps, codec=c, options=o)")
        done = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"encoding {path} with {codec} failed: {done.stderr.strip()[-500:]}")
    return path
