#!/usr/bin/env bash
# Wheels for a GPU host that has PyTorch but no package index (a cluster node, a lent machine): the video
# decoders, fvcore and kornia that such an image usually lacks, for its Python, so that bench/gpu_check.sh runs
# there from a plain copy of this repository.
#
# Here (with network):  bash bench/offline_wheels.sh [DIR] [PYTHON_VERSION]      (defaults: .whl 3.12)
# There (no network):   WHEELS=DIR PYTHON=python3 bash bench/gpu_check.sh [OUT_DIR]   (it installs them)
# The host must already have torch, torchvision, numpy, scipy, scikit-learn, pandas, tabulate, matplotlib,
# click, tqdm, rich, pyyaml, pillow, portalocker, safetensors, huggingface_hub and timm (check with `pip show`).
# Versions are the ones the test suite runs with here; fvcore and iopath publish only source archives, so their
# (pure-Python) wheels are built locally. DIR/_build_info.py records this checkout's commit: a plain copy has no
# .git, and gpu_check.sh (WHEELS=DIR) puts it where a built wheel keeps it, so the results name the commit.
set -euo pipefail
DIR="${1:-.whl}"
PYVER="${2:-3.12}"
PY="${PYTHON:-python3}"
mkdir -p "$DIR"
PLATFORMS=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 \
         manylinux2010_x86_64 manylinux1_x86_64; do
  PLATFORMS+=(--platform "$p")
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
  "${PLATFORMS[@]}" -d "$DIR" decord==0.6.0 av==18.1.0 kornia==0.9.0 kornia_rs==0.2.0 termcolor yacs
"$PY" -m pip wheel -q --no-deps -w "$DIR" fvcore==0.1.5.post20221221 iopath==0.1.10
"$PY" -c "import sys; sys.path.insert(0, '.'); import build_hooks; print(build_hooks.build_info_source(), end='')" \
  > "$DIR/_build_info.py"
grep COMMIT "$DIR/_build_info.py"
ls -l "$DIR"/*.whl
du -cb "$DIR"/*.whl | tail -1 | awk '{printf "total %.1f MiB\n", $1 / 1048576}'
