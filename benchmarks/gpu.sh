#!/usr/bin/env bash
# The one GPU run of a task (prepared here, run once on the device, results into $OUT):
#  1. paper-scale IBP training times, HIGHEST vs TF32 (benchmarks/gpu_paper_scale.py);
#  2. the Figure 1 protocol sweeps behind FINDINGS.md (experiments/fig1_protocol_gpu.toml,
#     fig1_fixed_lr.toml, fig1_warmup.toml), run side by side, each under a time limit
#     (sweeps resume, so a cut leaves finished cells); the results directories come back
#     as $OUT/results.tgz;
#  3. the deep-net benchmarks when the bound engine is present (benchmarks/gpu_deep.py), the
#     grouped-model and per-method step benchmarks (bench_deep.py, bench_methods.py) and the
#     deep-net width sweep (experiments/deep.toml at GPU widths).
# Usage on the device: bash benchmarks/gpu.sh   (SMALL=1 for a CPU-sized dry run)
# Needs a CUDA jax and mlxtend (carried as a wheel in .whl/ when missing).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/ntkflow_gpu_out}
mkdir -p "$OUT" results
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1 PYTHONPATH="$PWD:${PYTHONPATH:-}"
PY=${PY:-python3}
T_SWEEP=${T_SWEEP:-290}
if [ -n "${SMALL:-}" ]; then
  QUICK=--quick; SET=(--set grid.width=[20,40] --set grid.seed=[0] --set train.epochs=3); T_SWEEP=120
else
  QUICK=; SET=()
fi
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>/dev/null | tee "$OUT/gpu.txt"
timeout -k 5 170 $PY benchmarks/gpu_paper_scale.py $QUICK 2>&1 | tee "$OUT/paper_scale.txt"
if [ -f benchmarks/gpu_deep.py ]; then
  timeout -k 5 80 $PY benchmarks/gpu_deep.py $QUICK 2>&1 | tee "$OUT/deep.txt"
fi
# issues 14/15 (CPU-tested here; on a GPU, fit_group's auto grouping is vmap):
timeout -k 5 120 $PY benchmarks/bench_deep.py $QUICK 2>&1 | tee "$OUT/bench_deep.txt"
timeout -k 5 120 $PY benchmarks/bench_methods.py $QUICK 2>&1 | tee "$OUT/bench_methods.txt"
timeout -k 5 150 $PY -m ntkflow.cli sweep experiments/deep.toml --out results/deep --quiet \
  --set grid.width=[64,256,1024,4096] --set data.n_train=500 > "$OUT/sweep_deep.txt" 2>&1
start=$(date +%s)
timeout -k 5 "$T_SWEEP" $PY -m ntkflow.cli sweep experiments/fig1_protocol_gpu.toml --out results/protocol_gpu \
  --workers 6 --quiet "${SET[@]}" > "$OUT/sweep_protocol.txt" 2>&1 &
timeout -k 5 "$T_SWEEP" $PY -m ntkflow.cli sweep experiments/fig1_fixed_lr.toml --out results/fixed_lr \
  --workers 2 --quiet "${SET[@]}" > "$OUT/sweep_fixed.txt" 2>&1 &
timeout -k 5 "$T_SWEEP" $PY -m ntkflow.cli sweep experiments/fig1_warmup.toml --out results/warmup \
  --workers 2 --quiet "${SET[@]}" > "$OUT/sweep_warmup.txt" 2>&1 &
wait
echo "sweeps: $(( $(date +%s) - start )) s" | tee -a "$OUT/gpu.txt"
for d in protocol_gpu fixed_lr warmup; do
  echo "$d: $(ls results/$d/cells 2>/dev/null | wc -l) finished cells" | tee -a "$OUT/gpu.txt"
done
tail -n 3 "$OUT"/sweep_*.txt
tar czf "$OUT/results.tgz" results/protocol_gpu results/fixed_lr results/warmup
