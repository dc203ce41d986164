"""Tests of the adjoint package against a running service ($ADJOINT_URL), run by
test/clients/python.test.ts with and without numpy, from outside the repository against the
installed package. Expected numbers are closed forms, not the service's own answers."""

import doctest
import json
import math
import os
import socket
import struct
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import adjoint
from adjoint import Adjoint, AdjointError, Job, JobCancelled, decode_value, encode_value
from adjoint import _http

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

    def tearDown(self):
        self.ad.close()

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
        failures, tried = doctest.testmod(adjoint, optionflags=doctest.ELLIPSIS)
        self.assertEqual(failures, 0)
        self.assertGreater(tried, 8)


try:
    import msgpack
except ImportError:
    msgpack = None


@unittest.skipIf(msgpack is None, "the msgpack module is not installed")
class MessagePack(unittest.TestCase):
    """encoding="msgpack": the same answers, bit for bit, as JSON with base64 arrays."""

    def setUp(self):
        self.json = Adjoint(URL)
        self.packed = Adjoint(URL, encoding="msgpack")

    def tearDown(self):
        self.json.close()
        self.packed.close()

    def test_same_bits_as_json(self):
        x = [math.sin(0.3 * i) for i in range(5000)]
        y = [math.cos(0.7 * i) for i in range(5000)]
        expr = "sum(sin(x) * y) + sum(x * tanh(y))"
        a = self.json.grad(expr, x=x, y=y, encoding="base64")
        b = self.packed.grad(expr, x=x, y=y)
        self.assertEqual(struct.pack("<d", a.value), struct.pack("<d", b.value))
        for name in ("x", "y"):
            ga, gb = a.gradient[name], b.gradient[name]
            if np is not None:
                self.assertEqual(ga.tobytes(), gb.tobytes())
            else:
                self.assertEqual(struct.pack(f"<{len(ga)}d", *ga), struct.pack(f"<{len(gb)}d", *gb))

    def test_small_and_non_finite_values(self):
        answer = self.packed.eval("x * 2", x=[1.5, float("nan"), float("-inf")])
        value = list(answer.value)
        self.assertEqual(value[0], 3.0)
        self.assertTrue(math.isnan(value[1]))
        self.assertEqual(value[2], -math.inf)

    def test_problem_is_still_an_exception(self):
        with self.assertRaises(AdjointError) as caught:
            self.packed.grad("sin(x", x=1)
        self.assertEqual(caught.exception.code, "parse_error")

    def test_encoding_is_checked(self):
        with self.assertRaises(ValueError):
            Adjoint(URL, encoding="cbor")


