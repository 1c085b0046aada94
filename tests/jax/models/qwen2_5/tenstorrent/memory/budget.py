"""Device memory budgets: what a user runs, per mesh and target, against each chip's DRAM.

A program set is the programs one process keeps alive together (``PROGRAM_SETS``). Its resident
bytes per chip, as the tt-mlir runtime keeps them (``ttnn.memory.const_eval_entries``):

    weights and constants: the union of the set's const-eval cache entries (one process-wide cache,
        keyed by function and inputs, so programs of one model share the device copy of a weight)
    + the largest (device I/O + peak transient) of one program (one program runs at a time; the KV
        cache it reads and writes is the same buffer from prefill to the last decode step)

``per_program`` gives the figure of a runtime with a const-eval cache per executable (tt-mlir
before #6434, 2025-12), where each program held its own copy: the sum of every program's entries.

Full-size figures come from two compiles of fewer layers (``LAYERS``): every part but the peak
transient grows by the same bytes per decoder layer (each layer has the same weights and KV cache),
so ``at(L) = at(l1) + (L - l1) (at(l2) - at(l1)) / (l2 - l1)``; the peak transient is one layer's
working set and does not grow. ``test_tt_memory.py`` checks the extrapolation against a full
28-layer compile.

The DRAM a chip gives the allocator is read from the module's system descriptor (banks x
(dram_unreserved_end - dram_unreserved_base)), less ``RESERVE_PER_BANK`` (see there); a budget
fits when at least ``HEADROOM`` of that is left.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Tuple

MIB = 1 << 20
GIB = 1 << 30
HEADROOM = 0.10
# Per DRAM bank, kept out of the budget: a trace region of up to 10 MiB when tracing is on
# (TT_RUNTIME_TRACE_REGION_SIZE, carved from every bank; 0 by default, then trace buffers come from
# the same DRAM), and allocator slack for alignment and the few buffers the runtime makes itself
# (dispatch, fabric). Kernel binaries are already outside: the descriptor's dram_unreserved_end
# leaves tt-mlir's estimate of them at the top of each bank.
RESERVE_PER_BANK = 16 * MIB
LAYERS = (1, 2)

BATCH = 8
CACHE_LENGTH = 4096          # the default max_cache_length
FORWARD_TOKENS = 32          # the logits parity's batch, padded: 8 rows of 32 tokens
GSM8K_NEW_TOKENS = 256       # the GSM8K command's default
GSM8K_BUCKETS = (128, 256)   # the prompt buckets of GSM8K's 1319 chat prompts, batches of 8, Qwen's tokenizer


def _generate(prompt: int, cache_length: int) -> Tuple:
    return (prompt, cache_length - prompt)


# program set -> [(program, dtype, prompt, new_tokens)]; cache length = prompt + new_tokens
def program_sets(cache_length: int = CACHE_LENGTH) -> Dict[str, List[Tuple]]:
    long = min(512, cache_length // 2)
    return {
        "forward": [("forward", "bfloat16", FORWARD_TOKENS, 32)],
        "generate-host": [("prefill", "bfloat16", *_generate(long, cache_length)),
                          ("decode_step", "bfloat16", *_generate(long, cache_length))],
        "generate-device": [("generate_loop", "bfloat16", *_generate(long, cache_length))],
        # everything `python -m tests.jax.models.qwen2_5.gsm8k` compiles in one process on tt (host loop):
        # a prefill and a decode step per prompt bucket
        "acceptance": [(p, "bfloat16", bucket, GSM8K_NEW_TOKENS) for bucket in GSM8K_BUCKETS
                       for p in ("prefill", "decode_step")],
    }


PROGRAM_SETS = tuple(program_sets())


def program_key(program) -> str:
    name, dtype, prompt, new = program
    return f"{name}/{dtype}/p{prompt}n{new}"


def compose(rows: Iterable[dict]) -> dict:
    """The resident bytes of programs alive together, from their ``memory`` and ``const_eval`` rows."""
    rows = list(rows)
    entries: Dict[str, int] = {}
    per_program = 0
    for row in rows:
        for e in row["const_eval"]:
            entries.setdefault(e["key"], e["bytes"])
            per_program += e["bytes"]
    weights = sum(b for k, b in entries.items())
    live = max(r["memory"]["device_io_bytes"] + r["memory"]["peak_transient_bytes"] for r in rows)
    io = max(r["memory"]["device_io_bytes"] for r in rows)
    transient = max(r["memory"]["peak_transient_bytes"] for r in rows)
    const_transient = max(r["memory"]["const_eval_transient_bytes"] for r in rows)
    inputs = max(r["memory"]["device_inputs_bytes"] for r in rows)
    return {"weights_bytes": weights, "device_io_bytes": io, "device_inputs_bytes": inputs,
            "peak_transient_bytes": transient, "const_eval_transient_bytes": const_transient, "live_bytes": live,
            "first_call_peak_bytes": weights + const_transient + inputs, "resident_bytes": weights + live,
            "resident_per_program_cache_bytes": per_program + live,
            "chip_dram_bytes": rows[0]["memory"]["chip_dram_bytes"], "dram_banks": rows[0]["memory"]["dram_banks"]}


def extrapolate(small: dict, large: dict, layers: Tuple[int, int], to: int) -> dict:
    """``compose`` figures at ``to`` layers from those at ``layers`` (see the module docstring)."""
    l1, l2 = layers
    out = {}
    for key, a in small.items():
        b = large[key]
        if key in ("peak_transient_bytes", "const_eval_transient_bytes", "chip_dram_bytes", "dram_banks"):
            out[key] = max(a, b)
        else:
            out[key] = int(a + (b - a) * (to - l1) // (l2 - l1))
    # live bytes: the I/O grows per layer, the transient does not; the first call: every cache entry (a
    # bound: they fill one by one) plus the largest const-eval function's intermediates
    out["live_bytes"] = out["device_io_bytes"] + out["peak_transient_bytes"]
    out["resident_bytes"] = out["weights_bytes"] + out["live_bytes"]
    out["first_call_peak_bytes"] = out["weights_bytes"] + out["const_eval_transient_bytes"] + out["device_inputs_bytes"]
    return out


def verdict(figures: dict, chip_dram_bytes: int = None, banks: int = None) -> dict:
    """Adds the chip's budget (DRAM less the reserve), headroom and ``fits`` (at least ``HEADROOM`` left)."""
    dram = chip_dram_bytes if chip_dram_bytes is not None else figures["chip_dram_bytes"]
    banks = banks if banks is not None else figures["dram_banks"]
    reserve = banks * RESERVE_PER_BANK
    budget = dram - reserve
    peak = max(figures["resident_bytes"], figures["first_call_peak_bytes"])
    headroom = (budget - peak) / budget
    out = dict(figures, chip_dram_bytes=dram, dram_banks=banks, reserve_bytes=reserve, budget_bytes=budget,
               peak_bytes=peak, headroom=round(headroom, 4), fits=headroom >= HEADROOM)
    if not out["fits"]:
        short = peak - int(budget * (1 - HEADROOM))
        out["shortfall_bytes"] = short
        out["message"] = (f"needs {peak / GIB:.2f} GiB per chip, {short / GIB:.2f} GiB more than the "
                          f"{(1 - HEADROOM) * budget / GIB:.2f} GiB a chip of {dram / GIB:.2f} GiB DRAM allows "
                          f"(less {reserve / MIB:.0f} MiB reserve and {HEADROOM:.0%} headroom)")
    return out


