"""ONNX models of ML cards: safe loading (bounded size, standard operators only, external data only
from the archive) and prediction with onnxruntime, shared by the registry's validation stages and
the hybrid twin so both run a model the same way.

Safety: an ONNX file is data, not code, but a graph can name custom operator domains (which a
runtime may resolve to native libraries) and external data files (which a loader would read
from disk relative to the model). Here only the standard domains (``ai.onnx``, ``ai.onnx.ml``)
with operators ``onnx.defs`` knows are accepted, model-local functions are refused, and external
tensors are read only from the archive's own entries (never from the file system) and inlined,
so the stored model is one self-contained file. onnx and onnxruntime are the ``ml`` extra.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from interop.errors import MissingExtraError, ModelError
from interop.schema.ml_card import MLCard

__all__ = [
    "OnnxFacts",
    "OnnxLimits",
    "OnnxPredictor",
    "check_io",
    "inspect_onnx",
    "predictor",
    "reference_failures",
    "require",
]

STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})


def require(module: str, purpose: str) -> ModuleType:
    """Import a package of the ``ml`` extra, or raise ``MissingExtraError`` naming the extra."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise MissingExtraError(exc.name or module, extra="ml", purpose=purpose) from exc


@dataclass(frozen=True)
class OnnxLimits:
    max_bytes: int = 50 * 1024 * 1024
    max_nodes: int = 100_000
    min_opset: int = 7  # ai.onnx; older graphs predate what onnxruntime runs well
    max_ml_opset: int = 5


@dataclass(frozen=True)
class OnnxFacts:
    """What the graph declares: inputs/outputs (name, element type, shape), op-sets, node count."""

    inputs: tuple[tuple[str, str, tuple[int | str | None, ...]], ...]
    outputs: tuple[tuple[str, str, tuple[int | str | None, ...]], ...]
    opsets: dict[str, int]
    n_nodes: int
    producer: str
    inlined_tensors: int = 0
    notes: tuple[str, ...] = field(default=())


def _graphs(graph: Any) -> Iterator[Any]:
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.g is not None and attr.HasField("g"):
                yield from _graphs(attr.g)
            for g in attr.graphs:
                yield from _graphs(g)


def _tensors(graph: Any) -> Iterator[Any]:
    for g in _graphs(graph):
        yield from g.initializer
        for node in g.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield attr.t
                yield from attr.tensors


def _safe_location(loc: str) -> bool:
    parts = loc.replace("\\", "/").split("/")
    return bool(loc) and not loc.startswith(("/", "\\")) and ":" not in loc and ".." not in parts


def _value_info(onnx: ModuleType, vi: Any) -> tuple[str, str, tuple[int | str | None, ...]]:
    t = vi.type
    if t.HasField("tensor_type"):
        elem = onnx.TensorProto.DataType.Name(t.tensor_type.elem_type).lower()
        dims: list[int | str | None] = []
        for d in t.tensor_type.shape.dim:
            dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
        return vi.name, elem, tuple(dims)
    return vi.name, t.WhichOneof("value") or "unknown", ()


