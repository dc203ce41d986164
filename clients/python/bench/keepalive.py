"""/grad per call in a loop: on the client's one kept-alive connection, and with a new connection
per call (the client closed after each call, as the 0.2.0 module's urllib request per call was).
Calls alternate between the two so that both meet the same load; the medians of per-call times.

    ADJOINT_URL=http://127.0.0.1:3000 python3 clients/python/bench/keepalive.py [calls]
"""

import os
import statistics
import sys
import time

try:
    from adjoint import Adjoint
except ImportError:  # run from a clone without the package installed: the sources beside
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from adjoint import Adjoint

F = "sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))"


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    kept, fresh = Adjoint(), Adjoint()
    for _ in range(100):  # warm both up (and the server)
        kept.grad(F, x=0.7)
        fresh.grad(F, x=0.7)
        fresh.close()
    times = {"kept alive": [], "a connection per call": []}
    for i in range(calls):
        x = 0.001 * i
        t0 = time.perf_counter()
        kept.grad(F, x=x)
        t1 = time.perf_counter()
        fresh.grad(F, x=x)
        fresh.close()
        t2 = time.perf_counter()
        times["kept alive"].append((t1 - t0) * 1e3)
        times["a connection per call"].append((t2 - t1) * 1e3)
    for name, per_call in times.items():
        ordered = sorted(per_call)
        p10, p90 = ordered[len(ordered) // 10], ordered[(9 * len(ordered)) // 10]
        print(f"{name:22s} median {statistics.median(per_call):.3f} ms a call (p10 {p10:.3f}, p90 {p90:.3f}), {calls} calls")
    print(f"connections opened: kept alive {kept.connections_opened}, per call {fresh.connections_opened}")


if __name__ == "__main__":
    main()
