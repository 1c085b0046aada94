"""Weight loading from Hugging Face safetensors checkpoints.

Each tensor is read from its file (memory-mapped), cast to the requested dtype, mapped to
the padded tensor-parallel layout (``TPLayout.transform``) and placed straight into its
``NamedSharding``; only one parameter (at most three Hugging Face tensors) is ever held in
host memory, and every device receives only its own shard.

Pickle checkpoints (``*.bin``, ``*.pt``) are refused: loading them executes code.
"""

from __future__ import annotations

import glob
import json
import mmap
import os
import struct
from typing import Dict, Iterator, Tuple

import jax
import ml_dtypes
import numpy as np

from .config import Qwen2Config
from .layout import TPLayout
from .partitioning import match_rule, named

_ST_DTYPES = {
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
}

DTYPES = {"float32": np.dtype(np.float32), "bfloat16": np.dtype(ml_dtypes.bfloat16)}


class CheckpointError(ValueError):
    """A checkpoint file or tensor is missing, malformed or of the wrong shape."""


def hf_tensors(config: Qwen2Config) -> Iterator[Tuple[str, str, Tuple[str, ...]]]:
    """(Flax parameter path, layout kind, the Hugging Face tensors it is built from) for every
    parameter. q/k/v and gate/up are fused into one parameter each (see ``layout.FUSED``)."""
    yield "embed_tokens/embedding", "vocab_table", ("model.embed_tokens.weight",)
    for i in range(config.num_hidden_layers):
        hf, fx = f"model.layers.{i}.", f"layers_{i}/"
        yield fx + "input_layernorm/scale", "norm", (hf + "input_layernorm.weight",)
        yield fx + "post_attention_layernorm/scale", "norm", (hf + "post_attention_layernorm.weight",)
        yield fx + "self_attn/qkv_proj/kernel", "qkv_kernel", tuple(hf + f"self_attn.{p}_proj.weight" for p in "qkv")
        yield fx + "self_attn/qkv_proj/bias", "qkv_bias", tuple(hf + f"self_attn.{p}_proj.bias" for p in "qkv")
        yield fx + "self_attn/o_proj/kernel", "o_kernel", (hf + "self_attn.o_proj.weight",)
        yield fx + "mlp/gate_up_proj/kernel", "gate_up_kernel", (hf + "mlp.gate_proj.weight", hf + "mlp.up_proj.weight")
        yield fx + "mlp/down_proj/kernel", "down_kernel", (hf + "mlp.down_proj.weight",)
    yield "norm/scale", "norm", ("model.norm.weight",)
    if not config.tie_word_embeddings:
        yield "lm_head/kernel", "lm_head_kernel", ("lm_head.weight",)


class SafetensorsFile:
    """Minimal, validating reader of one ``.safetensors`` file (memory-mapped)."""

    def __init__(self, path: str):
        self.path = path
        try:
            size = os.path.getsize(path)
            with open(path, "rb") as f:
                head = f.read(8)
                if len(head) < 8:
                    raise CheckpointError(f"{path}: truncated safetensors file ({size} bytes, no header)")
                (n,) = struct.unpack("<Q", head)
                if n > size - 8:
                    raise CheckpointError(f"{path}: truncated or not a safetensors file "
                                          f"(header of {n} bytes in a {size}-byte file)")
                header = json.loads(f.read(n))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CheckpointError(f"{path}: unreadable safetensors header: {e}") from e
        header.pop("__metadata__", None)
        self.entries: Dict[str, dict] = header
        self.data_start = 8 + n
        end = max((e["data_offsets"][1] for e in header.values()), default=0)
        if self.data_start + end > size:
            raise CheckpointError(f"{path}: truncated file: tensors need {self.data_start + end} bytes, "
                                  f"the file has {size}")

    def __contains__(self, name: str) -> bool:
        return name in self.entries

    def read(self, name: str) -> np.ndarray:
        entry = self.entries[name]
        dtype = _ST_DTYPES.get(entry["dtype"])
        if dtype is None:
            raise CheckpointError(f"{self.path}: tensor {name!r} has dtype {entry['dtype']}; "
                                  f"supported: {sorted(_ST_DTYPES)}")
        begin, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        if end - begin != int(np.prod(shape)) * dtype.itemsize:
            raise CheckpointError(f"{self.path}: tensor {name!r} has {end - begin} bytes for shape {shape}")
        return np.memmap(self.path, dtype=dtype, mode="r", offset=self.data_start + begin, shape=shape)


