#!/bin/bash
# One GPU sweep: Cora GCN and Fashion-MNIST grids in parallel, results in $OUT.
# Run on the device machine from the repo root: bash benchmarks/fidelity_research/device_sweep.sh
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2 XLA_PYTHON_CLIENT_MEM_FRACTION=0.4
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
nvidia-smi -L; python3 -c "import jax; print(jax.devices())"
DEADLINE=${GCN_DEADLINE:-420} python3 benchmarks/fidelity_research/run_gcn.py $OUT/gcn.jsonl --seeds ${GCN_SEEDS:-0,1} ${GCN_ARGS} > $OUT/gcn.log 2>&1 &
P1=$!
DEADLINE=${FM_DEADLINE:-420} EPOCHS=${FM_EPOCHS:-2} python3 benchmarks/fidelity_research/run_fmnist.py $OUT/fmnist.jsonl --seeds ${FM_SEEDS:-0,1,2} ${FM_ARGS} > $OUT/fmnist.log 2>&1 &
P2=$!
wait $P1 $P2
tail -3 $OUT/gcn.log $OUT/fmnist.log
wc -l $OUT/*.jsonl
