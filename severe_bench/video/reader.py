"""Video decoding behind one small interface.

``open_video(path)`` returns a ``VideoHandle`` with ``num_frames``, ``fps``, ``height``, ``width`` and
``get_frames(indices) -> (len(indices), H, W, 3) uint8 RGB``. Two backends:

* ``decord`` (default where it imports; Linux x86-64 wheels only): random access with ``get_batch``.
* ``pyav`` (fallback, or ``backend="pyav"`` / ``SEVERE_VIDEO_BACKEND=pyav``): decodes sequentially from the
  start and keeps the requested frames. Container frame counts are unreliable (webm/mkv report 0), so when
  the stream does not state one the frames are counted by decoding.

With ``backend="auto"`` a file that decord cannot open or decode is retried with PyAV before giving up.
``short_side``: decode at that short side (the decoder's scaler resizes each frame as it is decoded: less
colour conversion and copying than full frames; the pixels differ slightly from a torchvision resize, so the
protocols use it only under the ``fast_decode`` profile). Sizes follow torchvision's ``resize``.
Every failure to open or decode a file raises ``VideoDecodeError`` (not a ``SevereError``: one bad video in a
dataset is counted and skipped by the dataset code, it does not abort a run).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError

BACKENDS = ("auto", "decord", "pyav")
ENV_BACKEND = "SEVERE_VIDEO_BACKEND"


class VideoDecodeError(Exception):
    """A video file could not be opened or decoded."""

    def __init__(self, path, reason):
        self.path, self.reason = str(path), str(reason)
        super().__init__(f"cannot decode video {self.path}: {self.reason}")


def decord_available() -> bool:
    try:
        import decord  # noqa: F401
    except Exception:  # ImportError, or a broken native library
        return False
    return True


def resolve_backend(backend: str = "auto") -> str:
    """``auto`` -> $SEVERE_VIDEO_BACKEND if set, else decord where it imports, else pyav."""
    if backend == "auto":
        backend = os.environ.get(ENV_BACKEND, "auto").strip().lower() or "auto"
    if backend not in BACKENDS:
        raise ConfigError(f"unknown video backend {backend!r} (choose one of: {', '.join(BACKENDS)})")
    if backend == "auto":
        return "decord" if decord_available() else "pyav"
    if backend == "decord" and not decord_available():
        raise ConfigError("video backend 'decord' requested but decord cannot be imported "
                          "(decord ships Linux x86-64 wheels only); use backend 'pyav'")
    return backend


def resized_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """(height, width) with the short side at ``short_side`` (torchvision ``resize``: the long side is
    ``int(short_side * long / short)``); unchanged when ``short_side`` is None or already the short side."""
    if not short_side or min(height, width) == short_side:
        return height, width
    if height <= width:
        return int(short_side), int(short_side * width / height)
    return int(short_side * height / width), int(short_side)


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, height, width, 3) with torchvision's antialiased bilinear resize."""
    if frames.shape[1:3] == (height, width):
        return frames
    import torch
    from torchvision.transforms.v2 import functional as TF

    x = TF.resize(torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2), [height, width], antialias=True)
    return np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())


def _as_indices(indices, num_frames: int) -> np.ndarray:
    """Integer frame indices clamped into the video (samplers may ask for the last frame + rounding)."""
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if num_frames <= 0:
        raise ValueError("video has no frames")
    return np.clip(idx, 0, num_frames - 1)


