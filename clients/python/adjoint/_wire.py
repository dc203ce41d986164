"""Tensors and answers on the wire: nested JSON numbers (non-finite ones as "NaN", "Infinity",
"-Infinity") or base64 float64 arrays (MessagePack: bins of the bytes), decoded into floats and numpy arrays (nested lists
without numpy)."""

from __future__ import annotations

import base64
import math
import struct
from typing import Any, Dict, List, Mapping, Optional

try:  # numpy is optional
    import numpy as _np
except ImportError:  # pragma: no cover - exercised where numpy is absent
    _np = None  # type: ignore[assignment]

_NON_FINITE: Dict[str, float] = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class Answer(Dict[str, Any]):
    """An answer: a dict of the service's fields, also readable as attributes (``answer.value``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(name) from e


def _is_array(x: Any) -> bool:
    return _np is not None and isinstance(x, _np.ndarray)


def _nested(x: Any) -> Any:
    """Nested lists of JSON numbers, non-finite ones as the service's strings (iterative: any depth)."""
    if not isinstance(x, (list, tuple)) and not _is_array(x):
        return _number(x)
    root: List[Any] = []
    stack = [(x.tolist() if _is_array(x) else x, root)]
    while stack:
        items, out = stack.pop()
        for item in items:
            if _is_array(item):
                item = item.tolist()
            if isinstance(item, (list, tuple)):
                inner: List[Any] = []
                out.append(inner)
                stack.append((item, inner))
            else:
                out.append(_number(item))
    return root


def _number(x: Any) -> Any:
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


def _shape_of(x: Any) -> List[int]:
    shape = []
    while isinstance(x, (list, tuple)):
        shape.append(len(x))
        if len(x) == 0:
            break
        x = x[0]
    return shape


def _flatten(x: Any) -> List[float]:
    out: List[float] = []
    stack = [iter([x])]
    while stack:
        for v in stack[-1]:
            if isinstance(v, (list, tuple)):
                stack.append(iter(v))
                break
            n = _number(v)
            out.append(_NON_FINITE[n] if isinstance(n, str) else float(n))
        else:
            stack.pop()
    return out


def _packed(data: bytes, binary: bool) -> Any:
    """An encoded array's data: base64 text (JSON), or the bytes themselves (a MessagePack bin)."""
    return data if binary else base64.b64encode(data).decode("ascii")


def encode_value(x: Any, base64_threshold: Optional[int] = 4096, binary: bool = False) -> Any:
    """A tensor as the service reads it: nested lists, or float64 bytes when it is large (base64
    in JSON; with ``binary``, for a MessagePack body, the raw little-endian bytes)."""
    if _is_array(x):
        size = int(x.size)
        if base64_threshold is not None and size >= base64_threshold:
            a = _np.ascontiguousarray(x, dtype="<f8")
            return {"dtype": "float64", "shape": list(a.shape), "data": _packed(a.tobytes(), binary)}
        return _nested(x)
    if isinstance(x, (list, tuple)) and base64_threshold is not None:
        flat = _flatten(x)
        if len(flat) >= base64_threshold:
            data = struct.pack(f"<{len(flat)}d", *flat)
            return {"dtype": "float64", "shape": _shape_of(x), "data": _packed(data, binary)}
    return _nested(x)


def decode_value(v: Any) -> Any:
    """An answer's tensor as Python: a float, or a float64 numpy array (nested lists without numpy)."""
    if isinstance(v, dict) and v.get("dtype") == "float64" and "data" in v:
        data = v["data"]
        raw = bytes(data) if isinstance(data, (bytes, bytearray, memoryview)) else base64.b64decode(data)
        shape = [int(n) for n in v.get("shape", [])]
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


def _rectangular_numbers(x: List[Any]) -> bool:
    if _np is None:
        return False
    try:
        a = _np.array(x, dtype=_np.float64)
    except (ValueError, TypeError):
        return False
    return a.dtype == _np.float64


def _reshape(flat: List[float], shape: List[int]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [_reshape(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def as_answer(obj: Any) -> Any:
    """JSON as it came, every object an :class:`Answer` (readable as attributes)."""
    if isinstance(obj, list):
        return [as_answer(e) for e in obj]
    if isinstance(obj, dict):
        return Answer((k, as_answer(v)) for k, v in obj.items())
    return obj


# Differentiation answers: fields that hold tensors, or maps of names to tensors.
_TENSOR_FIELDS = {"value", "tangent", "adjoint", "cotangent", "numeric_value"}
_PER_INPUT_FIELDS = {"gradient", "vjp", "jacobian", "hvp", "numeric", "exact", "tangents"}


def decode_answer(obj: Any) -> Any:
    """A differentiation answer (/eval ... /check, /trace) with its tensors decoded."""
    if isinstance(obj, list):
        return [decode_answer(e) for e in obj]
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
            out[key] = [decode_answer(r) for r in v]
        elif key == "seeds" and isinstance(v, dict):
            out[key] = decode_answer(v)
        else:
            out[key] = as_answer(v)
    return out


# /probe answers: the estimate, its standard error, the exact gradient (expression targets) and
# the scores are tensors (base64 with "encoding": "base64"); token scores stay lists of numbers.
_PROBE_TENSORS = {"value", "gradient", "stderr", "exact", "scores", "baselineValue"}


def decode_probe(obj: Any) -> Any:
    """A /probe answer with its tensors decoded (``png`` stays base64 text)."""
    if not isinstance(obj, dict):
        return obj
    return Answer((k, decode_value(v) if k in _PROBE_TENSORS else as_answer(v)) for k, v in obj.items())


def encode_point(point: Mapping[str, Any], base64_threshold: Optional[int], binary: bool = False) -> Dict[str, Any]:
    """A point (a tensor per input name) as the service reads it."""
    return {name: encode_value(v, base64_threshold, binary) for name, v in point.items()}
