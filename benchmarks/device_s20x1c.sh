#!/usr/bin/env bash
# Session 20's third one-GPU call, nvidia-h100-x1, carry [.whl, .devdata]: the 91% command as shipped (eager,
# cuDNN), compiled (`--backend compile`), and compiled with CUDA graphs (`--compile-mode reduce-overhead`),
# alternated after a 2-epoch run of each (caches); then the GPU-marked training tests, the new mode's included.
# Why: on these H100s ResNet-9's CIFAR steps are launch-bound (one Python thread, about 6-7 ms a step at batch 512;
# session 20 call 3: the host, not the code). CUDA graphs replay a step's kernels with one launch.
# Prediction: compiled alone, the train part -10-20% (fewer, fused kernels) and the first step 2-4 s longer (the
# compile cache's load); with the graphs, if they apply to the forward and backward, the train part 9-12 s instead of
# 15-18 s and the wall-clock 19-23 s; accuracy within the seeds' spread (91.2-91.5%). If torch skips the graphs (a
# mutated input such as batch norm's running statistics), no better than compiled, and the perf_hints log says why.
set -u
source benchmarks/device_x2_lib.sh  # install and helpers
with_bytecode
cifar_data
CG="--backend compile --compile-mode reduce-overhead"
cifar warm_eager --arch resnet9 --epochs 2 > /dev/null  # bytecode and the compile caches
cifar warm_compiled --arch resnet9 --epochs 2 --backend compile > /dev/null
TORCH_LOGS=perf_hints cifar warm_graphs --arch resnet9 --epochs 2 $CG > /dev/null
grep -i "cudagraph" /tmp/warm_graphs.log | cut -c1-300 | sort | uniq -c | head -20 | tee -a $S
cifar eager_s0 --arch resnet9 --epochs 22 --seed 0
cifar graphs_s0 --arch resnet9 --epochs 22 --seed 0 $CG
cifar compiled_s0 --arch resnet9 --epochs 22 --seed 0 --backend compile
cifar eager_s1 --arch resnet9 --epochs 22 --seed 1
cifar graphs_s1 --arch resnet9 --epochs 22 --seed 1 $CG
for n in eager_s0 graphs_s0 compiled_s0 eager_s1 graphs_s1; do
  echo "$n: $(grep '^epoch' /tmp/$n.log | grep -o '[0-9,]* img/s' | tr '\n' ' ')" | tee -a $S
done
t1=$(date +%s); timeout 240 python3 -m pytest -q -m gpu tests/engine/test_train_gpu.py -p no:cacheprovider > $OUT/gpu_tests.txt 2>&1
echo "gpu tests (train) rc=$? in $(( $(date +%s) - t1 )) s: $(tail -1 $OUT/gpu_tests.txt)" | tee -a $S
echo; cat $S
