"""Pictures of chapter 8's computational graphs, and the backward pass replayed one node at a time.

`graph_layout` says where each node of a `Value` graph goes (as numbers, so tests can check it),
`backward_trace` runs the backward pass step by step and records every gradient after each step, and
`draw_graph` draws either onto a matplotlib Axes. Any class with Value's attributes will do (such as the
copy that chapter 8 builds in its cells). It adds pictures to helpers.autograd and nothing else.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from helpers.autograd import Value, topological_order

INPUT, OP, DONE, NOW = "#dbe9f6", "#f3f3f3", "#fde6c8", "#f4a261"


def _describe(node: Value) -> str:
    if node.op:
        return node.op if not node.label else f"{node.label} = {node.op}"
    return node.label or "const"


def graph_layout(root: Value) -> dict:
    """Columns by depth (the longest path from an input), rows ordered to keep edges short.

    Returns the nodes in topological order, their x and y positions, the edges as (parent, child)
    index pairs, and a name for each node (its label, else its operation).
    """
    if not hasattr(root, "parents") or not isinstance(getattr(root, "data", None), float):
        raise TypeError(f"graph_layout draws Value graphs (a float in .data), got {type(root).__name__}")
    nodes = topological_order(root)
    index = {id(node): i for i, node in enumerate(nodes)}
    depth = np.zeros(len(nodes), dtype=int)
    for i, node in enumerate(nodes):  # parents come first, so their depth is already known
        depth[i] = 1 + max((depth[index[id(p)]] for p in node.parents), default=-1)
    edges = [(index[id(p)], i) for i, node in enumerate(nodes) for p in node.parents]
    for i, node in enumerate(nodes):  # an input sits just before the first operation that uses it
        if not node.parents and i != len(nodes) - 1:
            depth[i] = min(depth[child] for parent, child in edges if parent == i) - 1
    y = np.zeros(len(nodes))
    for column in range(depth.max() + 1):
        members = [i for i in range(len(nodes)) if depth[i] == column]
        # top to bottom by the mean height of each node's parents; inputs go below the operations
        members.sort(key=lambda i: -np.mean([y[index[id(p)]] for p in nodes[i].parents] or [-np.inf]))
        y[members] = 1.6 * (np.arange(len(members))[::-1] - (len(members) - 1) / 2)
    return {
        "nodes": nodes,
        "x": depth.astype(float),
        "y": y,
        "edges": edges,
        "names": [_describe(node) for node in nodes],
    }


def backward_trace(root: Value) -> dict:
    """The backward pass one operation at a time.

    `grads[k]` holds every node's gradient (in topological order) after k operations have passed their
    gradient back; `grads[0]` is the start (only the output's gradient, 1, is known). `current[k]` is the
    index of the operation that ran at step k (None at step 0). The last row equals `root.backward()`.
    """
    nodes = topological_order(root)
    index = {id(node): i for i, node in enumerate(nodes)}
    for node in nodes:
        node.grad = 0.0
    root.grad = 1.0
    grads, current = [[node.grad for node in nodes]], [None]
    for node in reversed(nodes):
        if node.parents:  # inputs have nothing to pass back
            node._backward()
            grads.append([n.grad for n in nodes])
            current.append(index[id(node)])
    return {"nodes": nodes, "grads": np.array(grads), "current": current}


def draw_graph(ax: plt.Axes, root: Value, step: int | None = None, show_grad: bool = True) -> dict:
    """Draw the graph of `root`: a box per node with its value and (if known) its gradient.

    With `step`, show the backward pass after that many operations: the operation that just ran is
    orange, the edges it sent gradient along are red, and nodes not reached yet show no gradient.
    """
    layout = graph_layout(root)
    nodes, x, y = layout["nodes"], layout["x"], layout["y"]
    grads = [node.grad for node in nodes] if show_grad else [None] * len(nodes)
    now, reached = None, set(range(len(nodes))) if show_grad else set()
    if step is not None:
        trace = backward_trace(root)
        if not 0 <= step < len(trace["current"]):
            raise ValueError(f"step must be between 0 and {len(trace['current']) - 1}, got {step}")
        grads, now = trace["grads"][step], trace["current"][step]
        done = {c for c in trace["current"][1 : step + 1]}
        reached = {len(nodes) - 1} | {i for i, n in enumerate(nodes) for c in done if n in nodes[c].parents}
    boxes = []
    for i, node in enumerate(nodes):
        text = f"{layout['names'][i]}\n{node.data:.4g}"
        if i in reached:
            text += f"\ngrad {grads[i]:.4g}"
        colour = NOW if i == now else DONE if i in reached and step is not None else OP if node.op else INPUT
        box = {"boxstyle": "round,pad=0.4", "facecolor": colour, "edgecolor": "#555555"}
        boxes.append(
            ax.text(x[i], y[i], text, ha="center", va="center", fontsize=9, family="monospace", bbox=box)
        )
    for parent, child in layout["edges"]:  # from the right edge of the parent to the left edge of the child
        hot, long = child == now, x[child] - x[parent] > 1  # a long edge bends, to miss the boxes between
        ax.annotate("", xy=(0, 0.5), xycoords=boxes[child], xytext=(1, 0.5), textcoords=boxes[parent],
                    arrowprops={"arrowstyle": "-|>", "color": "#d62728" if hot else "#777777",
                                "lw": 2 if hot else 1, "shrinkA": 6, "shrinkB": 6,
                                "connectionstyle": f"arc3,rad={-0.3 if long else 0.0}"})  # fmt: skip
    ax.set_xlim(x.min() - 0.6, x.max() + 0.6)
    ax.set_ylim(y.min() - 1.0, y.max() + 1.5)  # room above for the bent edges
    ax.axis("off")
    return layout
