#!/usr/bin/env bash
# Everything that needs a GPU, in one go (< 8 min on one H100/H200-class GPU), appending its figures to
# bench/RESULTS.md with device, date and command:
#   1. bench/throughput.py at the protocol sizes with the model step (train + 10-clip test clips/s, ratios to
#      the on-device ceiling, peak GPU memory) for R(2+1)D-18 32x112^2 b32 and ViT-B 16x224^2;
#   2. bench/augment_compare.py at the training batches: colour jitter (R(2+1)D-18 32x32x112^2) and RandAugment
#      (ViT 16x16x224^2), own batched ops vs a per-clip torchvision loop vs kornia;
#   3. the built-in synth suite under its own (non-smoke) protocol from scratch, each task's metric against
#      chance (bench/learns_above_chance.py; counting also against the untrained model), the tasks side by side.
# Usage (repository root, package importable): bash bench/gpu_check.sh [OUT_DIR]
# A GPU host with PyTorch but no package index: bring wheels (bench/offline_wheels.sh) and run from a plain copy
# of the repository with WHEELS=DIR: they are installed into OUT_DIR/site, and the package is imported from here.
# RESULTS=FILE appends there instead of bench/RESULTS.md (e.g. a file the device run brings back even when the
# run is cut short). Each stage has its own time limit (worst case < 8 min in all, inside one 10-min device
# call); a stage that fails or runs out of time is written down and the next one still runs. COPY_TO=DIR: on
# exit, copy the small outputs there (throughput.json, logs, each synth task's result, predictions and log).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-/tmp/severe_gpu_check}"
PY="${PYTHON:-python}"
RESULTS="${RESULTS:-bench/RESULTS.md}"
# seconds per stage (throughput benchmark, augmentation comparison, synth suite): < 8 min with the install
LIMIT_BENCH=220 LIMIT_AUGMENT=40 LIMIT_SYNTH=170
mkdir -p "$OUT"
copy_outputs() {
  [ -n "${COPY_TO:-}" ] || return 0
  mkdir -p "$COPY_TO"
  cp -r "$OUT/throughput.json" "$OUT/logs" "$COPY_TO/" 2>/dev/null || true
  if [ -d "$OUT/synth" ]; then
    (cd "$OUT" && find synth synth_untrained \( -name result.json -o -name predictions.json -o -name run.log \) \
       -exec cp --parents {} "$COPY_TO/" \;) || true
  fi
}
trap copy_outputs EXIT
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

# stopped by its limit, it still writes the models it finished (and says which it did not)
timeout "$LIMIT_BENCH" "$PY" bench/throughput.py --full --model --videos 64 --json "$OUT/throughput.json" \
  --append-results "$RESULTS" \
  || echo "- bench/throughput.py stopped before finishing (exit $?, limit $LIMIT_BENCH s)" >> "$RESULTS"

{ echo; echo "Colour jitter and RandAugment per batch (\`$PY bench/augment_compare.py --full\`, $DEVICE, $DATE):"; echo '```';
  timeout "$LIMIT_AUGMENT" "$PY" bench/augment_compare.py --full || echo "(stopped: exit $?, limit $LIMIT_AUGMENT s)"; echo '```'; } >> "$RESULTS"

# The synth suite's tasks run side by side, one process each with the cores split between them (one after
# another they would not fit the limit; the GPU has room for all), so each task's wall time is that of a shared
# GPU. A task that runs out of time has no row and is named here. Logs: OUT_DIR/logs/<task>.log.
mkdir -p "$OUT/logs"
# generated once here, not once per task (a task generates it itself if this fails)
"$PY" -m severe_bench synth > "$OUT/logs/synth_generate.log" 2>&1 \
  || echo "- the synth suite could not be generated (exit $?, log $OUT/logs/synth_generate.log)" >> "$RESULTS"
read -r -a SYNTH_TASKS <<< "$("$PY" -c "from severe_bench.registry import suite_tasks; print(' '.join(suite_tasks('synth')))")"
CORES="$(nproc)"
TASK_WORKERS=$(( CORES / ${#SYNTH_TASKS[@]} > 0 ? CORES / ${#SYNTH_TASKS[@]} : 1 ))
PIDS=()
for t in "${SYNTH_TASKS[@]}"; do
  timeout "$LIMIT_SYNTH" "$PY" -m severe_bench eval --checkpoint scratch -t "$t" --workers "$TASK_WORKERS" --out "$OUT/synth" \
    --restart > "$OUT/logs/$t.log" 2>&1 &
  PIDS+=($!)
done
# beside them, the counting tasks without training (the seed's random weights, every other value the same):
# their test procedure has priors of its own, so learns_above_chance.py holds them to the stricter of chance
# and this (bench/RESULTS.md, synth_count 2026-12-07)
UNTRAINED=() UNTRAINED_PIDS=()
if read -r -a UNTRAINED < <("$PY" bench/learns_above_chance.py --make-untrained-tasks "$OUT/tasks_untrained" \
                             2> "$OUT/logs/untrained_tasks.log"); then
  for t in "${UNTRAINED[@]}"; do
    SEVERE_TASKS_DIR="$OUT/tasks_untrained" timeout "$LIMIT_SYNTH" "$PY" -m severe_bench eval --checkpoint scratch -t "$t" \
      --workers 1 --out "$OUT/synth_untrained" --restart > "$OUT/logs/${t}_untrained.log" 2>&1 &
    UNTRAINED_PIDS+=($!)
  done
fi
for i in "${!SYNTH_TASKS[@]}"; do
  rc=0; wait "${PIDS[$i]}" || rc=$?
  echo "${SYNTH_TASKS[$i]}: exit $rc"; tail -n 3 "$OUT/logs/${SYNTH_TASKS[$i]}.log"
  [ "$rc" -eq 0 ] || echo "- synth task ${SYNTH_TASKS[$i]} stopped before finishing (exit $rc, limit $LIMIT_SYNTH s): no row" >> "$RESULTS"
done
for i in "${!UNTRAINED_PIDS[@]}"; do
  rc=0; wait "${UNTRAINED_PIDS[$i]}" || rc=$?
  [ "$rc" -eq 0 ] || echo "- ${UNTRAINED[$i]} without training stopped before finishing (exit $rc): its row has no untrained bar" >> "$RESULTS"
done
"$PY" bench/learns_above_chance.py "$OUT/synth" --untrained "$OUT/synth_untrained" --append-results "$RESULTS" \
  --command "$PY -m severe_bench eval --checkpoint scratch -t TASK --workers $TASK_WORKERS --out $OUT/synth, the ${#SYNTH_TASKS[@]} tasks side by side" \
  || echo "- no synth task finished: nothing to compare with chance" >> "$RESULTS"
tail -n 40 "$RESULTS"
