"""Does importing torch._dynamo on a thread overlap with CUDA start-up? Times each alone, then both at once.

Run each mode in a fresh process:  python benchmarks/startup_probe.py cuda|dynamo|both
"""

import sys
import threading
import time

t0 = time.perf_counter()
import torch  # noqa: E402

t_torch = time.perf_counter() - t0


def cuda_init() -> float:
    t = time.perf_counter()
    torch.cuda.init()
    torch.zeros(1, device="cuda")
    torch.cuda.synchronize()
    return time.perf_counter() - t


def dynamo() -> float:
    t = time.perf_counter()
    import torch._dynamo  # noqa: F401
    return time.perf_counter() - t


mode = sys.argv[1]
t = time.perf_counter()
if mode == "cuda":
    print(f"import torch {t_torch:.2f} s | cuda init {cuda_init():.2f} s")
elif mode == "dynamo":
    print(f"import torch {t_torch:.2f} s | import torch._dynamo {dynamo():.2f} s")
else:
    th = threading.Thread(target=dynamo)
    th.start()
    c = cuda_init()
    th.join()
    print(f"import torch {t_torch:.2f} s | cuda init {c:.2f} s with the import on a thread | both done after "
          f"{time.perf_counter() - t:.2f} s")
