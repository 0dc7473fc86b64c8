"""Videos stored as folders of numbered JPEG frames (PySlowFast's Charades layout, ``Charades_v1_rgb/<id>/``).

A folder has no frame rate of its own: the dataset states it (Charades_v1_rgb was extracted at 24 fps, per the
dataset README), and the sample carries it as ``meta["frame_fps"]``. Frames are the folder's image files in
name order (the frame lists number them with zero padding, so name order is frame order).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .reader import VideoDecodeError, VideoHandle, resize_frames, resized_size

IMAGE_EXTS = {".jpg", ".jpeg", ".png"}


def frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def video_present(path) -> bool:
    """A video file, or a frame folder, exists at ``path``."""
    path = Path(path)
    return path.is_file() or path.is_dir()


class FrameFolderVideo(VideoHandle):
    backend = "frames"

    def __init__(self, path, fps: float | None, short_side: int | None = None):
        self.path, self.short_side = str(path), short_side
        if not fps or fps <= 0:
            raise VideoDecodeError(self.path, "a frame folder needs its frame rate (the sample's meta frame_fps)")
        try:
            self._files = frame_files(Path(path))
        except OSError as exc:
            raise VideoDecodeError(self.path, f"cannot list the frame folder: {exc}") from exc
        if not self._files:
            raise VideoDecodeError(self.path, "no image frames in the folder")
        self.num_frames, self.fps = len(self._files), float(fps)
        first = self._load(0)
        self._native = first.shape[:2]
        self.height, self.width = resized_size(*self._native, short_side)

    def _load(self, i: int) -> np.ndarray:
        from PIL import Image

        with Image.open(self._files[i]) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)

    def _read(self, unique):
        out = np.empty((len(unique), *self._native, 3), dtype=np.uint8)
        for k, i in enumerate(unique):
            image = self._load(int(i))
            if image.shape != out.shape[1:]:
                raise VideoDecodeError(self.path, f"frame {self._files[int(i)].name} is {image.shape}, "
                                                  f"expected {out.shape[1:]}")
            out[k] = image
        return resize_frames(out, self.height, self.width)
