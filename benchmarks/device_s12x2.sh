#!/usr/bin/env bash
# Session 12, 2-GPU call A: the compiled ResNet-50 pair with its gradients summed in bf16 (--ddp-grads, DDP's
# bf16_compress_hook) against fp32. Session 9's DDP ceiling lost 4.5% per GPU compiled (random batches), and
# the pair from JPEG trains 91-94% of that ceiling. 1 GPU, then 2 GPUs fp32, bf16, and bf16 with a progress
# line (a host-device sync) every 100 batches instead of 10. The compile cache is filled first.
set -u
source benchmarks/device_x2_lib.sh
x2_resnet50
nvidia-smi topo -m | tee -a $S
mkdir -p /tmp/val100 && for d in /tmp/inet13k/val/*/; do c=$(basename $d); mkdir -p /tmp/val100/$c; cp $(ls $d* | head -1) /tmp/val100/$c/; done
C="--backend compile --epoch-size 600 --val-dir /tmp/val100 --loader cpu"
half() { python3 benchmarks/steady_rate.py /tmp/$1.log --batch $2 --from 0.5 | tee -a $S; }
LIMIT=200 run fill 512 $T/fill $C --batch-size 512 --ngpu 2 --epoch-size 10 > /dev/null
CUDA_VISIBLE_DEVICES=0 LIMIT=90 run c1 256 $T/c1 $C --batch-size 256; half c1 256
LIMIT=90 run c2fp32 512 $T/c2fp32 $C --batch-size 512 --ngpu 2 --ddp-grads fp32; half c2fp32 512
LIMIT=90 run c2bf16 512 $T/c2bf16 $C --batch-size 512 --ngpu 2 --ddp-grads bf16; half c2bf16 512
PF=100 LIMIT=90 run c2bf16p 512 $T/c2bf16p $C --batch-size 512 --ngpu 2 --ddp-grads bf16; half c2bf16p 512
