"""Graph surgery around onnxconverter-common's FP16 conversion.

``convert_float_to_float16(keep_io_types=True)`` fails ("The downstream node of the second cast
node should be graph output") whenever the node that produces a graph output is kept in FP32,
which is exactly what the DRSN export wants for its logits. So the conversion runs with FP16 IO
and this module then gives the graph FP32 inputs and outputs itself, and removes the
FP32 -> FP16 -> FP32 round trips the converter leaves between two neighbouring FP32 nodes (the
channel-shared threshold's mean of a mean would otherwise be rounded to FP16 in between).
"""

from __future__ import annotations

import logging

import onnx
from onnx import TensorProto, helper

log = logging.getLogger(__name__)

FLOAT, FLOAT16 = TensorProto.FLOAT, TensorProto.FLOAT16


def _cast_to(node: onnx.NodeProto) -> int | None:
    if node.op_type != "Cast":
        return None
    return next((int(helper.get_attribute_value(a)) for a in node.attribute if a.name == "to"), None)


def _rename_input(graph: onnx.GraphProto, old: str, new: str) -> None:
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name == old:
                node.input[i] = new


def restore_fp32_inputs(graph: onnx.GraphProto) -> None:
    """FP16 graph inputs become FP32 inputs followed by a Cast to FP16 inside the graph."""
    casts = []
    for inp in graph.input:
        tt = inp.type.tensor_type
        if tt.elem_type != FLOAT16:
            continue
        tt.elem_type = FLOAT
        inner = f"{inp.name}_to_fp16"
        _rename_input(graph, inp.name, inner)
        casts.append(
            helper.make_node("Cast", [inp.name], [inner], name=f"{inp.name}_cast_to_fp16", to=FLOAT16)
        )
    for cast in reversed(casts):
        graph.node.insert(0, cast)


def restore_fp32_outputs(graph: onnx.GraphProto) -> None:
    """FP16 graph outputs become FP32: drop a final Cast-to-FP16 after an FP32 node, else add a Cast."""
    producers = {out: n for n in graph.node for out in n.output}
    for out in graph.output:
        tt = out.type.tensor_type
        if tt.elem_type != FLOAT16:
            continue
        tt.elem_type = FLOAT
        node = producers.get(out.name)
        if node is not None and _cast_to(node) == FLOAT16 and node.input[0] in producers:
            upstream = producers[node.input[0]]
            upstream.output[list(upstream.output).index(node.input[0])] = out.name
            _rename_input(graph, node.input[0], out.name)
            graph.node.remove(node)
            continue
        inner = f"{out.name}_fp16"
        if node is not None:
            node.output[list(node.output).index(out.name)] = inner
        _rename_input(graph, out.name, inner)
        graph.node.append(
            helper.make_node("Cast", [inner], [out.name], name=f"{out.name}_cast_to_fp32", to=FLOAT)
        )


def drop_cast_round_trips(graph: onnx.GraphProto, fp32_tensors: set[str]) -> int:
    """Bypass ``x(fp32) -> Cast(fp16) -> Cast(fp32)`` chains; return how many were removed."""
    producers = {out: n for n in graph.node for out in n.output}
    removed = []
    for node in graph.node:
        first = producers.get(node.input[0]) if _cast_to(node) == FLOAT else None
        if first is None or _cast_to(first) != FLOAT16 or first.input[0] not in fp32_tensors:
            continue
        _rename_input(graph, node.output[0], first.input[0])
        removed.append(node)
    for node in removed:
        graph.node.remove(node)
    still_used = {name for n in graph.node for name in n.input} | {o.name for o in graph.output}
    orphans = [n for n in graph.node if _cast_to(n) == FLOAT16 and n.output[0] not in still_used]
    for node in orphans:
        graph.node.remove(node)
    if removed:
        log.debug("removed %d FP32->FP16->FP32 cast round trips", len(removed))
    return len(removed)


def float_tensors(model: onnx.ModelProto) -> set[str]:
    """Names of every tensor whose inferred element type is float32."""
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    infos = [*g.value_info, *g.input, *g.output]
    names = {v.name for v in infos if v.type.tensor_type.elem_type == FLOAT}
    return names | {t.name for t in g.initializer if t.data_type == FLOAT}


def untie_initializers(graph: onnx.GraphProto, blocked: set[str]) -> int:
    """Give FP32-kept nodes private copies of initializers they share with FP16 nodes.

    Exporters and simplifiers merge equal constants (all-zero biases of an untrained model, say);
    one tensor cannot be FP32 for one consumer and FP16 for another, so the converter would emit
    a graph with mismatched types.
    """
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, set[bool]] = {}
    for node in graph.node:
        for name in node.input:
            if name in inits:
                consumers.setdefault(name, set()).add(node.name in blocked)
    shared = {name for name, kinds in consumers.items() if len(kinds) == 2}
    for node in graph.node:
        if node.name not in blocked:
            continue
        for i, name in enumerate(node.input):
            if name in shared:
                copy = onnx.TensorProto()
                copy.CopyFrom(inits[name])
                copy.name = f"{name}_fp32_{node.name}"
                graph.initializer.append(copy)
                node.input[i] = copy.name
    return len(shared)
