"""The lecture's function through the service: its gradient, the forward-mode table, a Jacobian,
and a finite-difference check. Run it against a server:

    npm start &                                   # or any Adjoint URL in $ADJOINT_URL
    PYTHONPATH=clients/python python3 examples/python/lecture.py
"""

from adjoint import Adjoint, AdjointError

ad = Adjoint()  # $ADJOINT_URL, else http://127.0.0.1:3000
f = "sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))"

answer = ad.grad(f, x=0.7)
print(f"f(0.7) = {answer.value:.6f}, f'(0.7) = {answer.gradient['x']:.6f}")

# The lecture's forward-mode table, one row per step as written.
table = ad.trace("x1 = x^2; x2 = exp(x1); x3 = x1 + x2; x4 = sqrt(x3); x5 = cos(x3); x4 + x5", x=0.7, mode="forward")
print(f"{'step':>5} {'op':>6} {'value':>10} {'tangent':>10}")
for row in table.steps:
    print(f"{row['id']:>5} {row['op']:>6} {float(row['value']):>10.4f} {float(row['tangent']):>10.4f}")

# A Jacobian (forward or reverse mode, chosen by shape) and the gradient checked numerically.
J = ad.jacobian("tanh(W @ x)", W=[[1, 2], [3, 4]], x=[0.1, 0.2], wrt=["x"]).jacobian["x"]
print("d tanh(Wx)/dx =", [[round(float(v), 4) for v in row] for row in J])
check = ad.check(f, x=0.7)
print("finite differences agree:", check.ok)

try:
    ad.grad("sin(x", x=1)
except AdjointError as e:
    print(f"refused: {e.code} at line {e.line}, column {e.column}: {e.detail}")
