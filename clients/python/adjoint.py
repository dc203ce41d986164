"""A client for the Adjoint service: automatic differentiation over HTTP.

One module, the standard library only; with numpy present, tensors come back as float64
arrays and numpy arrays may be given as inputs. Copy this file next to a notebook or a grading
script, or put its directory on ``sys.path``.

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

Inputs may be numbers, nested lists, or numpy arrays; large arrays (``base64_threshold``
elements or more) are sent as base64 float64 (``{"dtype": "float64", "shape": [...], "data":
"..."}``), which the service decodes without parsing a number per element; answers in that
form are decoded too.
"""

from __future__ import annotations

import base64
import json
import math
import os
import struct
import urllib.error
import urllib.request
from typing import Any, Dict, Mapping, Optional

try:  # numpy is optional
    import numpy as _np
except ImportError:  # pragma: no cover - exercised where numpy is absent
    _np = None

__all__ = ["Adjoint", "AdjointError", "Answer", "encode_value", "decode_value"]

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class AdjointError(Exception):
    """A request the service refused (4xx/5xx ``application/problem+json``)."""

    def __init__(self, status: int, problem: Mapping[str, Any]):
        self.status = status
        self.problem = dict(problem)
        self.code: str = str(problem.get("code", "http_error"))
        self.detail: str = str(problem.get("detail", problem.get("title", "")))
        position = problem.get("position") or {}
        self.line: Optional[int] = position.get("line")
        self.column: Optional[int] = position.get("column")
        self.node: Optional[str] = problem.get("node")
        self.path = problem.get("path")
        super().__init__(f"{status} {self.code}: {self.detail}")


class Answer(dict):
    """An answer: a dict of the service's fields, also readable as attributes (``answer.value``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(name) from e


def _is_array(x: Any) -> bool:
    return _np is not None and isinstance(x, _np.ndarray)


def _nested(x: Any) -> Any:
    """Nested lists of JSON numbers, non-finite ones as the service's strings."""
    if isinstance(x, (list, tuple)):
        return [_nested(v) for v in x]
    if _is_array(x):
        return _nested(x.tolist())
    if isinstance(x, bool):
        raise TypeError("a boolean is not a number")
    if isinstance(x, int):
        return x
    if isinstance(x, float) or (_np is not None and isinstance(x, _np.generic)):
        v = float(x)
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return v
    if isinstance(x, str) and x in _NON_FINITE:
        return x
    raise TypeError(f"cannot send {type(x).__name__} as a tensor: give numbers, nested lists or a numpy array")


def _shape_of(x: Any) -> list:
    shape = []
    while isinstance(x, (list, tuple)):
        shape.append(len(x))
        if len(x) == 0:
            break
        x = x[0]
    return shape


def _flatten(x: Any, out: list) -> None:
    if isinstance(x, (list, tuple)):
        for v in x:
            _flatten(v, out)
    else:
        out.append(float(x) if not isinstance(x, str) else _NON_FINITE[x])


def encode_value(x: Any, base64_threshold: Optional[int] = 4096) -> Any:
    """A tensor as the service reads it: nested lists, or base64 float64 when it is large."""
    if _is_array(x):
        size = int(x.size)
        if base64_threshold is not None and size >= base64_threshold:
            a = _np.ascontiguousarray(x, dtype="<f8")
            return {"dtype": "float64", "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}
        return _nested(x)
    if isinstance(x, (list, tuple)) and base64_threshold is not None:
        flat: list = []
        _flatten(x, flat)
        if len(flat) >= base64_threshold:
            data = struct.pack(f"<{len(flat)}d", *flat)
            return {"dtype": "float64", "shape": _shape_of(x), "data": base64.b64encode(data).decode("ascii")}
    return _nested(x)


def decode_value(v: Any) -> Any:
    """An answer's tensor as Python: a float, or a float64 numpy array (nested lists without numpy)."""
    if isinstance(v, dict) and v.get("dtype") == "float64" and "data" in v:
        raw = base64.b64decode(v["data"])
        shape = list(v.get("shape", []))
        if _np is not None:
            return _np.frombuffer(raw, dtype="<f8").astype(_np.float64).reshape(shape)
        flat = list(struct.unpack(f"<{len(raw) // 8}d", raw))
        return _reshape(flat, shape)
    if isinstance(v, str) and v in _NON_FINITE:
        return _NON_FINITE[v]
    if isinstance(v, bool) or v is None:
        return v
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, list):
        nested = [decode_value(e) for e in v]
        if _np is not None and _rectangular_numbers(nested):
            return _np.array(nested, dtype=_np.float64)
        return nested
    return v


def _rectangular_numbers(x: list) -> bool:
    if _np is None:
        return False
    try:
        a = _np.array(x, dtype=_np.float64)
    except (ValueError, TypeError):
        return False
    return a.dtype == _np.float64