def inspect_onnx(
    raw: bytes,
    *,
    external: Mapping[str, bytes] | None = None,
    limits: OnnxLimits = OnnxLimits(),
    source: str | None = None,
) -> tuple[bytes, OnnxFacts]:
    """Check ``raw`` and return it self-contained (external tensors inlined from ``external``, the
    archive's entries by path) with its facts; a ``ModelError`` names what is refused."""
    onnx = require("onnx", "reading an ONNX model")
    if len(raw) > limits.max_bytes:
        raise ModelError(f"ONNX model of {len(raw)} bytes exceeds {limits.max_bytes}", source=source)
    model = onnx.ModelProto()
    try:
        model.ParseFromString(raw)
    except Exception as exc:  # protobuf raises DecodeError and RuntimeError alike
        raise ModelError(f"not an ONNX model: {exc}", source=source) from exc
    if not model.HasField("graph") or not model.opset_import:
        raise ModelError("not an ONNX model: no graph or no op-set import", source=source)
    opsets = {(o.domain or "ai.onnx"): int(o.version) for o in model.opset_import}
    for domain in opsets:
        if domain not in STANDARD_DOMAINS:
            raise ModelError(
                f"op-set domain {domain!r} is not a standard ONNX domain", source=source, field="opset"
            )
    top = onnx.defs.onnx_opset_version()
    core = opsets.get("ai.onnx")
    if core is not None and not limits.min_opset <= core <= top:
        raise ModelError(
            f"ai.onnx op-set {core} outside {limits.min_opset}..{top}", source=source, field="opset"
        )
    if opsets.get("ai.onnx.ml", 1) > limits.max_ml_opset:
        raise ModelError(
            f"ai.onnx.ml op-set {opsets['ai.onnx.ml']} above {limits.max_ml_opset}", source=source
        )
    if len(model.functions):
        raise ModelError("model-local functions are not accepted", source=source, field="functions")
    n_nodes = 0
    for g in _graphs(model.graph):
        for node in g.node:
            n_nodes += 1
            domain = node.domain or ""
            if domain not in STANDARD_DOMAINS or not onnx.defs.has(node.op_type, domain):
                raise ModelError(
                    f"node {node.name or node.op_type!r}: operator {domain or 'ai.onnx'}.{node.op_type} "
                    "is not a standard ONNX operator",
                    source=source,
                    field="op_type",
                )
    if n_nodes > limits.max_nodes:
        raise ModelError(f"{n_nodes} nodes exceed {limits.max_nodes}", source=source)
    inlined = 0
    for tensor in _tensors(model.graph):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        loc = info.get("location", "")
        if not _safe_location(loc) or external is None or loc.lstrip("./") not in external:
            raise ModelError(
                f"tensor {tensor.name!r}: external data {loc!r} is not a file inside the archive",
                source=source,
                field="external_data",
            )
        blob = external[loc.lstrip("./")]
        offset = int(info.get("offset", 0))
        length = int(info.get("length", len(blob) - offset))
        if offset < 0 or length < 0 or offset + length > len(blob):
            raise ModelError(f"tensor {tensor.name!r}: external data out of range", source=source)
        tensor.raw_data = blob[offset : offset + length]
        del tensor.external_data[:]
        tensor.data_location = onnx.TensorProto.DEFAULT
        inlined += 1
    data = model.SerializeToString() if inlined else raw
    if len(data) > limits.max_bytes:
        raise ModelError(
            f"ONNX model with its data ({len(data)} bytes) exceeds {limits.max_bytes}", source=source
        )
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # onnx.checker.ValidationError, shape inference errors
        raise ModelError(
            f"the ONNX checker refuses the model: {str(exc).strip()[:500]}", source=source
        ) from exc
    inits = {t.name for t in model.graph.initializer}
    facts = OnnxFacts(
        inputs=tuple(_value_info(onnx, v) for v in model.graph.input if v.name not in inits),
        outputs=tuple(_value_info(onnx, v) for v in model.graph.output),
        opsets=opsets,
        n_nodes=n_nodes,
        producer=f"{model.producer_name} {model.producer_version}".strip(),
        inlined_tensors=inlined,
    )
    return data, facts