def gib(value: int) -> str:
    return f"{value / GIB:.2f}"


def jobs(geometry: str, mesh: Tuple[int, int], cache_length: int = CACHE_LENGTH, sets: Iterable[str] = PROGRAM_SETS,
         layers: Tuple[int, ...] = LAYERS, batch: int = BATCH, config: str = None, compiler_options=()) -> list:
    """The compile jobs (``jobs.Job``) whose TTNN modules the budgets of ``sets`` read: one per layer count, with
    tt-mlir's ``compiler_options`` ((key, value) pairs)."""
    from ..compile.jobs import Job

    wanted = program_sets(cache_length)
    programs = []
    for name in sets:
        programs += [p for p in wanted[name] if p not in programs]
    return [Job(geometry, tuple(mesh), programs=tuple(programs), layers=n, memory=True, batch=batch, config=config,
                compiler_options=tuple(compiler_options)) for n in layers]


def budgets(results: dict, geometry: str, mesh: Tuple[int, int], full_layers: int,
            cache_length: int = CACHE_LENGTH, sets: Iterable[str] = PROGRAM_SETS, layers: Tuple[int, ...] = LAYERS,
            chip_dram_bytes: int = None, banks: int = None, batch: int = BATCH, config: str = None,
            compiler_options=()) -> Dict[str, dict]:
    """set -> the verdict at ``full_layers``, from one target's compile-worker results of ``jobs(...)``."""
    wanted = program_sets(cache_length)
    by_layers = []
    for job in jobs(geometry, mesh, cache_length, sets, layers, batch, config, compiler_options):
        rows = results["jobs"][job.id]
        failed = [k for k, r in rows.items() if not r.get("ok")]
        if failed:
            raise RuntimeError(f"{job.id}: {failed[0]} did not compile: {rows[failed[0]].get('error')}")
        by_layers.append(rows)
    out = {}
    for name in sets:
        keys = [program_key(p) for p in wanted[name]]
        figures = [compose(rows[k] for k in keys) for rows in by_layers]
        full = figures[0] if len(layers) == 1 else extrapolate(figures[0], figures[1], layers[:2], full_layers)
        out[name] = dict(verdict(full, chip_dram_bytes, banks), programs=keys, layers=full_layers,
                         per_program={k: by_layers[-1][k]["memory"] for k in keys})
    return out
