"""Float golden model (torch): the M³ViT-style multi-task mixture-of-experts ViT.

Pre-norm blocks; odd layers replace the MLP with a mixture of experts whose router is
chosen by the task. Per token the router's softmax runs over all experts and the top-k
probabilities are kept as scores, not renormalised; ties go to the lower expert index.
Parameter names are the checkpoint's keys (see `save_checkpoint`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pyref.config import ConfigError, ModelConfig

CHECKPOINTS = Path(__file__).with_name("checkpoints")


def top_k(probs: torch.Tensor, k: int):
    """Top-k values and indices along the last axis; ties go to the lower index."""
    values, index = torch.sort(probs, dim=-1, descending=True, stable=True)
    return values[..., :k], index[..., :k]


class Attention(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.heads, self.head_dim = config.heads, config.head_dim
        self.qkv = nn.Linear(config.dim, 3 * config.dim)
        self.proj = nn.Linear(config.dim, config.dim)

    def forward(self, x):
        n, tokens, dim = x.shape
        q, k, v = self.qkv(x).reshape(n, tokens, 3, self.heads, self.head_dim).unbind(2)
        scores = torch.einsum("nqhd,nkhd->nhqk", q, k) / math.sqrt(self.head_dim)
        out = torch.einsum("nhqk,nkhd->nqhd", scores.softmax(-1), v)
        return self.proj(out.reshape(n, tokens, dim))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class MoE(nn.Module):
    """Experts with one router per task.

    ``forward`` returns the output and the routing: probabilities ``(n, T, E)`` and the
    chosen experts ``(n, T, k)``, for the load-balancing loss and usage statistics.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        e, d, h = config.experts, config.dim, config.expert_hidden
        self.top_k = config.top_k
        self.routers = nn.Parameter(torch.randn(config.tasks, e, d) * d**-0.5)
        self.fc1_weight = nn.Parameter(torch.randn(e, h, d) * d**-0.5)
        self.fc1_bias = nn.Parameter(torch.zeros(e, h))
        self.fc2_weight = nn.Parameter(torch.randn(e, d, h) * h**-0.5)
        self.fc2_bias = nn.Parameter(torch.zeros(e, d))

    def forward(self, x, task: int):
        probs = (x @ self.routers[task].T).softmax(-1)
        scores, chosen = top_k(probs, self.top_k)
        gate = torch.zeros_like(probs).scatter(-1, chosen, scores)
        # Every expert runs on every token here (cheap at these sizes); gate zeroes the rest.
        hidden = F.gelu(torch.einsum("ntd,ehd->nteh", x, self.fc1_weight) + self.fc1_bias)
        y = torch.einsum("nteh,edh->nted", hidden, self.fc2_weight) + self.fc2_bias
        return torch.einsum("nte,nted->ntd", gate, y), probs, chosen


class Block(nn.Module):
    def __init__(self, config: ModelConfig, layer: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(config.dim, eps=config.ln_eps)
        self.attn = Attention(config)
        self.ln2 = nn.LayerNorm(config.dim, eps=config.ln_eps)
        if config.is_moe(layer):
            self.moe = MoE(config)
        else:
            self.mlp = Mlp(config.dim, config.mlp)

    def forward(self, x, task: int):
        x = x + self.attn(self.ln1(x))
        if hasattr(self, "moe"):
            y, probs, chosen = self.moe(self.ln2(x), task)
            return x + y, (probs, chosen)
        return x + self.mlp(self.ln2(x)), None


class MultiTaskViT(nn.Module):
    """The float model. ``forward(patches, task)`` takes ``(n, patches, patch_pixels)``.

    Returns the task's logits (task 0: ``(n, classes)`` from token 0; task 1:
    ``(n, patches, classes + 1)``) and the routing of every MoE layer.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.patch_embed = nn.Linear(config.patch_pixels, config.dim)
        # Token 0 is the class token, folded into the position embedding.
        self.pos = nn.Parameter(torch.randn(config.tokens, config.dim) * 0.02)
        self.blocks = nn.ModuleList(Block(config, layer) for layer in range(config.depth))
        self.norm = nn.LayerNorm(config.dim, eps=config.ln_eps)
        self.heads = nn.ModuleList([nn.Linear(config.dim, config.classes),
                                    nn.Linear(config.dim, config.patch_classes)])

    def check_input(self, patches: torch.Tensor, task: int):
        c = self.config
        if task not in range(c.tasks):
            raise ConfigError(f"unknown task {task}: config '{c.name}' has tasks 0..{c.tasks - 1}")
        if patches.ndim != 3 or tuple(patches.shape[1:]) != (c.patches, c.patch_pixels):
            raise ConfigError(f"input of shape {tuple(patches.shape)} does not fit config "
                              f"'{c.name}': expected (n, {c.patches}, {c.patch_pixels})")

    def tokens(self, patches: torch.Tensor, task: int, trace: dict | None = None):
        """The last block's tokens ``(n, tokens, dim)`` and the routing per MoE layer."""
        self.check_input(patches, task)
        x = self.patch_embed(patches)
        x = torch.cat([x.new_zeros(x.shape[0], 1, x.shape[2]), x], dim=1) + self.pos
        routing = []
        for layer, block in enumerate(self.blocks):
            x, route = block(x, task)
            if route is not None:
                routing.append(route)
            if trace is not None:
                trace[f"blocks.{layer}.out"] = x
        return x, routing

    def forward(self, patches: torch.Tensor, task: int, trace: dict | None = None):
        x, routing = self.tokens(patches, task, trace)
        x = self.norm(x)
        logits = self.heads[task](x[:, 0] if task == 0 else x[:, 1:])
        return logits, routing


def parameters(model: MultiTaskViT) -> dict:
    """Every parameter as a numpy array, by checkpoint name (what `IntModel` takes)."""
    return {name: p.detach().numpy() for name, p in model.state_dict().items()}


def save_checkpoint(model: MultiTaskViT, path: Path, **metadata):
    """Write every parameter as float32 into an ``.npz``, plus the config and ``metadata``."""
    arrays = {name: p.astype(np.float32) for name, p in parameters(model).items()}
    np.savez_compressed(path, **arrays, __config__=np.array(model.config.name),
                        **{f"__{k}__": np.array(v) for k, v in metadata.items()})


def load_checkpoint(config: ModelConfig, path: Path | None = None, build=MultiTaskViT,
                    train: str = "make train") -> nn.Module:
    """Build ``build(config)`` from an ``.npz`` (default: the shipped one); ``train`` is the
    command that writes it."""
    path = Path(path) if path else CHECKPOINTS / f"{config.name}.npz"
    if not path.exists():
        raise ConfigError(f"no checkpoint {path}: run `{train}`")
    model = build(config)
    with np.load(path) as data:
        stored = str(data["__config__"]) if "__config__" in data else "?"
        if stored != config.name:
            raise ConfigError(f"checkpoint {path} is for config '{stored}', not '{config.name}'")
        state = model.state_dict()
        for name, tensor in state.items():
            if name not in data or data[name].shape != tuple(tensor.shape):
                got = data[name].shape if name in data else "missing"
                raise ConfigError(f"checkpoint {path} does not match config '{config.name}': "
                                  f"{name} is {got}, expected {tuple(tensor.shape)}")
            state[name] = torch.from_numpy(data[name])
    model.load_state_dict(state)
    return model.eval()
