#!/usr/bin/env bash
# Session 20's one-GPU call (planned in session 19), on nvidia-h100-x1, carry [.whl, .devdata, .base]. Before it,
# here: `rm -rf .base && mkdir .base && git archive d1f02bc src | tar x -C .base` (session 4's code, 91% in 19 s).
# 1. issue #8: the 91% command (resnet9, 22 epochs, seed 0) with this code (NEW) and session 4's (BASE), alternated,
#    twice each, on one machine. Session 19's H100 trained it in 16.0-20.0 s (59-83k img/s from epoch to epoch),
#    session 4's in 12.8 s (87-88k). Prediction: if the code, NEW's train part above BASE's by 20% or more in both
#    pairs; if the machine, within 5%.
# 2. issue #3: alexnet `bench train --loader auto` three times on the 130k tree (the GPU-marked tests run while it is
#    written), with each run's controller windows kept (its stderr), to see what the GPU side did in a slow run.
set -u
source benchmarks/device_x2_lib.sh  # install and helpers (not only for two GPUs)
with_bytecode
cifar_data
NEW=$PWD/src:/tmp/site BASE=$PWD/.base/src:/tmp/site
PYTHONPATH=$BASE cifar warmb --arch resnet9 --epochs 2 > /dev/null  # bytecode and cuDNN's caches for both codes
cifar warmn --arch resnet9 --epochs 2 > /dev/null
for r in 1 2; do
  cifar new$r --arch resnet9 --epochs 22 --seed 0
  PYTHONPATH=$BASE cifar base$r --arch resnet9 --epochs 22 --seed 0
done
for n in new1 base1 new2 base2; do echo "$n: $(grep -o '[0-9,]* img/s |' /tmp/$n.log | tr -d '|' | tr '\n' ' ')" | tee -a $S; done
tree130k 240
for r in 1 2 3; do LIM=100 b alexauto$r NEW --arch alexnet --steps 600 --warmup 30; done
tar czf $OUT/alexnet_err.tgz -C /tmp alexauto1.NEW.err alexauto2.NEW.err alexauto3.NEW.err alexauto1.NEW.json \
  alexauto2.NEW.json alexauto3.NEW.json 2>/dev/null
echo; cat $S