def _reshape(flat: list, shape: list) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_reshape(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


# Answer fields that hold tensors, or maps of names to tensors.
_TENSOR_FIELDS = {"value", "tangent", "adjoint", "cotangent", "numeric_value"}
_PER_INPUT_FIELDS = {"gradient", "vjp", "jacobian", "hvp", "numeric", "exact", "tangents"}


def _decode_answer(obj: Any) -> Any:
    if isinstance(obj, list):
        return [_decode_answer(e) for e in obj]
    if not isinstance(obj, dict):
        return obj
    out = Answer()
    for key, v in obj.items():
        if key in _TENSOR_FIELDS:
            out[key] = decode_value(v)
        elif key in _PER_INPUT_FIELDS and isinstance(v, dict):
            out[key] = {name: decode_value(t) for name, t in v.items()}
        elif key == "hessian" and isinstance(v, dict):
            out[key] = {a: {b: decode_value(t) for b, t in row.items()} for a, row in v.items()}
        elif key in ("results", "steps") and isinstance(v, list):
            out[key] = [_decode_answer(r) for r in v]
        elif key == "seeds" and isinstance(v, dict):
            out[key] = _decode_answer(v)
        else:
            out[key] = v
    return out


class Adjoint:
    """The service at ``url``. Every method takes the function (an expression, or ``graph=``)
    and the point as keyword arguments (``x=0.7``) or as ``at={...}``; other request fields
    (``wrt``, ``tangents``, ``cotangent``, ``mode``, ...) are passed through as keywords."""

    def __init__(self, url: Optional[str] = None, api_key: Optional[str] = None, timeout: float = 60.0, base64_threshold: Optional[int] = 4096):
        self.url = (url or os.environ.get("ADJOINT_URL") or "http://127.0.0.1:3000").rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.base64_threshold = base64_threshold

    # --- the endpoints ---------------------------------------------------------------------

    def eval(self, expr: Optional[str] = None, **kw: Any) -> Answer:
        """The function's value."""
        return self.call("/eval", expr, **kw)

    def grad(self, expr: Optional[str] = None, **kw: Any) -> Answer:
        """Value and gradient of a scalar function (reverse mode)."""
        return self.call("/grad", expr, **kw)

    def jvp(self, expr: Optional[str] = None, **kw: Any) -> Answer:
        """Value and J·tangents (forward mode): give ``tangents={...}``."""
        return self.call("/jvp", expr, **kw)

    def vjp(self, expr: Optional[str] = None, **kw: Any) -> Answer:
        """Value and cotangentᵀ·J (reverse mode): give ``cotangent=...``."""
        return self.call("/vjp", expr, **kw)

    def jacobian(self, expr: Optional[str] = None, **kw: Any) -> Answer:
        """The Jacobian per input (``mode="forward"|"reverse"``, chosen by shape by default)."""
        return self.call("/jacobian", expr, **kw)

    def hessian(self, expr: Optional[str] = None, **kw: Any) -> Answer:
        """The Hessian of a scalar function, per pair of inputs."""
        return self.call("/hessian", expr, **kw)

    def hvp(self, expr: Optional[str] = None, **kw: Any) -> Answer:
        """Hessian-vector product: give ``vector={...}`` (a direction per ``wrt`` input)."""
        return self.call("/hvp", expr, **kw)

    def check(self, expr: Optional[str] = None, **kw: Any) -> Answer:
        """The gradient checked against central differences (``ok``, the errors)."""
        return self.call("/check", expr, **kw)

    def trace(self, expr: Optional[str] = None, **kw: Any) -> Answer:
        """The lecture's forward and reverse tables, one row per step."""
        return self.call("/trace", expr, **kw)

    # --- the plumbing ----------------------------------------------------------------------

    def call(self, path: str, expr: Optional[str] = None, *, at: Optional[Mapping[str, Any]] = None, graph: Optional[Mapping[str, Any]] = None, **kw: Any) -> Answer:
        """POST ``path`` with the function and the point; the answer decoded."""
        fields = {k: kw.pop(k) for k in list(kw) if k in _REQUEST_FIELDS}
        point = dict(at or {})
        point.update(kw)  # remaining keywords are inputs: x=0.7
        body: Dict[str, Any] = {}
        if expr is not None:
            body["expr"] = expr
        if graph is not None:
            body["graph"] = graph
        if point:
            body["at"] = {name: encode_value(v, self.base64_threshold) for name, v in point.items()}
        for key, v in fields.items():
            if key in ("tangents", "vector") and isinstance(v, Mapping):
                body[key] = {name: encode_value(t, self.base64_threshold) for name, t in v.items()}
            elif key in ("cotangent",):
                body[key] = encode_value(v, self.base64_threshold)
            elif key == "points":
                body[key] = [{name: encode_value(t, self.base64_threshold) for name, t in p.items()} for p in v]
            else:
                body[key] = v
        return _decode_answer(self.post(path, body))

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST a JSON body; the parsed JSON answer, or AdjointError."""
        data = json.dumps(body, allow_nan=False).encode("utf-8")
        headers = {"content-type": "application/json", "accept": "application/json"}
        if self.api_key is not None:
            headers["authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", "replace")
            try:
                problem = json.loads(text)
            except ValueError:
                problem = {"code": "http_error", "detail": text or e.reason}
            raise AdjointError(e.code, problem) from None


_REQUEST_FIELDS = {"wrt", "tangents", "vector", "cotangent", "mode", "points", "eps", "rtol", "atol", "directions", "seed", "encoding", "method"}

