"""The client: a method per endpoint over one kept-alive connection, and the jobs API."""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import uuid
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from ._version import __version__
from ._http import Endpoint, KeptAlive, Stream
try:  # MessagePack is optional: encoding="msgpack" needs it
    import msgpack as _msgpack
except ImportError:  # pragma: no cover - exercised where msgpack is absent
    _msgpack = None  # type: ignore[assignment]

from ._wire import _NON_FINITE, Answer, _is_array, _nested, _number, as_answer, decode_answer, decode_probe, encode_point, encode_value

__all__ = ["Adjoint", "AdjointError", "Job", "JobCancelled", "DIFFERENTIATION"]

#: The differentiation endpoints: each is a method, and each may run as a job (``submit("grad", ...)``).
DIFFERENTIATION: Tuple[str, ...] = ("eval", "grad", "jvp", "vjp", "jacobian", "hessian", "hvp", "check")

# Request fields of the differentiation endpoints (every other keyword is an input: x=0.7).
_REQUEST_FIELDS = {"wrt", "tangents", "vector", "cotangent", "mode", "points", "eps", "rtol", "atol", "directions", "seed", "encoding", "method"}

_FINISHED = {"succeeded", "failed", "cancelled"}


class AdjointError(Exception):
    """A request the service refused (4xx/5xx ``application/problem+json``), or a job that failed
    with that problem."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem: Dict[str, Any] = dict(problem)
        self.code: str = str(problem.get("code", "http_error"))
        self.detail: str = str(problem.get("detail", problem.get("title", "")))
        #: Each fault of a request that did not match the schema: ``{"path", "message", ...}``.
        self.errors: List[Dict[str, Any]] = [e for e in problem.get("errors") or [] if isinstance(e, dict)]
        position = problem.get("position") or next((e["position"] for e in self.errors if e.get("position")), {})
        self.line: Optional[int] = position.get("line")
        self.column: Optional[int] = position.get("column")
        self.node: Optional[str] = problem.get("node") or next((e["node"] for e in self.errors if e.get("node")), None)
        #: The first field path the problem names (``at.x.1``, ``request.encoding``), if any.
        self.path: Optional[str] = problem.get("path") or next((e["path"] for e in self.errors if e.get("path")), None)
        super().__init__(f"{status} {self.code}: {self.detail}")


class Job(Answer):
    """A job as the service describes it: ``id``, ``kind``, ``state`` (``queued``, ``running``,
    ``succeeded``, ``failed``, ``cancelled``), ``progress`` ``{done, total, queries?}``, its
    times, and once finished ``result`` or ``problem`` (as the service wrote them)."""

    id: str
    kind: str
    state: str
    progress: Dict[str, int]

    @property
    def finished(self) -> bool:
        """Succeeded, failed or cancelled: it will not change again."""
        return self.get("state") in _FINISHED


class JobCancelled(Exception):
    """:meth:`Adjoint.wait` on a job that was cancelled (by :meth:`Adjoint.cancel`, anyone holding
    its id, or the server shutting down)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        super().__init__(f"job {job.get('id')} was cancelled")


ProgressCallback = Callable[[Job], None]
JobRef = Union[str, Mapping[str, Any]]


def _job_id(job: JobRef) -> str:
    return job if isinstance(job, str) else str(job["id"])


def _json_default(x: Any) -> Any:
    """numpy arrays and scalars anywhere in a body (a grading's answers, a probe's image)."""
    if _is_array(x):
        return _nested(x)
    try:
        return _number(x)
    except TypeError:
        raise TypeError(f"{type(x).__name__} is not JSON") from None


def _is_tokens(at: Any) -> bool:
    return isinstance(at, (list, tuple)) and any(isinstance(t, str) and t not in _NON_FINITE for t in at)


def _server_sent_events(lines: Iterable[str]) -> Iterator[Tuple[str, str]]:
    """(event, data) of each event of a text/event-stream."""
    event = "message"
    data: List[str] = []
    for line in lines:
        if line == "":
            if data:
                yield event, "\n".join(data)
            event, data = "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)


