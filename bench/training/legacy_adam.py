"""Adam as torch ≤ 1.4 stepped it, for `--d-update legacy`.

torch ≤ 1.4's Adam wrote the update through `p.data`, which autograd does not track. The LBAM
release (loss/InpaintingLoss.py) relies on that: it steps D and then back-propagates G's
adversarial term through the D output computed before the step, so that term's value is the
pre-step D(fake) while its gradient flows through the updated weights. torch ≥ 1.5 steps
parameters in place under no_grad, which bumps their version and makes that backward fail. This
optimiser reproduces torch 1.4.0's torch/optim/adam.py step (no weight decay, no AMSGrad)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn


class LegacyAdam(torch.optim.Optimizer):
    def __init__(
        self,
        params: Iterable[nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure: None = None) -> None:
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.data
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p.data)
                    state["exp_avg_sq"] = torch.zeros_like(p.data)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                state["step"] += 1
                bias_correction1 = 1 - beta1 ** state["step"]
                bias_correction2 = 1 - beta2 ** state["step"]
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                denom = (exp_avg_sq.sqrt() / math.sqrt(bias_correction2)).add_(group["eps"])
                p.data.addcdiv_(exp_avg, denom, value=-group["lr"] / bias_correction1)
