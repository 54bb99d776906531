#!/usr/bin/env bash
# Session 10, call E (one H100): the H100's hardware JPEG decoders, through nvImageCodec (wheels carried in
# .hwwhl), against torchvision's nvJPEG on CUDA cores: decode rate alone and beside alexnet training
# (benchmarks/decode_contention.py --decoders, 13k tree).
set -u
source benchmarks/device_x2_lib.sh
with_bytecode
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .hwwhl/*.whl 2>&1 | tail -2
make_tree
timeout 240 python3 benchmarks/decode_contention.py /tmp/inet13k 4 --decoders tv,hw,cuda 2>&1 | grep -v "nvjpeg2k\|nvtiff\|nvJPEG2000\|nvTIFF" | tee -a $S