class VideoHandle:
    """An opened video. Subclasses implement ``_read(sorted unique indices) -> frames``."""

    path: str
    num_frames: int
    fps: float
    height: int
    width: int
    backend: str

    def get_frames(self, indices) -> np.ndarray:
        """Frames at ``indices`` (any order, repeats allowed) as (len(indices), H, W, 3) uint8 RGB."""
        idx = _as_indices(indices, self.num_frames)
        if idx.size == 0:
            return np.zeros((0, self.height, self.width, 3), dtype=np.uint8)
        unique, inverse = np.unique(idx, return_inverse=True)
        try:
            frames = self._read(unique)
        except VideoDecodeError:
            raise
        except Exception as exc:  # decoder errors come in many types (DECORDError, av.error.*, ...)
            raise VideoDecodeError(self.path, f"{type(exc).__name__}: {exc}") from exc
        return frames[inverse]

    def get_clips(self, clip_indices) -> np.ndarray:
        """Frames for a set of clips: (N, T) indices -> (N, T, H, W, 3) uint8. Every distinct frame is
        decoded once, however many (overlapping) clips use it."""
        clip_indices = np.asarray(clip_indices, dtype=np.int64)
        if clip_indices.ndim != 2:
            raise ValueError(f"clip_indices must be (num_clips, T), got shape {clip_indices.shape}")
        frames = self.get_frames(clip_indices.reshape(-1))
        return frames.reshape(clip_indices.shape + frames.shape[1:])

    def _read(self, unique: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def declared_frames(self) -> int:
        """The frame count the container's header declares (0 when it declares none, e.g. webm)."""
        return header_frame_count(self.path)

    def truncation(self) -> str | None:
        """Why this video looks truncated (it decodes clearly fewer frames than its container declares), or
        None. A decoder that met the real end reports the real count; PyAV learns it on reading past it."""
        return short_of_header(self.num_frames, self.declared_frames())

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return (f"{type(self).__name__}({self.path!r}, frames={self.num_frames}, fps={self.fps:.3f}, "
                f"{self.width}x{self.height})")


_NATIVE_SIZE: dict[str, tuple[int, int]] = {}  # path -> (height, width): decode-at-size opens each file once


class DecordVideo(VideoHandle):
    backend = "decord"

    def __init__(self, path: str, short_side: int | None = None):
        import decord

        self.path, self.short_side = str(path), short_side

        def open_at(size):  # one thread per reader: data-loader workers already parallelise over videos
            scale = {} if size is None else {"width": size[1], "height": size[0]}  # decord's scaler needs both
            return decord.VideoReader(self.path, num_threads=1, **scale)

        try:
            native = _NATIVE_SIZE.get(self.path) if short_side else None  # known from an earlier open
            size = None if native is None else resized_size(*native, short_side)
            self._vr = open_at(None if size == native else size)
            self.num_frames = len(self._vr)
            self.fps = float(self._vr.get_avg_fps() or 0.0)
            if self.num_frames <= 0:
                raise VideoDecodeError(self.path, "no frames")
            if native is None:
                native = tuple(int(v) for v in self._vr[0].shape[:2])
                size = resized_size(*native, short_side)
                if short_side:
                    _NATIVE_SIZE[self.path] = native
                    if size != native:  # reopen at the decode size
                        self._vr = open_at(size)
            h, w = size
        except VideoDecodeError:
            raise
        except Exception as exc:
            raise VideoDecodeError(self.path, f"{type(exc).__name__}: {exc}") from exc
        self.height, self.width = int(h), int(w)

    def _read(self, unique):
        frames = self._vr.get_batch(unique.tolist()).asnumpy()
        if frames.shape[0] != len(unique):
            raise VideoDecodeError(self.path, f"decord returned {frames.shape[0]} of {len(unique)} frames")
        return np.ascontiguousarray(frames, dtype=np.uint8)

    def close(self):
        self._vr = None


class PyAVVideo(VideoHandle):
    backend = "pyav"

    def __init__(self, path: str, short_side: int | None = None):
        import av

        self.path, self.short_side = str(path), short_side
        try:
            with av.open(self.path) as container:
                if not container.streams.video:
                    raise VideoDecodeError(self.path, "no video stream")
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate or stream.base_rate
                self.fps = float(rate) if rate else 0.0
                self.height, self.width = resized_size(int(stream.codec_context.height),
                                                       int(stream.codec_context.width), short_side)
                declared = int(stream.frames or 0)
                self._declared = declared
            # the declared count is missing in webm/mkv; count by decoding then (also validates the file)
            self.num_frames = declared if declared > 0 else self._count_frames()
        except VideoDecodeError:
            raise
        except Exception as exc:
            raise VideoDecodeError(self.path, f"{type(exc).__name__}: {exc}") from exc
        if self.num_frames <= 0:
            raise VideoDecodeError(self.path, "no frames")

    def declared_frames(self) -> int:
        return self._declared

    def _decode(self):
        """Yield decoded RGB frames in display order, one decoder thread."""
        import av

        with av.open(self.path) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            for frame in container.decode(stream):
                yield frame

    def _rgb(self, frame) -> np.ndarray:
        if (frame.height, frame.width) == (self.height, self.width):
            return frame.to_ndarray(format="rgb24")
        return frame.to_ndarray(format="rgb24", width=self.width, height=self.height)  # swscale resizes

    def _count_frames(self) -> int:
        n = 0
        for _ in self._decode():
            n += 1
        return n

    def _read(self, unique):
        wanted = {int(i): k for k, i in enumerate(unique)}
        last_wanted = int(unique[-1])
        out = np.empty((len(unique), self.height, self.width, 3), dtype=np.uint8)
        got, decoded, last_frame = 0, 0, None
        frames = self._decode()
        try:
            for i, frame in enumerate(frames):
                decoded, last_frame = i + 1, frame
                if i in wanted:
                    image = self._rgb(frame)
                    if image.shape != out.shape[1:]:  # resolution change mid-stream
                        raise VideoDecodeError(self.path, f"frame {i} is {image.shape}, expected {out.shape[1:]}")
                    out[wanted[i]] = image
                    got += 1
                if i >= last_wanted:
                    break
        finally:
            frames.close()
        if decoded == 0:
            raise VideoDecodeError(self.path, "no frame could be decoded")
        if got < len(unique):
            # the container over-stated its frame count (e.g. a truncated AVI keeps its header): the missing
            # tail repeats the last decodable frame, and later samplers get the real count
            out[got:] = self._rgb(last_frame)
            self.num_frames = decoded
        return out


class _FallbackVideo(VideoHandle):
    """decord first; on a decode error switch to PyAV for this file (``backend="auto"`` only)."""

    def __init__(self, primary: VideoHandle):
        self._inner = primary
        self.path, self.num_frames, self.fps = primary.path, primary.num_frames, primary.fps
        self.height, self.width = primary.height, primary.width

    @property
    def backend(self):
        return self._inner.backend

    def get_frames(self, indices):
        try:
            return self._inner.get_frames(indices)
        except VideoDecodeError as first:
            if isinstance(self._inner, PyAVVideo):
                raise
            try:
                self._inner = PyAVVideo(self.path, getattr(self._inner, "short_side", None))
            except VideoDecodeError as second:
                raise VideoDecodeError(self.path, f"decord: {first.reason}; pyav: {second.reason}") from second
            return self._inner.get_frames(indices)

    def truncation(self):
        self.num_frames = self._inner.num_frames
        return self._inner.truncation()

    def close(self):
        self._inner.close()


def header_frame_count(path) -> int:
    """The frame count a video's header declares, read without decoding (0 when unknown or unreadable)."""
    import av

    try:
        with av.open(str(path)) as container:
            return int(container.streams.video[0].frames or 0) if container.streams.video else 0
    except Exception:  # an unreadable header declares nothing; decoding reports the error itself
        return 0


def short_of_header(decoded: int, declared: int) -> str | None:
    """The truncation note when ``decoded`` is clearly below the ``declared`` count (1 % or 2 frames slack)."""
    if declared and decoded < declared - max(2, declared // 100):
        return f"decodes {decoded} of the {declared} frames its container declares (truncated?)"
    return None


def full_decode_check(path) -> str | None:
    """Decode every frame of ``path`` once (PyAV, one pass): None when it decodes completely, else why not
    (cannot be opened, a decoding error, or fewer frames than its container declares). For
    ``severe data check --decode``."""
    import av

    if Path(path).is_dir():  # a frame-folder video: no container to compare with; it must open
        try:
            open_video(path).close()
        except VideoDecodeError as exc:
            return exc.reason
        return None
    decoded = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return "no video stream"
            stream = container.streams.video[0]
            declared = int(stream.frames or 0)
            stream.codec_context.thread_count = 1
            for _ in container.decode(stream):
                decoded += 1
    except Exception as exc:  # av.error.* of many kinds
        return f"decoding stops after {decoded} frames: {type(exc).__name__}: {exc}" if decoded else \
            f"{type(exc).__name__}: {exc}"
    if decoded == 0:
        return "no frame could be decoded"
    return short_of_header(decoded, declared)


def open_video(path, backend: str = "auto", frame_fps: float | None = None,
               short_side: int | None = None) -> VideoHandle:
    """Open ``path`` for frame access; raises ``VideoDecodeError`` if it is missing or undecodable.

    A folder is read as a frame-folder video (``video/frames.py``) at ``frame_fps``. ``short_side``: frames
    come at that short side (resized while decoding; a frame folder resizes its images with torchvision)."""
    path = str(path)
    if Path(path).is_dir():
        from .frames import FrameFolderVideo

        return FrameFolderVideo(path, frame_fps, short_side)
    requested = backend if backend != "auto" else (os.environ.get(ENV_BACKEND, "").strip().lower() or "auto")
    chosen = resolve_backend(requested)
    auto = requested == "auto"  # only an unpinned choice may switch backend per file
    if not Path(path).is_file():
        raise VideoDecodeError(path, "no such file")
    if chosen == "pyav":
        return PyAVVideo(path, short_side)
    try:
        handle = DecordVideo(path, short_side)
    except VideoDecodeError as first:
        if not auto:
            raise
        try:
            return PyAVVideo(path, short_side)
        except VideoDecodeError as second:
            raise VideoDecodeError(path, f"decord: {first.reason}; pyav: {second.reason}") from second
    return _FallbackVideo(handle) if auto else handle


def decode_clips(path, clip_indices, backend: str = "auto") -> np.ndarray:
    """Frames for a set of clips of one video: (N, T) indices -> (N, T, H, W, 3) uint8 (``get_clips`` on a
    freshly opened video)."""
    with open_video(path, backend=backend) as video:
        return video.get_clips(clip_indices)
