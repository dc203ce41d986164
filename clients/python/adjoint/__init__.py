"""A client for the Adjoint service: automatic differentiation over HTTP.

The standard library only; with numpy present, tensors come back as float64 arrays and numpy
arrays may be given as inputs. ``pip install ./clients/python`` (the distribution
``adjoint-client``) from a clone of the repository.

    >>> from adjoint import Adjoint, AdjointError
    >>> ad = Adjoint()    # $ADJOINT_URL, else http://127.0.0.1:3000
    >>> answer = ad.grad("sqrt(x^2 + exp(x^2)) + cos(x^2 + exp(x^2))", x=0.7)
    >>> round(answer.value, 6), round(answer.gradient["x"], 6)
    (0.932835, -1.874002)
    >>> J = ad.jacobian("tanh(W @ x)", W=[[1, 2], [3, 4]], x=[0.1, 0.2]).jacobian["x"]
    >>> len(J), len(J[0])     # a 2×2 float64 numpy array (nested lists without numpy)
    (2, 2)

Non-finite numbers travel as "NaN", "Infinity" and "-Infinity" and come back as floats. A
refused request raises :class:`AdjointError` carrying the problem: its ``status``, its stable
``code``, the ``detail`` that says what to change, and where (``line``/``column`` in an
expression, ``node`` in a graph)::

    >>> try:
    ...     ad.grad("sin(x", x=1)
    ... except AdjointError as e:
    ...     print(e.code, e.line, e.column)
    parse_error 1 4

Grading, probing and jobs:

    >>> ad.grade("x^2", [{"id": "s1", "answers": {"derivative": "2*x"}}]).results[0].score
    1
    >>> ad.probe("sum(sin(x))", [0.0, 1.0], method="central").cosine > 0.999999
    True
    >>> job = ad.submit("hessian", "x @ x", x=[1, 2, 3])
    >>> [[float(v) for v in row] for row in ad.wait(job).hessian["x"]["x"]]
    [[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0]]

Inputs may be numbers, nested lists, or numpy arrays; large arrays (``base64_threshold``
elements or more) are sent as base64 float64 (``{"dtype": "float64", "shape": [...], "data":
"..."}``), which the service decodes without parsing a number per element; answers in that
form are decoded too. Every call of a client goes over one kept-alive connection, shared safely
by threads.
"""

from ._wire import Answer, decode_value, encode_value
from ._version import __version__
from .client import DIFFERENTIATION, Adjoint, AdjointError, Job, JobCancelled

__all__ = ["Adjoint", "AdjointError", "Answer", "Job", "JobCancelled", "DIFFERENTIATION", "encode_value", "decode_value", "__version__"]
