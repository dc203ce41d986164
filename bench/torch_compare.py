#!/usr/bin/env python3
"""The functions of bench/compare.ts, in PyTorch (float64, CPU, one thread), timed the
same way: value and value+gradient alternately, medians. Reads the inputs bench/compare.ts writes
(so both engines see the same numbers) and prints JSON: {name: {valueMs, gradMs}}.

Run by `npm run bench:compare` (needs Debian's python3-torch: apt-get install -y python3-torch)."""
import json
import os
import sys
import time

# One thread on each side: PyTorch's own (set_num_threads) and the BLAS's, which Debian's PyTorch
# reaches through the generic libblas.so.3 (OpenBLAS) and set_num_threads does not govern.
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"

import torch  # noqa: E402

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)


def lecture(at):
    x = torch.tensor(at["x"], requires_grad=True)

    def f():
        return torch.sqrt(x**2 + torch.exp(x**2)) + torch.cos(x**2 + torch.exp(x**2))

    return f, [x]


def network(at):
    t = {k: torch.tensor(v) for k, v in at.items()}
    params = [t["W1"], t["b1"], t["W2"], t["b2"]]
    for p in params:
        p.requires_grad_(True)

    def f():
        h = torch.tanh(t["X"] @ t["W1"] + t["b1"])
        p = h @ t["W2"] + t["b2"]
        return ((p - t["Y"]) ** 2).sum()

    return f, params


def points(at):
    x = torch.tensor(at["x"], requires_grad=True)

    def f():
        return (torch.sqrt(x**2 + torch.exp(x**2)) + torch.cos(x**2 + torch.exp(x**2))).sum()

    return f, [x]


def deep(at):
    t = {k: torch.tensor(v) for k, v in at.items()}
    params = [t[k] for k in ("W1", "b1", "W2", "b2", "W3", "b3")]
    for p in params:
        p.requires_grad_(True)

    def f():
        h1 = torch.tanh(t["X"] @ t["W1"] + t["b1"])
        h2 = torch.tanh(h1 @ t["W2"] + t["b2"])
        p = h2 @ t["W3"] + t["b3"]
        return ((p - t["Y"]) ** 2).sum()

    return f, params


def gp(at, ridge):
    X = torch.tensor(at["X"], requires_grad=True)
    l = torch.tensor(at["l"], requires_grad=True)
    y = torch.tensor(at["y"], requires_grad=True)
    n = X.shape[0]

    def f():
        D1 = (X[:, None, 0] - X[None, :, 0]) ** 2
        D2 = (X[:, None, 1] - X[None, :, 1]) ** 2
        K1 = torch.exp(-D1 / (2 * l[0] ** 2))
        K2 = torch.exp(-D2 / (2 * l[1] ** 2))
        return y @ torch.linalg.inv(K1 + K2 + ridge * torch.eye(n)) @ y

    return f, [X, l, y]


def build(case):
    kind = case["kind"]
    if kind == "gp":
        return gp(case["at"], case["ridge"])
    return {"lecture": lecture, "network": network, "points": points, "deep": deep}[kind](case["at"])


def blas():
    """The BLAS and LAPACK libraries this process has loaded (Debian's PyTorch links the generic
    libblas.so.3, which update-alternatives points at OpenBLAS once libopenblas0 is installed)."""
    torch.ones(2, 2) @ torch.ones(2, 2)
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "blas" in line or "lapack" in line}
    return ", ".join(sorted(p for p in paths if p.startswith("/"))) or "unknown"


def time_pair(value, grad, budget_s):
    value()
    grad()
    ta, tb = [], []
    start = time.perf_counter()
    while len(ta) < 5 or time.perf_counter() - start < budget_s:
        t = time.perf_counter()
        value()
        ta.append(time.perf_counter() - t)
        t = time.perf_counter()
        grad()
        tb.append(time.perf_counter() - t)
        if len(ta) >= 5000:
            break
    ta.sort()
    tb.sort()
    return ta[len(ta) // 2] * 1e3, tb[len(tb) // 2] * 1e3


def main():
    cases = json.load(open(sys.argv[1]))
    budget = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
    out = {}
    for case in cases:
        f, params = build(case)

        def value():
            with torch.no_grad():
                return f().item()

        def grad():
            out_ = f()
            torch.autograd.grad(out_, params)
            return out_.item()

        v, g = time_pair(value, grad, budget)
        out[case["name"]] = {"valueMs": v, "gradMs": g, "value": value()}
    print(json.dumps({"torch": torch.__version__, "blas": blas(), "results": out}))


if __name__ == "__main__":
    main()
