"""Tests of adjoint.py against a running service ($ADJOINT_URL), run by test/clients/python.test.ts
with and without numpy. Expected numbers are closed forms, not the service's own answers."""

import doctest
import math
import os
import unittest

import adjoint
from adjoint import Adjoint, AdjointError, decode_value, encode_value

try:
    import numpy as np
except ImportError:
    np = None

URL = os.environ["ADJOINT_URL"]


def lecture(x):
    s = x * x + math.exp(x * x)
    ds = 2 * x + 2 * x * math.exp(x * x)
    return math.sqrt(s) + math.cos(s), ds * (0.5 / math.sqrt(s) - math.sin(s))


class AgainstTheService(unittest.TestCase):
    def setUp(self):
        self.ad = Adjoint(URL)

    def test_lecture_gradient(self):
        f, df = lecture(0.7)
        answer = self.ad.grad("sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))", x=0.7)
        self.assertAlmostEqual(answer.value, f, places=14)
        self.assertAlmostEqual(answer["gradient"]["x"], df, places=14)

    def test_problem_is_an_exception_with_its_position(self):
        with self.assertRaises(AdjointError) as caught:
            self.ad.grad("sin(x", x=1)
        e = caught.exception
        self.assertEqual(e.status, 400)
        self.assertEqual(e.code, "parse_error")
        self.assertEqual((e.line, e.column), (1, 4))  # the unclosed '('
        self.assertIn("unclosed", e.detail)

    def test_non_finite_numbers_both_ways(self):
        answer = self.ad.eval("x * 2", x=[1.0, math.inf, math.nan])
        value = list(answer.value)
        self.assertEqual(value[0], 2.0)
        self.assertEqual(value[1], math.inf)
        self.assertTrue(math.isnan(value[2]))
        self.assertTrue(answer.get("warnings"))

    def test_matrix_inputs_and_jacobian(self):
        W = [[1.0, 2.0], [3.0, 4.0]]
        x = [0.1, 0.2]
        answer = self.ad.jacobian("tanh(W @ x)", W=W, x=x, wrt=["x"])
        jac = answer.jacobian["x"]
        z = [W[0][0] * x[0] + W[0][1] * x[1], W[1][0] * x[0] + W[1][1] * x[1]]
        for i in range(2):
            for j in range(2):
                want = (1 - math.tanh(z[i]) ** 2) * W[i][j]
                self.assertAlmostEqual(float(jac[i][j]), want, places=14)
        if np is not None:
            self.assertIsInstance(jac, np.ndarray)
            self.assertEqual(jac.dtype, np.float64)

    def test_large_input_goes_as_base64(self):
        n = 5000
        xs = [0.001 * i for i in range(n)]
        body = encode_value(np.array(xs) if np is not None else xs)
        self.assertEqual(body["dtype"], "float64")
        self.assertEqual(decode_value(body) if np is None else list(decode_value(body)), xs)
        answer = self.ad.grad("sum(x^2)", x=np.array(xs) if np is not None else xs)
        self.assertAlmostEqual(answer.value, sum(v * v for v in xs), places=6)
        grad = list(answer.gradient["x"])
        self.assertEqual(grad[17], 2 * xs[17])

    def test_trace_rows(self):
        answer = self.ad.trace("x1 = x^2; x2 = exp(x1); x1 + x2", x=0.5)
        ids = [row["id"] for row in answer.steps]
        self.assertEqual(ids[:3], ["x", "x1", "x2"])
        # Columns decoded as the other answers' tensors are, base64 or not: x1 = x^2 at 0.5.
        for encoding in ("json", "base64"):
            rows = {row["id"]: row for row in self.ad.trace("x1 = x^2; sum(x1)", x=[0.5, -1.0], encoding=encoding).steps}
            self.assertEqual(list(rows["x1"]["value"]), [0.25, 1.0])
            self.assertEqual(list(rows["x1"]["tangent"]), [1.0, -2.0])  # 2x times the default tangent, ones
            self.assertEqual(list(rows["x1"]["adjoint"]), [1.0, 1.0])

    def test_jvp_and_hvp_decoded(self):
        # log at -1 is NaN; J·t of log(x) * x is (log(x) + 1)·t; the Hessian of sum(x^3) is diag(6x).
        for encoding in ("json", "base64"):
            jvp = self.ad.jvp("log(x) * x", x=[1.0, -1.0], tangents={"x": [2.0, 1.0]}, encoding=encoding)
            self.assertEqual(float(jvp.tangent[0]), 2.0)
            self.assertTrue(math.isnan(float(jvp.tangent[1])))
            hvp = self.ad.hvp("sum(x^3)", x=[1.0, 2.0], vector={"x": [1.0, 1.0]}, encoding=encoding)
            self.assertEqual(list(hvp.hvp["x"]), [6.0, 12.0])

    def test_docstring_examples(self):
        failures, _ = doctest.testmod(adjoint, optionflags=doctest.ELLIPSIS)
        self.assertEqual(failures, 0)


if __name__ == "__main__":
    unittest.main()
