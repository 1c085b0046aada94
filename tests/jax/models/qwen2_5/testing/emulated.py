"""``--platform tt-emulated``: the session's emulated Tenstorrent platform, installed as the model's default
program backend (``causal_lm.DEFAULT_PROGRAMS``) so that every test's ``load_model`` runs its programs as
tt-mlir compiled them for the target of its mesh's chip count, in the TTNN executor; and each test's junit
properties: the targets it ran on, the TTNN ops executed there and the executor's arithmetic."""

from __future__ import annotations

import collections
import json

import pytest

from . import options

FUSED_KERNELS = ("ttnn.rotary_embedding", "ttnn.scaled_dot_product_attention",
                 "ttnn.scaled_dot_product_attention_decode")


class SessionPlatform:
    def __init__(self, platform):
        self.platform = platform
        self.targets = platform.targets

    def snapshot(self) -> dict:
        return {t: collections.Counter(c) for t, c in self.platform.counts.items()}

    def properties(self, before: dict) -> dict:
        ran, fused = {}, collections.Counter()
        for target, counts in self.platform.counts.items():
            new = counts - before.get(target, collections.Counter())
            if sum(new.values()):
                ran[target] = sum(new.values())
            fused.update({op: n for op, n in new.items() if op in FUSED_KERNELS})
        if not ran:
            return {}
        out = {"tt_target": ",".join(sorted(ran)), "tt_ops_executed": json.dumps(ran, sort_keys=True),
               "tt_arithmetic": self.platform.arithmetic}
        if fused:  # tt-metal's fused attention and RoPE kernels (level >= 1: docs/fused_attention.md)
            out["tt_fused_kernels_executed"] = json.dumps(dict(sorted(fused.items())))
        return out


def configure(config) -> None:
    """Build the platform (a usage error, naming what is missing, when it cannot start) and install it."""
    from ..model import causal_lm
    from ..tenstorrent.emulated.platform import EmulatedPlatform, EmulationUnavailable, parse_targets

    names = [n for n in (options.get(config, "--tt-emulated-targets") or "").split(",") if n.strip()]
    try:
        platform = EmulatedPlatform(parse_targets(names), tt_python=options.get(config, "--tt-python"),
                                    compile_cache=options.get(config, "--tt-compile-cache"),
                                    descriptor_dirs=options.get(config, "--tt-system-descs"),
                                    arithmetic=options.get(config, "--tt-arithmetic") or "exact")
        for chips in sorted(platform.targets):
            platform.check(chips)
    except (EmulationUnavailable, ValueError) as e:
        raise pytest.UsageError(f"--platform tt-emulated: {e}") from e
    config.qwen_emulated = SessionPlatform(platform)
    causal_lm.DEFAULT_PROGRAMS = lambda mesh: platform


def summary(config) -> str:
    emulated = getattr(config, "qwen_emulated", None)
    if emulated is None:
        return ""
    stats = emulated.platform.stats()
    c = stats["compile"]
    ops = ", ".join(f"{t} {n}" for t, n in sorted(stats["ops_executed"].items())) or "none"
    return (f"tt-emulated: {c['compiles']} programs compiled by tt-mlir in {c['compile_seconds']:.1f}s "
            f"({c['server_starts']} compile servers, {c['start_seconds']:.0f}s to start), {c['hits']} from the cache; "
            f"TTNN ops executed: {ops}")