class OneConnection(unittest.TestCase):
    """Every call of a client over one kept-alive connection, shared by threads."""

    def test_many_calls_one_connection(self):
        with Adjoint(URL) as ad:
            for i in range(50):
                self.assertEqual(ad.grad("x^2", x=i).gradient["x"], 2.0 * i)
            self.assertEqual(ad.connections_opened, 1)
            # A refusal does not cost the connection either.
            with self.assertRaises(AdjointError):
                ad.grad("sin(x", x=1)
            ad.eval("x", x=1)
            self.assertEqual(ad.connections_opened, 1)
        # Closed, and opened again by the next call.
        self.assertEqual(ad.eval("x + 1", x=1).value, 2.0)
        self.assertEqual(ad.connections_opened, 2)
        ad.close()

    def test_threads_share_it_safely(self):
        # 8 threads, 25 calls each, every answer its own: d(c·x²)/dx = 2cx.
        ad = Adjoint(URL)
        wrong = []

        def work(c):
            for i in range(25):
                g = ad.grad(f"{c} * x^2", x=i).gradient["x"]
                if g != 2.0 * c * i:
                    wrong.append((c, i, g))

        threads = [threading.Thread(target=work, args=(c,)) for c in range(1, 9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(wrong, [])
        self.assertEqual(ad.connections_opened, 1)
        ad.close()


class _ClosingServer(ThreadingHTTPServer):
    """A stand-in service that closes each connection after answering (without saying so), as a
    server's keep-alive timeout does to an idle connection."""

    daemon_threads = True

    def __init__(self):
        served = self.served = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                served.append(body)
                answer = json.dumps({"value": len(served)}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)


class Reconnecting(unittest.TestCase):
    def setUp(self):
        self.server = _ClosingServer()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()

    def test_a_connection_closed_while_idle_is_replaced(self):
        ad = Adjoint(self.url)
        self.assertEqual([ad.eval("x", x=1).value for _ in range(3)], [1.0, 2.0, 3.0])
        self.assertEqual(ad.connections_opened, 3)
        self.assertEqual(len(self.server.served), 3)  # each request sent once
        ad.close()

    def test_a_request_on_a_closed_connection_is_sent_again_once(self):
        # As if the server closed it between the check and the request: the send or the read
        # fails, and the request goes once more on a new connection.
        checked = _http._closed_while_idle
        _http._closed_while_idle = lambda conn: False
        try:
            ad = Adjoint(self.url)
            self.assertEqual([ad.eval("x", x=1).value for _ in range(3)], [1.0, 2.0, 3.0])
            self.assertEqual(len(self.server.served), 3)
            self.assertEqual(ad.connections_opened, 3)
            ad.close()
        finally:
            _http._closed_while_idle = checked

    def test_a_fresh_connection_that_fails_is_an_error(self):
        # Nothing listens on a port just closed: refused at once, not retried.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with self.assertRaises(ConnectionRefusedError):
            Adjoint(f"http://127.0.0.1:{port}", timeout=5).eval("x", x=1)


class GradingAndProbing(unittest.TestCase):
    def setUp(self):
        self.ad = Adjoint(URL)

    def tearDown(self):
        self.ad.close()

    def test_grade(self):
        # d(x·sin x)/dx = sin x + x cos x; the product rule half-done is wrong.
        answer = self.ad.grade(
            "x * sin(x)",
            [{"id": "right", "answers": {"derivative": {"x": "sin(x) + x*cos(x)"}}}, {"id": "half", "answers": {"derivative": {"x": "x*cos(x)"}}}],
        )
        self.assertEqual([r.id for r in answer.results], ["right", "half"])
        self.assertEqual([r.score for r in answer.results], [1, 0])
        self.assertEqual(answer.results[0].tests[0].status, "passed")

    def test_grade_numbers_from_numpy(self):
        if np is None:
            self.skipTest("numpy")
        at = np.array([0.5, -1.0])
        answer = self.ad.grade("sum(x^2)", [{"id": "s", "answers": {"gradient": {"x": 2 * at}}}], at={"x": at})
        self.assertEqual(answer.results[0].score, answer.results[0].max_score)

    def test_probe_an_expression(self):
        # Central differences of sum(sin(x)) against its exact gradient cos(x).
        x = [0.1, 0.7, -1.2]
        answer = self.ad.probe("sum(sin(x))", x, method="central")
        for g, xi in zip(answer.gradient, x):
            self.assertAlmostEqual(float(g), math.cos(xi), places=6)
        for e, xi in zip(answer.exact, x):
            self.assertAlmostEqual(float(e), math.cos(xi), places=15)
        self.assertEqual(answer.queries, 2 * len(x) + 1)

    def test_probe_base64_answer_decoded(self):
        answer = self.ad.probe("sum(x^2)", [1.0, 2.0], method="forward", encoding="base64")
        self.assertEqual([float(e) for e in answer.exact], [2.0, 4.0])

    def test_probe_refused(self):
        with self.assertRaises(AdjointError) as caught:
            self.ad.probe("sum(x", [1.0], method="central")
        self.assertEqual(caught.exception.status, 400)


# A probe that takes a few seconds: SPSA over 4000 coordinates of a smooth function.
SLOW = "sum(tanh(x) * sin(x) + exp(-x^2))"
SLOW_AT = [0.001 * i for i in range(4000)]


class Jobs(unittest.TestCase):
    def setUp(self):
        self.ad = Adjoint(URL)

    def tearDown(self):
        self.ad.close()

    def test_submit_and_wait_a_differentiation(self):
        job = self.ad.submit("hessian", "x @ M @ x", x=[1.0, 2.0], M=[[1.0, 2.0], [3.0, 4.0]], wrt=["x"])
        self.assertIsInstance(job, Job)
        self.assertEqual((job.kind, job.endpoint), ("compute", "hessian"))
        answer = self.ad.wait(job)
        self.assertEqual([[float(v) for v in row] for row in answer.hessian["x"]["x"]], [[2.0, 5.0], [5.0, 8.0]])
        self.assertEqual(self.ad.job(job.id).state, "succeeded")

    def test_a_failed_job_raises_its_problem(self):
        job = self.ad.submit("grad", "x + y", x=1)
        with self.assertRaises(AdjointError) as caught:
            self.ad.wait(job)
        self.assertEqual((caught.exception.status, caught.exception.code), (422, "unknown_input"))

    def test_a_request_the_endpoint_refuses_is_refused_at_submission(self):
        # Checked by the endpoint's schema at once; an expression is read when the job runs.
        with self.assertRaises(AdjointError) as caught:
            self.ad.submit("grad", "sin(x)", x=1, encoding="hex")
        self.assertEqual((caught.exception.status, caught.exception.code, caught.exception.path), (400, "validation_error", "request.encoding"))
        with self.assertRaises(AdjointError) as caught:
            self.ad.wait(self.ad.submit("grad", "sin(x", x=1))
        self.assertEqual((caught.exception.code, caught.exception.line, caught.exception.column), ("parse_error", 1, 4))
        with self.assertRaises(ValueError):
            self.ad.submit("gradient", "x", x=1)

    def test_wait_reports_progress(self):
        seen = []
        job = self.ad.submit("probe", SLOW, SLOW_AT, method="spsa", budget=1500)
        answer = self.ad.wait(job, on_progress=lambda j: seen.append((j.state, j.progress["done"], j.progress["total"])))
        self.assertEqual(len(answer.gradient), len(SLOW_AT))
        self.assertEqual(seen[-1], ("succeeded", answer.queries, answer.queries))
        done = [d for _, d, _ in seen]
        self.assertEqual(done, sorted(done))  # never backwards
        self.assertGreaterEqual(len(set(done)), 2)  # fed as it went, not only at the end
        self.assertEqual(len(seen), len(set(seen)))  # each call a change

    def test_cancel(self):
        job = self.ad.submit("probe", SLOW, SLOW_AT, method="spsa", budget=10000)
        for view in self.ad.events(job):
            if view.progress["done"] > 0:
                break
        cancelled = self.ad.cancel(job)
        self.assertIn(cancelled.state, ("cancelled",))
        with self.assertRaises(JobCancelled) as caught:
            self.ad.wait(job)
        self.assertLess(caught.exception.job.progress["done"], 10000)

    def test_the_same_submission_twice_is_one_job(self):
        first = self.ad.submit("grad", "x^3", x=2, idempotency_key="python-client-test-once")
        again = self.ad.submit("grad", "x^3", x=2, idempotency_key="python-client-test-once")
        self.assertEqual(first.id, again.id)
        self.assertEqual(self.ad.wait(again).gradient["x"], 12.0)

    def test_run_grades_as_a_job(self):
        calls = []
        answer = self.ad.run("grade", "x^2", [{"id": "s", "answers": {"derivative": "2*x"}}], on_progress=calls.append)
        self.assertEqual(answer.results[0].score, 1)
        self.assertEqual(calls[-1].state, "succeeded")


if __name__ == "__main__":
    unittest.main()
