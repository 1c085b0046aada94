"""An estimated per-chip cost of one call of a compiled program (the decode step), read from its TTNN module.

Every op of ``@main`` reads its tensor operands (a gather or a slice only the part it returns) and writes
its results; those in DRAM (the layout's
buffer type) count as DRAM traffic at their stored size (tiles of the layout's element type: bf16 2 B
per value, ``bfp_bf8`` 1088 B per 32x32 tile), those in L1 or in host memory do not. So the weights
count at their stored dtype each time an op reads them (once per step: every weight is read by one
product), the KV cache as the attention products read it and ``paged_update_cache`` writes a row,
and the activations as they pass through DRAM. The const-eval functions (``ttcore.load_cached``) run
once per process and are not part of a step.

Each collective moves, per chip, over the chip-to-chip links (a ring of the ``n`` chips of its group):
``all_reduce`` ``2 (n - 1) / n`` of its tensor, ``all_gather`` ``(n - 1) / n`` of its result,
``reduce_scatter`` ``(n - 1) / n`` of its input.

The estimate is ``dram_bytes / dram_bandwidth + link_bytes / link_bandwidth`` per chip, with nothing
overlapped and no op overhead: a bound from the program's bytes, never a measured speed.
"""

from __future__ import annotations

import collections
import math
from typing import Dict, Optional

from .module import Module, TensorType, parse

# per chip, bytes/s: DRAM (tt-metal's specifications: Wormhole 288 GB/s, Blackhole 512 GB/s)
DRAM_BANDWIDTH = {"wormhole": 288e9, "blackhole": 512e9}
# per chip, bytes/s over the one link per direction a ring collective is assumed to use: a Wormhole Ethernet
# port runs at 100 Gb/s (Tenstorrent's Wormhole specification: 16 x 100 GbE per chip), a Blackhole Galaxy's
# chip-to-chip links at 200 Gb/s by default (docs.tenstorrent.com, tt-system-firmware, "330G Ethernet on
# Blackhole Galaxy"); more links per ring (tt-metal's num_links) divide the link time
LINK_BANDWIDTH = {"wormhole": 12.5e9, "blackhole": 25e9}
RING = {"all_reduce": lambda n: 2 * (n - 1) / n, "all_gather": lambda n: (n - 1) / n,
        "reduce_scatter": lambda n: (n - 1) / n}
NOT_TRAFFIC = ("ttnn.deallocate", "ttnn.get_device", "ttcore.load_cached")
PARTIAL_READS = ("rows_gather", "slice_static", "slice_dynamic")


def _bytes(module: Module, t: Optional[TensorType]) -> int:
    if t is None or t.layout is None:
        return 0
    lay = module.layouts.get(t.layout)
    if lay is None or lay.buffer != "dram":
        return 0
    return lay.nbytes


def _group(module: Module, op) -> int:
    axis = int(op.attrs["cluster_axis"].split(":")[0])
    return module.mesh_shape[axis]


def step_cost(text_or_module) -> dict:
    """Per-chip bytes of one call of ``@main``: DRAM read and written (by op kind), and bytes each kind of
    collective moves over the links."""
    module = parse(text_or_module) if isinstance(text_or_module, str) else text_or_module
    main = module.functions["main"]
    read = collections.Counter()
    written = collections.Counter()
    link = collections.Counter()
    for op in main.ops:
        if op.name in NOT_TRAFFIC:
            continue
        if op.kind in PARTIAL_READS:  # reads the rows or the window it returns, not the whole operand
            read[op.kind] += sum(_bytes(module, t) for t in op.result_types)
            read[op.kind] += sum(_bytes(module, t) for t in op.operand_types[1:])
        else:
            read[op.kind] += sum(_bytes(module, t) for t in op.operand_types)
        written[op.kind] += sum(_bytes(module, t) for t in op.result_types)
        if op.name == "ttnn.paged_update_cache":  # in place: one row per user, not the whole cache
            cache, new = op.operand_types[0], op.operand_types[1]
            read[op.kind] -= _bytes(module, cache)
            written[op.kind] += _bytes(module, new)
        if op.kind in RING:
            n = _group(module, op)
            size = _bytes(module, op.result_types[0] if op.kind == "all_gather" else op.operand_types[0])
            if not size:  # a collective of L1 tensors still crosses the links
                t = op.result_types[0] if op.kind == "all_gather" else op.operand_types[0]
                lay = module.layouts.get(t.layout) if t and t.layout else None
                size = lay.nbytes if lay is not None else 0
            link[op.kind] += int(size * RING[op.kind](n)) if n > 1 else 0
    return {"dram_read_bytes": sum(read.values()), "dram_written_bytes": sum(written.values()),
            "link_bytes": sum(link.values()), "read_by_op": dict(read), "written_by_op": dict(written),
            "link_by_op": dict(link), "mesh": list(module.mesh_shape)}


def estimate(cost: dict, arch: str) -> dict:
    """Seconds per step from the bytes: DRAM at the chip's bandwidth plus the links', nothing overlapped."""
    dram = (cost["dram_read_bytes"] + cost["dram_written_bytes"]) / DRAM_BANDWIDTH[arch]
    links = cost["link_bytes"] / LINK_BANDWIDTH[arch]
    return {"dram_seconds": dram, "link_seconds": links, "seconds": dram + links,
            "tokens_per_second_per_user": 1.0 / (dram + links) if dram + links else math.inf}


def extrapolate(one: dict, two: dict, layers: int) -> dict:
    """A ``layers``-layer program's bytes from its 1- and 2-layer compiles (each layer adds the same bytes)."""
    out = {}
    for key in ("dram_read_bytes", "dram_written_bytes", "link_bytes"):
        out[key] = one[key] + (layers - 1) * (two[key] - one[key])
    return out


def arch_of(module) -> str:
    """``wormhole`` or ``blackhole``, from the module's system descriptor (its text or the parsed ``Module``)."""
    return (parse(module) if isinstance(module, str) else module).system.family


def format_row(label: str, cost: dict, est: dict) -> str:
    gb = 1e9
    return (f"{label:44} {cost['dram_read_bytes'] / gb:8.2f} {cost['dram_written_bytes'] / gb:8.3f} "
            f"{cost['link_bytes'] / 1e6:9.2f} {est['seconds'] * 1e3:8.2f} {est['tokens_per_second_per_user']:8.1f}")


def by_op(costs: Dict[str, int], top: int = 6) -> str:
    return ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(costs.items(), key=lambda kv: -kv[1])[:top] if v)
