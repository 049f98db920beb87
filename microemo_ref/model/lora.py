"""LoRA: low-rank adapters on a frozen LLM's attention projections.

Hu et al. (2021, "LoRA: Low-Rank Adaptation of Large Language Models"): keep a pretrained
weight W (out x in) frozen and learn a low-rank update, so the layer computes

    y = x W^T + (alpha / r) * (x A^T) B^T,      A: (r x in), B: (out x r)

A starts random (Kaiming-uniform, as the paper's reference code), B at zero, so the adapted
model starts *exactly* as the pretrained one. With r = 8 on the query and value projections
of SmolLM2-135M's 30 layers that is 0.46 M trainable numbers against 135 M frozen ones.

Written here (40 lines) rather than taken from ``peft`` so that it can be read; the maths is
the same. Only the adapters' ``A`` and ``B`` are trainable and saved.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable rank-r update (see the module docstring)."""

    def __init__(self, base: nn.Linear, rank: int = 8, alpha: float = 16.0) -> None:
        super().__init__()
        self.base = base
        self.base.requires_grad_(False)
        self.scale = alpha / rank
        self.A = nn.Parameter(torch.empty(rank, base.in_features))
        self.B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))

    def forward(self, x: Tensor) -> Tensor:
        return self.base(x) + self.scale * (x @ self.A.T) @ self.B.T


def add_lora(model: nn.Module, targets: tuple[str, ...] = ("q_proj", "v_proj"), rank: int = 8,
             alpha: float = 16.0) -> list[str]:
    """Replace every nn.Linear whose name ends in one of ``targets`` by a LoRALinear; return their names."""
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise ValueError(f"this {type(model).__name__} already carries LoRA adapters (another MicroEmo uses it); "
                         "load a fresh LLM for each model")
    names = [name for name, module in model.named_modules()
             if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in targets]
    if not names:
        raise ValueError(f"no nn.Linear named {targets} in {type(model).__name__}")
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(getattr(parent, child), rank, alpha))
    return names


def lora_state(model: nn.Module) -> dict[str, Tensor]:
    """Only the adapters' weights (what a checkpoint stores)."""
    return {k: v for k, v in model.state_dict().items() if k.endswith((".A", ".B"))}


__all__ = ["LoRALinear", "add_lora", "lora_state"]
