"""One attention node per layer in the embedding model's graph, where the export left ~40.

The packaged all-MiniLM-L6-v2 was exported by torch.export: each layer's attention is spelled out
as reshapes, transposes, two scalings, a mask built from `attention_mask` with Where/IsNaN, softmax
and matmuls. onnxruntime's own fusion tool (onnxruntime.transformers.optimizer) does not recognise
that spelling, so no layer gets its fused kernel, and a 20-token query pays the dispatch of ~450
small operators. Here each layer's query, key and value projections feed one `MultiHeadAttention`
(an onnxruntime contrib operator) whose output goes where the spelled-out one went; the rest is
pruned: 140 operators (275 once quantised). The mask goes too, which is exact only because
tactful never pads: every text runs alone (knowledge/embeddings.py), so its mask is all ones.

derived_model() checks the result against the graph it came from before anyone uses it.
"""

from __future__ import annotations

import re

import onnx
from onnx import helper

NUM_HEADS = 12  # all-MiniLM-L6-v2: hidden size 384, 12 heads of 32
_LAYER_BIAS = re.compile(r"^inner\.encoder\.layer\.(\d+)\.attention\.self\.query\.bias$")


class AttentionPatternMissing(ValueError):
    """The graph does not have the projections this rewrite looks for (another export)."""


def fuse_attention(model: onnx.ModelProto, num_heads: int = NUM_HEADS) -> int:
    """Rewrite `model` in place; returns the number of layers rewritten."""
    graph = model.graph
    layers = sorted(int(m.group(1)) for t in graph.initializer if (m := _LAYER_BIAS.match(t.name)))
    if not layers:
        raise AttentionPatternMissing("no attention query bias found")
    consumers: dict[str, list[onnx.NodeProto]] = {}
    producer: dict[str, onnx.NodeProto] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
        for name in node.output:
            producer[name] = node

    def bias_add(bias: str) -> onnx.NodeProto:
        adds = [n for n in consumers.get(bias, []) if n.op_type == "Add"]
        if len(adds) != 1:
            raise AttentionPatternMissing(f"expected one Add of {bias}, found {len(adds)}")
        return adds[0]

    for i in layers:
        prefix = f"inner.encoder.layer.{i}.attention."
        query, key, value = (bias_add(f"{prefix}self.{part}.bias").output[0] for part in ("query", "key", "value"))
        out = bias_add(f"{prefix}output.dense.bias")
        dense = next((producer[name] for name in out.input if name in producer and producer[name].op_type == "MatMul"), None)
        if dense is None:
            raise AttentionPatternMissing(f"layer {i}: no output projection MatMul")
        context = f"tactful_attention_{i}"
        attention = helper.make_node("MultiHeadAttention", [query, key, value], [context], name=context,
                                     domain="com.microsoft", num_heads=num_heads)
        graph.node.insert(list(graph.node).index(dense), attention)  # nodes stay topologically sorted
        dense.input[0] = context
    _prune(graph)
    if not any(op.domain == "com.microsoft" for op in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return len(layers)


def _prune(graph: onnx.GraphProto) -> None:
    """Drop the nodes nothing reads any more (the spelled-out attention and its mask), then their weights."""
    outputs = {o.name for o in graph.output}
    while True:
        read = outputs | {name for node in graph.node for name in node.input}
        dead = [node for node in graph.node if not any(name in read for name in node.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    read = {name for node in graph.node for name in node.input}
    for weight in [t for t in graph.initializer if t.name not in read]:
        graph.initializer.remove(weight)
