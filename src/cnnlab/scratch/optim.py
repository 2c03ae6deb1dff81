"""The classic optimizers, each a few lines, with torch.optim's exact semantics.

Notation: w a parameter, g its gradient, lr the learning rate, t the step (from 1). Every optimizer
takes ``weight_decay`` (lam): unless stated otherwise it is L2 regularisation folded into the gradient,
g <- g + lam w, as in torch.optim. :class:`AdamW` decays the weights directly instead.
"""

from __future__ import annotations

import numpy as np

from .base import Param


class Optimizer:
    """Holds the parameters and per-parameter state; ``step()`` applies one update in place."""

    full_batch = False  # True: the training loop feeds the whole training set as one batch

    def __init__(self, params: list[Param], lr: float, weight_decay: float = 0.0) -> None:
        self.params, self.lr, self.weight_decay = list(params), lr, weight_decay
        self.state: list[dict[str, np.ndarray]] = [{} for _ in self.params]
        self.t = 0

    def step(self) -> None:
        self.t += 1
        for p, state in zip(self.params, self.state):
            g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
            self.update(p, g, state)

    def update(self, p: Param, g: np.ndarray, state: dict) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """w <- w - lr g, with g the gradient of one mini-batch."""

    def update(self, p, g, state):
        p.data -= self.lr * g


class GD(SGD):
    """Batch gradient descent: w <- w - lr g with g the gradient over the whole training set (the
    update of :class:`SGD`; ``full_batch`` tells the training loop to use one batch per epoch)."""

    full_batch = True


class Momentum(Optimizer):
    """Heavy ball, torch's form: v <- mu v + (1 - dampening) g (v = g at t = 1); w <- w - lr v.

    With ``nesterov``: w <- w - lr (g + mu v), the gradient "looked ahead" along the velocity.
    """

    def __init__(self, params, lr, momentum=0.9, dampening=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.momentum, self.dampening, self.nesterov = momentum, dampening, nesterov

    def update(self, p, g, state):
        if "v" not in state:
            state["v"] = g.copy()
        else:
            state["v"] = self.momentum * state["v"] + (1 - self.dampening) * g
        step = g + self.momentum * state["v"] if self.nesterov else state["v"]
        p.data -= self.lr * step


class Nesterov(Momentum):
    """Nesterov momentum: v <- mu v + g; w <- w - lr (g + mu v)."""

    def __init__(self, params, lr, momentum=0.9, weight_decay=0.0):
        super().__init__(params, lr, momentum, 0.0, True, weight_decay)


class AdaGrad(Optimizer):
    """s <- s + g^2; w <- w - lr_t g / (sqrt(s) + eps), lr_t = lr / (1 + (t - 1) lr_decay).

    Each weight's step shrinks with the gradient energy it has seen so far.
    """

    def __init__(self, params, lr=0.01, lr_decay=0.0, eps=1e-10, weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.lr_decay, self.eps = lr_decay, eps

    def update(self, p, g, state):
        s = state["s"] = state.get("s", 0.0) + g * g
        p.data -= self.lr / (1 + (self.t - 1) * self.lr_decay) * g / (np.sqrt(s) + self.eps)


class RMSprop(Optimizer):
    """s <- alpha s + (1 - alpha) g^2; w <- w - lr g / (sqrt(s) + eps).

    ``centered``: divide by sqrt(s - m^2) + eps instead, m <- alpha m + (1 - alpha) g (a variance
    estimate). ``momentum`` mu > 0: b <- mu b + g / (...); w <- w - lr b.
    """

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8, momentum=0.0, centered=False,
                 weight_decay=0.0):
        super().__init__(params, lr, weight_decay)
        self.alpha, self.eps, self.momentum, self.centered = alpha, eps, momentum, centered

    def update(self, p, g, state):
        a = self.alpha
        s = state["s"] = a * state.get("s", 0.0) + (1 - a) * g * g
        if self.centered:
            m = state["m"] = a * state.get("m", 0.0) + (1 - a) * g
            s = s - m * m
        scaled = g / (np.sqrt(s) + self.eps)
        if self.momentum > 0:
            scaled = state["b"] = self.momentum * state.get("b", 0.0) + scaled
        p.data -= self.lr * scaled


class Adam(Optimizer):
    """m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2;
    w <- w - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)   (Kingma and Ba, arXiv:1412.6980).

    ``decoupled=True`` (AdamW, Loshchilov and Hutter, arXiv:1711.05101): w <- w (1 - lr lam) before the
    update, and g is left without the L2 term.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
        super().__init__(params, lr, weight_decay)
        self.betas, self.eps, self.decoupled = betas, eps, decoupled

    def step(self) -> None:
        if not self.decoupled:
            return super().step()
        self.t += 1
        for p, state in zip(self.params, self.state):
            p.data *= 1 - self.lr * self.weight_decay
            self.update(p, p.grad, state)

    def update(self, p, g, state):
        b1, b2 = self.betas
        m = state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
        v = state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g * g
        denom = np.sqrt(v) / np.sqrt(1 - b2 ** self.t) + self.eps
        p.data -= (self.lr / (1 - b1 ** self.t)) * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (torch.optim.AdamW; default lam = 0.01)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled=True)


OPTIMIZERS = {"gd": GD, "sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "adagrad": AdaGrad,
              "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}