def check_io(facts: OnnxFacts, card: MLCard) -> list[str]:
    """Problems between the graph's inputs/outputs and the card (empty: they match)."""
    problems = []
    inputs = {name: (elem, shape) for name, elem, shape in facts.inputs}
    name = card.input_name or (facts.inputs[0][0] if len(facts.inputs) == 1 else None)
    if name is None:
        problems.append(f"the graph has {len(facts.inputs)} inputs: the card must name one (input_name)")
    elif name not in inputs:
        problems.append(f"the card's input {name!r} is not a graph input ({', '.join(inputs)})")
    elif len(inputs) > 1:
        problems.append(
            f"the graph has further inputs the card does not feed: {', '.join(set(inputs) - {name})}"
        )
    else:
        elem, shape = inputs[name]
        n = len(card.features)
        if elem not in ("float", "double"):
            problems.append(f"input {name!r} is {elem}, not a float tensor")
        if len(shape) != 2:
            problems.append(f"input {name!r} has rank {len(shape)}, not [N, {n}]")
        elif isinstance(shape[1], int) and shape[1] not in (0, n):
            problems.append(f"input {name!r} takes {shape[1]} features, the card lists {n}")
    outputs = {o[0]: o for o in facts.outputs}
    out = card.output.name or (facts.outputs[0][0] if facts.outputs else None)
    if out is None or out not in outputs:
        problems.append(f"the card's output {out!r} is not a graph output ({', '.join(outputs)})")
    else:
        _, elem, shape = outputs[out]
        if elem not in ("float", "double"):
            problems.append(f"output {out!r} is {elem}, not a number tensor")
        if card.output.column and (
            len(shape) != 2 or (isinstance(shape[1], int) and shape[1] <= card.output.column)
        ):
            problems.append(f"output {out!r} has no column {card.output.column}")
    return problems


class OnnxPredictor:
    """One ONNX model with its card: feature rows in, the card's predicted quantity out."""

    def __init__(self, data: bytes, card: MLCard) -> None:
        ort = require("onnxruntime", "running an ONNX model")
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # many subjects run side by side; one thread each
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                data, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelError(
                f"onnxruntime cannot load {card.ref}: {str(exc)[:300]}", source=card.ref
            ) from exc
        self.card = card
        self.sha256 = hashlib.sha256(data).hexdigest()
        ins = self.session.get_inputs()
        self.input_name = card.input_name or ins[0].name
        self.input_type = next((i.type for i in ins if i.name == self.input_name), "tensor(float)")
        self.output_name = card.output.name or self.session.get_outputs()[0].name
        self._lock = threading.Lock()

    def predict(self, rows: np.ndarray) -> np.ndarray:
        """Predictions for ``rows`` ([N, n_features], card order), transform applied."""
        x = np.asarray(rows, dtype=np.float64 if "double" in self.input_type else np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.card.features):
            raise ModelError(f"{self.card.ref} takes [N, {len(self.card.features)}] features, got {x.shape}")
        try:
            with self._lock:
                (out,) = self.session.run([self.output_name], {self.input_name: x})
        except Exception as exc:
            raise ModelError(
                f"onnxruntime failed on {self.card.ref}: {str(exc)[:300]}", source=self.card.ref
            ) from exc
        y = np.asarray(out, dtype=float)
        y = y.reshape(len(x), -1)[:, self.card.output.column]
        return np.exp(y) if self.card.output.transform == "exp" else y

    def predict_one(self, values: Mapping[str, float]) -> float:
        return float(self.predict(np.array([[values[n] for n in self.card.feature_names]]))[0])


_CACHE: OrderedDict[str, OnnxPredictor] = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_SIZE = 16


def predictor(data: bytes | str, card: MLCard) -> OnnxPredictor:
    """A cached predictor (one onnxruntime session per model bytes and card); ``data`` may be base64."""
    raw = base64.b64decode(data) if isinstance(data, str) else data
    key = hashlib.sha256(raw + card.model_dump_json().encode()).hexdigest()
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    made = OnnxPredictor(raw, card)
    with _CACHE_LOCK:
        _CACHE[key] = made
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return made


def reference_failures(p: OnnxPredictor) -> list[str]:
    """Reference cases whose prediction misses the expected value beyond its tolerance."""
    card = p.card
    rows = np.array([[c.inputs[n] for n in card.feature_names] for c in card.reference_cases])
    got = p.predict(rows)
    out = []
    for k, (case, value) in enumerate(zip(card.reference_cases, got, strict=True)):
        if not abs(value - case.expected) <= case.tolerance * max(1.0, abs(case.expected)):
            out.append(
                f"reference case {k}: got {value:.10g}, expected {case.expected:.10g} "
                f"(tolerance {case.tolerance:g})"
            )
    return out