class Checkpoint:
    """The safetensors files of a Hugging Face checkpoint directory, indexed by tensor name."""

    def __init__(self, checkpoint_dir: str):
        self.dir = checkpoint_dir
        if not os.path.isdir(checkpoint_dir):
            raise FileNotFoundError(f"checkpoint directory {checkpoint_dir!r} does not exist")
        index = os.path.join(checkpoint_dir, "model.safetensors.index.json")
        single = os.path.join(checkpoint_dir, "model.safetensors")
        if os.path.isfile(index):
            try:
                with open(index, encoding="utf-8") as f:
                    weight_map = json.load(f)["weight_map"]
            except (OSError, json.JSONDecodeError, KeyError) as e:
                raise CheckpointError(f"{index}: unreadable index (needs a 'weight_map'): {e}") from e
            files = sorted(set(weight_map.values()))
        elif os.path.isfile(single):
            weight_map, files = None, ["model.safetensors"]
        else:
            pickles = [os.path.basename(p) for pat in ("*.bin", "*.pt", "*.pth")
                       for p in glob.glob(os.path.join(checkpoint_dir, pat))]
            if pickles:
                raise CheckpointError(
                    f"{checkpoint_dir} holds only pickle weights ({', '.join(sorted(pickles))}); they execute "
                    f"code when loaded and are refused. Convert them to safetensors, e.g. "
                    f"AutoModelForCausalLM.from_pretrained(dir).save_pretrained(out_dir) in a trusted environment")
            raise CheckpointError(f"{checkpoint_dir} has no model.safetensors or model.safetensors.index.json")
        self.files = {}
        for name in files:
            path = os.path.join(checkpoint_dir, name)
            if not os.path.isfile(path):
                raise CheckpointError(f"{path} is listed in the index but missing")
            self.files[name] = SafetensorsFile(path)
        self.weight_map = weight_map

    def read(self, name: str, shape: tuple) -> np.ndarray:
        if self.weight_map is not None:
            fname = self.weight_map.get(name)
            holder = self.files.get(fname) if fname else None
        else:
            holder = self.files["model.safetensors"]
        if holder is None or name not in holder:
            where = holder.path if holder else ", ".join(f.path for f in self.files.values())
            raise CheckpointError(f"tensor {name!r} is missing from the checkpoint (looked in {where})")
        array = holder.read(name)
        if tuple(array.shape) != tuple(shape):
            raise CheckpointError(f"{holder.path}: tensor {name!r} has shape {tuple(array.shape)}, "
                                  f"expected {tuple(shape)} from config.json")
        return array


def _insert(tree: dict, path: str, value) -> None:
    *parents, leaf = path.split("/")
    for key in parents:
        tree = tree.setdefault(key, {})
    tree[leaf] = value


def param_shapes(config: Qwen2Config, layout: TPLayout, dtype: str = "float32") -> dict:
    """The padded tensor-parallel parameter tree as ``jax.ShapeDtypeStruct``s (nothing allocated)."""
    tree: dict = {}
    for path, kind, _ in hf_tensors(config):
        _insert(tree, path, jax.ShapeDtypeStruct(layout.shape(kind), DTYPES[dtype]))
    return tree


def _drop_pages(array) -> None:
    """Let the kernel drop a memory-mapped tensor's pages already read (they are clean file pages)."""
    mapping = getattr(array, "_mmap", None)
    if mapping is not None and hasattr(mapping, "madvise") and hasattr(mmap, "MADV_DONTNEED"):
        mapping.madvise(mmap.MADV_DONTNEED)


def load_params(checkpoint_dir: str, config: Qwen2Config, layout: TPLayout, mesh, dtype: str):
    """Read, transform and shard every parameter. Returns the nested Flax params dict."""
    np_dtype = DTYPES[dtype]
    ckpt = Checkpoint(checkpoint_dir)
    params: dict = {}
    for path, kind, hf_names in hf_tensors(config):
        # Memory-mapped file tensors -> one transformed host copy in the target dtype -> device buffers.
        # The mappings go before the devices are filled, so a parameter costs at most about twice its
        # bytes on top of what is loaded; the vocabulary tables, the largest, go block by block.
        hosts = [ckpt.read(name, shape) for name, shape in zip(hf_names, TPLayout.hf_shapes(config, kind))]
        sharding = named(mesh, match_rule(path)[1])
        if kind in TPLayout.VOCAB_KINDS:  # each device's block straight from the file (see vocab_block)
            (hf,) = hosts

            def block(index, hf=hf, kind=kind):
                out = layout.vocab_block(kind, hf, index).astype(np_dtype)
                _drop_pages(hf)
                return out

            _insert(params, path, jax.make_array_from_callback(layout.shape(kind), sharding, block))
            del hosts, hf
            continue
        tp = np.ascontiguousarray(layout.transform(kind, *hosts), dtype=np_dtype)
        if any(np.may_share_memory(tp, h) for h in hosts):
            tp = tp.copy()  # never hand the devices a view of a file mapping
        del hosts
        _insert(params, path, jax.make_array_from_callback(tp.shape, sharding, lambda index, tp=tp: tp[index]))
        del tp
    return params
