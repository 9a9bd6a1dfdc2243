#!/bin/bash
# Second GPU sweep: extras skipped by the first deadline + confirmation seeds + 5-epoch FMNIST.
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2 XLA_PYTHON_CLIENT_MEM_FRACTION=0.2 DEADLINE=${DEADLINE:-250}
OUT=${OUT:-/tmp/out}; mkdir -p $OUT
python3 benchmarks/fidelity_research/run_gcn.py $OUT/gcn_extra.jsonl --seeds 0,1 --only gs:id_gain_sadam,gs:id_gain_sgdm1,gs:id_gain_merge50,gs:id_gain_wd,gs:off_gain,gs:official_nowd,cp:id_gain_sadam,cp:id_gain_sgdm1,cp:id_gain_merge50,cp:id_gain_wd,cp:off_gain,ns:id_gain,ns:official > $OUT/a.log 2>&1 &
python3 benchmarks/fidelity_research/run_gcn.py $OUT/gcn_confirm.jsonl --seeds 2,3 --only plain,gs:id_gain,gs:id_ngain,cp:scaled_gain,cp:id_gain,hr:id_gain,ogd:lr0.1_gain,ogd:lr1.0_gain,ogd:norm0.01_gain,ls:id_gain > $OUT/b.log 2>&1 &
EPOCHS=2 python3 benchmarks/fidelity_research/run_fmnist.py $OUT/fm_extra.jsonl --seeds 0,1,2 --only gs:id_merge50,gs:id_sadam0.01,gs:id_lr0.3,cp:id_merge50,ogd:lr0.01,ogd:lr0.005,ns:id,ns:scaled > $OUT/c.log 2>&1 &
EPOCHS=5 python3 benchmarks/fidelity_research/run_fmnist.py $OUT/fm_5ep.jsonl --seeds 0,1 --only plain,gs:id,gs:scaled,cp:scaled,cp:id,hr:id,ls:id,ogd:lr0.02,ogd:lr0.01 > $OUT/d.log 2>&1 &
wait
wc -l $OUT/*.jsonl; grep -h deadline $OUT/*.log | tr '\n' ' '