class Adjoint:
    """The service at ``url`` (default ``$ADJOINT_URL``, else ``http://127.0.0.1:3000``), over one
    kept-alive connection that every thread of the program may share.

    Every differentiation method takes the function (an expression, or ``graph=``) and the point
    as keyword arguments (``x=0.7``) or as ``at={...}``; other request fields (``wrt``,
    ``tangents``, ``cotangent``, ``mode``, ...) are passed through as keywords. Use it as a
    context manager, or call :meth:`close`, to close the connection."""

    def __init__(self, url: Optional[str] = None, api_key: Optional[str] = None, timeout: float = 60.0, base64_threshold: Optional[int] = 4096, encoding: str = "json") -> None:
        self.url = (url or os.environ.get("ADJOINT_URL") or "http://127.0.0.1:3000").rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.base64_threshold = base64_threshold
        if encoding not in ("json", "msgpack"):
            raise ValueError(f'encoding must be "json" or "msgpack", got {encoding!r}')
        if encoding == "msgpack" and _msgpack is None:
            raise ImportError('encoding="msgpack" needs the msgpack module (pip install msgpack, or Debian\'s python3-msgpack)')
        #: "json" (the default), or "msgpack": bodies and answers in MessagePack, tensors as raw float64 bytes.
        self.encoding = encoding
        self._binary = encoding == "msgpack"
        self._endpoint = Endpoint(self.url, timeout)
        self._connection = KeptAlive(self._endpoint)

    def close(self) -> None:
        """Close the connection (a later call opens a new one)."""
        self._connection.close()

    def __enter__(self) -> "Adjoint":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connections_opened(self) -> int:
        """How many connections this client has opened so far (1 while the server keeps it alive)."""
        return self._connection.opened

    # --- the differentiation endpoints -------------------------------------------------------

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

    def ops(self) -> List[Answer]:
        """The functions and operators the expression language knows, with their rules."""
        return as_answer(self.request("GET", "/ops"))["ops"]

    def call(self, path: str, expr: Optional[str] = None, *, at: Optional[Mapping[str, Any]] = None, graph: Optional[Mapping[str, Any]] = None, **kw: Any) -> Answer:
        """POST ``path`` with the function and the point; the answer decoded."""
        return decode_answer(self.post(path, self._differentiation_body(expr, at, graph, kw)))

    def _differentiation_body(self, expr: Optional[str], at: Optional[Mapping[str, Any]], graph: Optional[Mapping[str, Any]], kw: Dict[str, Any]) -> Dict[str, Any]:
        fields = {k: kw.pop(k) for k in list(kw) if k in _REQUEST_FIELDS}
        point = dict(at or {})
        point.update(kw)  # remaining keywords are inputs: x=0.7
        body: Dict[str, Any] = {}
        if expr is not None:
            body["expr"] = expr
        if graph is not None:
            body["graph"] = graph
        if point:
            body["at"] = encode_point(point, self.base64_threshold, self._binary)
        for key, v in fields.items():
            if key in ("tangents", "vector") and isinstance(v, Mapping):
                body[key] = encode_point(v, self.base64_threshold, self._binary)
            elif key == "cotangent":
                body[key] = encode_value(v, self.base64_threshold, self._binary)
            elif key == "points":
                body[key] = [encode_point(p, self.base64_threshold, self._binary) for p in v]
            else:
                body[key] = v
        return body

    # --- grading and probing -----------------------------------------------------------------

    def grade(self, reference: Union[str, Mapping[str, Any]], submissions: Sequence[Mapping[str, Any]], **fields: Any) -> Answer:
        """Grade ``submissions`` (``[{"id", "answers": {...}}]``) against ``reference`` (an
        expression, or ``{"expr", "feedback"}``); other fields (``at``, ``required``, ``format``,
        ``points``, ...) as ``POST /grade`` takes them. One result per submission, in order."""
        return as_answer(self.post("/grade", self._grade_body(reference, submissions, **fields)))

    @staticmethod
    def _grade_body(reference: Union[str, Mapping[str, Any]], submissions: Sequence[Mapping[str, Any]], **fields: Any) -> Dict[str, Any]:
        body: Dict[str, Any] = {"reference": {"expr": reference} if isinstance(reference, str) else dict(reference), "submissions": list(submissions)}
        body.update(fields)
        return body

    def probe(self, target: Union[str, Mapping[str, Any]], at: Any, method: Optional[str] = None, **fields: Any) -> Answer:
        """Estimate a black box's gradient at ``at`` from queries alone. ``target`` is an
        expression (used only as a black box: the answer also has ``exact`` and ``cosine``), a
        URL, or ``{"url", "body", "outputPath", ...}``; ``at`` is a tensor, or tokens for
        ``occlusion``/``shapley``; other fields (``output``, ``budget``, ``image``, ``seed``,
        ...) as ``POST /probe`` takes them. Tensors of the answer are decoded."""
        return decode_probe(self.post("/probe", self._probe_body(target, at, method, **fields)))

    def _probe_body(self, target: Union[str, Mapping[str, Any]], at: Any, method: Optional[str] = None, **fields: Any) -> Dict[str, Any]:
        if isinstance(target, str):
            target = {"url": target} if target.startswith(("http://", "https://")) else {"expr": target}
        body: Dict[str, Any] = {"target": dict(target), "at": list(at) if _is_tokens(at) else encode_value(at, self.base64_threshold, self._binary)}
        if method is not None:
            body["method"] = method
        body.update(fields)
        return body

    # --- jobs --------------------------------------------------------------------------------

    def submit(self, endpoint: str, *args: Any, request: Optional[Mapping[str, Any]] = None, idempotency_key: Optional[str] = None, **kw: Any) -> Job:
        """Run ``endpoint`` (``"probe"``, ``"grade"`` or a differentiation endpoint such as
        ``"hessian"``) as a job: the arguments are those of the method of that name (or the
        body as it is, ``request={...}``). Answers at once with the job (``queued`` or
        ``running``). A retried submission is never run twice: it carries an Idempotency-Key
        (a fresh one unless given)."""
        if endpoint == "probe":
            body = request if request is not None else self._probe_body(*args, **kw)
            payload: Dict[str, Any] = {"kind": "probe", "request": body}
        elif endpoint == "grade":
            body = request if request is not None else self._grade_body(*args, **kw)
            payload = {"kind": "grade", "request": body}
        elif endpoint.lstrip("/") in DIFFERENTIATION:
            if request is None:
                expr = args[0] if args else kw.pop("expr", None)
                body = self._differentiation_body(expr, kw.pop("at", None), kw.pop("graph", None), kw)
            else:
                body = request
            payload = {"kind": "compute", "endpoint": endpoint.lstrip("/"), "request": body}
        else:
            raise ValueError(f"no job runs {endpoint!r}: give 'probe', 'grade' or one of {', '.join(DIFFERENTIATION)}")
        headers = {"idempotency-key": idempotency_key or uuid.uuid4().hex}
        return Job(as_answer(self.request("POST", "/jobs", payload, headers)))

    def job(self, job: JobRef) -> Job:
        """The job now: state, progress, timings, and once finished its answer as the service wrote it."""
        return Job(as_answer(self.request("GET", f"/jobs/{urllib.parse.quote(_job_id(job), safe='')}")))

    def cancel(self, job: JobRef) -> Job:
        """Cancel a queued or running job (its queries stop); a finished job is left as it is."""
        return Job(as_answer(self.request("DELETE", f"/jobs/{urllib.parse.quote(_job_id(job), safe='')}")))

    def events(self, job: JobRef) -> Iterator[Job]:
        """The job each time the service reports it (``GET /jobs/{id}/events``: on every change and
        at least every second), until it is finished; the last one carries its answer. The
        stream has a connection of its own; a stream that ends early is opened again."""
        path = f"/jobs/{urllib.parse.quote(_job_id(job), safe='')}/events"
        while True:
            stream = Stream(self._endpoint, path, self._headers({"accept": "text/event-stream"}))
            if stream.status != 200:
                raise self._refusal(stream.status, stream.read())
            try:
                for event, data in _server_sent_events(stream.lines()):
                    # `event: error` (shutting down, the job store away, the job gone) ends a stream
                    # with a problem, not a view of the job: where the job is now is asked below.
                    if event == "error":
                        break
                    view = Job(as_answer(json.loads(data)))
                    yield view
                    if view.finished:
                        return
            finally:
                stream.close()
            # Ended before the job did (a proxy, a restart): where is it now?
            view = self.job(job)
            yield view
            if view.finished:
                return
            time.sleep(0.5)

    def wait(self, job: JobRef, on_progress: Optional[ProgressCallback] = None, timeout: Optional[float] = None) -> Any:
        """Wait for the job to finish and give its answer, decoded as the synchronous method's
        would be. ``on_progress(job)`` is called whenever its state or progress changes
        (``job.progress["done"]`` of ``["total"]``). A failed job raises the AdjointError its
        endpoint would have; a cancelled one JobCancelled; past ``timeout`` seconds, TimeoutError
        (the job runs on: cancel it if you no longer want it)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: Optional[Tuple[Any, ...]] = None
        for view in self.events(job):
            progress = view.get("progress") or {}
            now = (view.get("state"), progress.get("done"), progress.get("total"), progress.get("queries"))
            if on_progress is not None and now != seen:
                on_progress(view)
            seen = now
            if view.finished:
                return self._outcome(view)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {view.get('id')} is still {view.get('state')} after {timeout} s")
        raise RuntimeError("the job's events ended before it finished")  # pragma: no cover - events() does not end so

    def run(self, endpoint: str, *args: Any, on_progress: Optional[ProgressCallback] = None, timeout: Optional[float] = None, **kw: Any) -> Any:
        """:meth:`submit` then :meth:`wait`; an interrupt (Ctrl-C) or the timeout cancels the job."""
        job = self.submit(endpoint, *args, **kw)
        try:
            return self.wait(job, on_progress=on_progress, timeout=timeout)
        except (KeyboardInterrupt, TimeoutError):
            self.cancel(job)
            raise

    @staticmethod
    def _outcome(view: Job) -> Any:
        state = view.get("state")
        if state == "succeeded":
            result = view.get("result")
            if view.get("kind") == "probe":
                return decode_probe(result)
            if view.get("kind") == "compute":
                return decode_answer(result)
            return as_answer(result)
        if state == "failed":
            problem = view.get("problem") or {}
            raise AdjointError(int(problem.get("status", 500)), problem)
        raise JobCancelled(view)

    # --- the plumbing ------------------------------------------------------------------------

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST a JSON body; the parsed JSON answer, or AdjointError."""
        return self.request("POST", path, body)

    def request(self, method: str, path: str, body: Optional[Mapping[str, Any]] = None, headers: Optional[Mapping[str, str]] = None) -> Any:
        """Any request on the kept-alive connection: the parsed JSON answer, or AdjointError."""
        extra = dict(headers or {})
        data: Optional[bytes] = None
        if body is not None and self._binary:
            data = _msgpack.packb(body, default=_json_default, use_bin_type=True)
            extra["content-type"] = "application/msgpack"
        elif body is not None:
            data = json.dumps(body, allow_nan=False, default=_json_default).encode("utf-8")
            extra["content-type"] = "application/json"
        status, answer_headers, answer = self._connection.request(method, path, data, self._headers(extra))
        if not 200 <= status < 300:
            raise self._refusal(status, answer)
        if (answer_headers.get("content-type") or "").startswith("application/msgpack"):
            return _msgpack.unpackb(answer, raw=False)
        return json.loads(answer.decode("utf-8"))

    def _headers(self, extra: Mapping[str, str]) -> Dict[str, str]:
        # MessagePack answers when asked for (problems stay problem+json; other answers may be JSON).
        accept = "application/msgpack, application/json;q=0.5" if self._binary else "application/json"
        headers = {"accept": accept, "user-agent": f"adjoint-client-python/{__version__}"}
        if self.api_key is not None:
            headers["authorization"] = f"Bearer {self.api_key}"
        headers.update(extra)
        return headers

    @staticmethod
    def _refusal(status: int, body: bytes) -> AdjointError:
        text = body.decode("utf-8", "replace")
        try:
            problem = json.loads(text)
        except ValueError:
            problem = None
        if not isinstance(problem, dict):
            problem = {"code": "http_error", "detail": text or f"HTTP {status}"}
        return AdjointError(status, problem)
