#!/usr/bin/env bash
# Everything that needs a GPU, in one go (< 8 min on one H100/H200-class GPU), appending its figures to
# bench/RESULTS.md with device, date and command:
#   1. bench/throughput.py at the protocol sizes with the model step (train + 10-clip test clips/s, ratios to
#      the on-device ceiling, peak GPU memory) for R(2+1)D-18 32x112^2 b32 and ViT-B 16x224^2;
#   2. bench/augment_compare.py at the training batches: colour jitter (R(2+1)D-18 32x32x112^2) and RandAugment
#      (ViT 16x16x224^2), own batched ops vs a per-clip torchvision loop vs kornia;
#   3. the built-in synth suite under its own (non-smoke) protocol from scratch, each task's metric against
#      chance (bench/learns_above_chance.py).
# Usage (repository root, package importable): bash bench/gpu_check.sh [OUT_DIR]
# A GPU host with PyTorch but no package index: bring wheels (bench/offline_wheels.sh) and run from a plain copy
# of the repository with WHEELS=DIR: they are installed into OUT_DIR/site, and the package is imported from here.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-/tmp/severe_gpu_check}"
PY="${PYTHON:-python}"
RESULTS=bench/RESULTS.md
mkdir -p "$OUT"
if [ -n "${WHEELS:-}" ]; then
  if ! compgen -G "$WHEELS/*.whl" > /dev/null; then
    echo "WHEELS=$WHEELS holds no .whl files: make them with 'bash bench/offline_wheels.sh $WHEELS 3.12' where pip can download" >&2
    exit 2
  fi
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$OUT/site" \
    "$WHEELS"/*.whl
  export PYTHONPATH="$OUT/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
  # a plain copy has no .git: the commit bench/offline_wheels.sh recorded goes where a built wheel keeps it
  if [ ! -e .git ] && [ -f "$WHEELS/_build_info.py" ]; then cp "$WHEELS/_build_info.py" severe_bench/_build_info.py; fi
fi
# fail in seconds, not minutes in, when a library is missing
"$PY" -c "import severe_bench, torch, torchvision, decord, av, fvcore, timm; from severe_bench.provenance import code_info; print('severe_bench', code_info(), 'torch', torch.__version__, 'cuda', torch.version.cuda)"
"$PY" -c "import kornia" 2>/dev/null || echo "kornia is not installed: bench/augment_compare.py leaves it out of the comparison"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
DEVICE="$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)"
DATE="$(date -u +%Y-%m-%d)"
echo "## GPU check — $DEVICE, $DATE (bench/gpu_check.sh)" >> "$RESULTS"

timeout 300 "$PY" bench/throughput.py --full --model --videos 64 --json "$OUT/throughput.json" \
  --append-results "$RESULTS"

{ echo; echo "Colour jitter and RandAugment per batch (\`$PY bench/augment_compare.py --full\`, $DEVICE, $DATE):"; echo '```';
  timeout 60 "$PY" bench/augment_compare.py --full; echo '```'; } >> "$RESULTS"

# A suite that runs out of time still reports the tasks it finished (and says that it stopped).
timeout 240 "$PY" -m severe_bench eval --checkpoint scratch --suite synth --out "$OUT/synth" --restart \
  || echo "- the synth suite stopped before finishing (exit $?, limit 240 s): tasks without a row did not run" >> "$RESULTS"
"$PY" bench/learns_above_chance.py "$OUT/synth" --append-results "$RESULTS" \
  --command "$PY -m severe_bench eval --checkpoint scratch --suite synth --out $OUT/synth"
tail -n 40 "$RESULTS"
