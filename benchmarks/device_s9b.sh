#!/usr/bin/env bash
# Session 9, call 2 (one H100): cuDNN autotuning (now off by default, --cudnn-benchmark) on the CIFAR nets,
# ResNet-50 at a progressive-resizing size, at 128 per GPU, and compiled; CIFAR-10 end to end with and
# without it; the first training batch with the loader probe fresh and cached at the new default.
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
( make_tree > /dev/null 2>&1; cifar_data ) &
prep=$!
C="python3 benchmarks/cudnn_tuning.py --modes on off --repeat"
timeout 100 $C 2 --arch resnet9 resnet9_w96 --size 32 --batch 512 | tee -a $S
timeout 60 $C 1 --arch resnet50 --size 160 | tee -a $S
timeout 60 $C 1 --arch resnet50 --batch 128 | tee -a $S
wait $prep
for s in 0 1; do
  cifar tuned$s --arch resnet9 --epochs 18 --seed $s --cudnn-benchmark
  cifar heur$s --arch resnet9 --epochs 18 --seed $s
done
T="python3 -m imagenet_trainer train --data /tmp/inet13k --arch resnet50 --epochs 1 --epoch-size 40 --cache off --val-every 0 --output /tmp/runs"
rm -rf /tmp/itcache/loader
LIMIT=90 run fresh 256 $T/fresh --batch-size 256
LIMIT=90 run cached 256 $T/cached --batch-size 256
timeout 200 $C 1 --arch resnet50 --compile --steps 60 | tee -a $S
