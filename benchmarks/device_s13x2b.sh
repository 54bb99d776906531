#!/usr/bin/env bash
# Session 13, second 2-GPU call. Call 1 (H200 pair) put what `train` loses beyond the script's fed steps into
# train_one_epoch: ddp_ceiling.py's trainer phase ran 5-7% below its fed phase on 2 GPUs. This call records
# traces of 10 fed and 10 trainer steps on each rank (and on one GPU alone, where session 12 found train
# matching the fed steps), sums them with trace_gaps.py here, and times the trainer phase with DDP's copy savers.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
LIMIT=150 ddp_ceiling2 dcprof --data /tmp/inet13k --profile $OUT/p2
python3 benchmarks/trace_gaps.py $OUT/p2/fed_rank0.json.gz $OUT/p2/trainer_rank0.json.gz $OUT/p2/fed_rank1.json.gz \
  $OUT/p2/trainer_rank1.json.gz > $OUT/gaps2.txt 2>&1
LIMIT=90 ddp_ceiling2 dcview --data /tmp/inet13k --bucket-view --no-broadcast-buffers
s=$(date +%s)
CUDA_VISIBLE_DEVICES=0 timeout 150 python3 benchmarks/ddp_ceiling.py --arch resnet50 --compile --steps 100 \
  --data /tmp/inet13k --profile /tmp/p1 > /tmp/dc1.log 2>&1
echo "== dc1 rc=$? $(( $(date +%s) - s )) s: 1 GPU" | tee -a $S; grep -o '"rank".*' /tmp/dc1.log | cut -c1-420 | tee -a $S
python3 benchmarks/trace_gaps.py /tmp/p1/fed_rank0.json.gz /tmp/p1/trainer_rank0.json.gz > $OUT/gaps1.txt 2>&1
ls -la $OUT/p2 /tmp/p1 | tee -a $S
