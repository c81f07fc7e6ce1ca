#!/usr/bin/env bash
# The one device run of a task (prepared and dry-run here with SMALL=1, run once on the device,
# results into $OUT; about 7 minutes):
#  1. in the background, on the machine's CPU cores (JAX_PLATFORMS=cpu, 12 workers): the ε–width
#     phase diagram (experiments/phase_gpu.toml; sweeps resume, so a cut leaves finished cells),
#     returned as $OUT/phase.tgz;
#  2. on the GPU: deep certified-training steps on CIFAR-shaped input (benchmarks/gpu_cifar.py:
#     DM-small, CNN7, CNN7-BN; plain, IBP, CROWN-IBP β = 0 / 1, loss fusion), the 3×1024 MLP with
#     K models vmapped (benchmarks/gpu_deep.py), and the CROWN-IBP step ratios
#     (benchmarks/bench_crown_ibp.py) when present.
# Usage on the device: bash benchmarks/gpu.sh   (SMALL=1 for a CPU-sized dry run)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/ntkflow_gpu_out}
mkdir -p "$OUT" results
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1 PYTHONPATH="$PWD:${PYTHONPATH:-}"
PY=${PY:-python3}
T_SWEEP=${T_SWEEP:-400}
if [ -n "${SMALL:-}" ]; then
  QUICK=--quick; SET=(--set grid.width=[20] --set grid.seed=[0,1] --set 'grid.eps=[0.001]' --set train.epochs=50)
  T_SWEEP=120; WORKERS=2
else
  QUICK=; SET=(); WORKERS=12
fi
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>/dev/null | tee "$OUT/gpu.txt"
$PY -c "import jax; print('jax', jax.__version__, jax.devices())" 2>&1 | tee -a "$OUT/gpu.txt"
start=$(date +%s)
JAX_PLATFORMS=cpu timeout -k 5 "$T_SWEEP" $PY -m ntkflow.cli sweep experiments/phase_gpu.toml --out results/phase \
  --workers "$WORKERS" --quiet "${SET[@]}" > "$OUT/sweep_phase.txt" 2>&1 &
sweep=$!
timeout -k 5 170 $PY benchmarks/gpu_cifar.py $QUICK 2>&1 | tee "$OUT/cifar.txt"
timeout -k 5 80 $PY benchmarks/gpu_deep.py $QUICK 2>&1 | tee "$OUT/deep.txt"
if [ -f benchmarks/bench_crown_ibp.py ]; then
  timeout -k 5 90 $PY benchmarks/bench_crown_ibp.py $QUICK 2>&1 | tee "$OUT/crown_ibp.txt"
fi
wait "$sweep"
echo "phase sweep: $(( $(date +%s) - start )) s, $(ls results/phase/cells 2>/dev/null | wc -l) finished cells" \
  | tee -a "$OUT/gpu.txt"
tail -n 3 "$OUT/sweep_phase.txt"
tar czf "$OUT/phase.tgz" results/phase
