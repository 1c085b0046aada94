"""Make the Blackhole system descriptors with the plugin's mock mode, and their manifest.

Run it with the Python of the Tenstorrent plugin's venv (see ``requirements-tt.txt``)::

    .venv-tt/bin/python -m tests.jax.models.qwen2_5 tt-descriptors            # all Blackhole targets
    .venv-tt/bin/python -m tests.jax.models.qwen2_5 tt-descriptors blackhole_p150 --out DIR

Mock mode: with ``TT_METAL_MOCK_CLUSTER_DESC_PATH`` naming a cluster descriptor YAML (they
ship inside the plugin's runtime assets, which it unpacks into ``$TMPDIR``), the plugin opens
mock chips and writes the system descriptor to ``$TMPDIR/tt_pjrt_system_descriptor``, which
it deletes at exit; each target runs in its own process and copies it out first. The first
8- or 32-chip start builds the chips' firmware (about 5 minutes, cached under
``TT_METAL_CACHE``). Wormhole mock mode fails with this plugin build (its RISC-V toolchain
lacks the Wormhole variant), so Wormhole descriptors come from elsewhere (``tt_targets.py``).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

from ...cli.parser import Parser
from .targets import BY_NAME, COMMITTED_DIR, installed_plugin, schema_hash, sha256

# target -> cluster descriptor YAML shipped with the plugin's tt-metal runtime
MOCK_CLUSTERS = {
    "blackhole_p150": "blackhole_P150.yaml",
    "blackhole_8xp150": "blackhole_8xP150.yaml",
    "blackhole_galaxy": "blackhole_galaxy.yaml",
}
_CLUSTER_DIR = "tt_metal/third_party/umd/tests/cluster_descriptor_examples"
def _child(target: str, out: str) -> None:
    """In a fresh process: unpack the runtime, open mock chips, copy the descriptor out."""
    from jax._src import xla_bridge

    xla_bridge._discover_and_register_pjrt_plugins()  # unpacks the runtime assets into $TMPDIR
    tmp = tempfile.gettempdir()
    yamls = glob.glob(os.path.join(tmp, "libtt-tt-metal-runtime-assets-*", _CLUSTER_DIR, MOCK_CLUSTERS[target]))
    if not yamls:
        sys.exit(f"{MOCK_CLUSTERS[target]} not found under {tmp}: is a Tenstorrent plugin installed in this venv?")
    os.environ["TT_METAL_MOCK_CLUSTER_DESC_PATH"] = yamls[0]
    import jax

    n = len(jax.devices("tt"))
    shutil.copyfile(os.path.join(tmp, "tt_pjrt_system_descriptor"), out)
    print(f"{target}: {n} mock chips -> {out}", flush=True)


def make(target: str, out_dir: str, cache_dir: str) -> dict:
    out = os.path.join(out_dir, BY_NAME[target].file_names[0])
    with tempfile.TemporaryDirectory(prefix=f"ttdesc_{target}_") as tmp:
        root = str(pathlib.Path(__file__).resolve().parents[6])  # where `tests.jax.models.qwen2_5` imports from
        env = dict(os.environ, JAX_PLATFORMS="tt", TMPDIR=tmp, TT_METAL_CACHE=cache_dir,
                   PYTHONPATH=os.pathsep.join([root] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        env.pop("TT_COMPILE_ONLY_SYSTEM_DESC", None)
        start = time.time()
        # run in the temporary directory: mock mode writes fabric mapping files into the working directory
        subprocess.run([sys.executable, "-m", __spec__.name, "--child", target, os.path.abspath(out)], env=env,
                       cwd=tmp, check=True)
    return {"file": os.path.basename(out), "chips": BY_NAME[target].chips, "system": BY_NAME[target].system,
            "made_with": f"mock mode, {MOCK_CLUSTERS[target]}", "seconds": round(time.time() - start, 1),
            "schema_hash": schema_hash(out), "sha256": sha256(out)}


def main(argv=None) -> int:
    parser = Parser(prog="python -m tests.jax.models.qwen2_5 tt-descriptors",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help=f"targets to make (default: all of {sorted(MOCK_CLUSTERS)})")
    parser.add_argument("--out", default=COMMITTED_DIR, help="output directory (default: the committed one)")
    parser.add_argument("--cache", default=os.path.join(os.path.expanduser("~"), ".cache", "tt_metal_mock"),
                        help="TT_METAL_CACHE for the firmware built at first start")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(*args.child)
        return 0
    unknown = [t for t in args.targets if t not in MOCK_CLUSTERS]
    if unknown:
        parser.fail(f"unknown target(s) {unknown}; mock mode makes {sorted(MOCK_CLUSTERS)}")
    if installed_plugin() is None:
        parser.fail("no Tenstorrent PJRT plugin in this Python; run it with .venv-tt/bin/python")
    os.makedirs(args.out, exist_ok=True)
    manifest_path = os.path.join(args.out, "manifest.json")
    manifest = {"plugin": installed_plugin(), "descriptors": {}}
    if os.path.isfile(manifest_path):
        with open(manifest_path) as f:
            manifest["descriptors"] = json.load(f).get("descriptors", {})
    for target in args.targets or sorted(MOCK_CLUSTERS):
        manifest["descriptors"][target] = made = make(target, args.out, args.cache)
        manifest["schema_hash"] = made["schema_hash"]
        with open(manifest_path, "w") as f:
            json.dump(manifest, f, indent=2, sort_keys=True)
            f.write("\n")
    print(f"manifest: {manifest_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
