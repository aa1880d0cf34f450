"""SGD and momentum folded into the backward pass: each weight matrix is updated as soon as its gradient's product
exists, by one GEMM whose α and β carry the rule, so dW is never written out and W, v are touched while the
product has them in cache.

    momentum:  v ← μ·v − lr·(xᵀ·dout)      one GEMM, α = −lr, β = μ
               v ← v − lr·l2·W;  W ← W + v   two axpy
    sgd:       W ← (1 − lr·l2)·W − lr·(xᵀ·dout)   one GEMM, α = −lr, β = 1 − lr·l2

which is `Momentum.step` / `SGD.step` after `dW = xᵀ·dout + l2·W`, in another order of float roundings. The
biases and a norm's gamma/beta (the flat buffer after the weights) then take the optimizer's own `step`.
Each affine's dx = dout·Wᵀ is formed before its W changes, so the gradient is the one of the forward's weights.

The trainer folds every step but the last of an epoch, which runs unfused so that `grad` holds a real gradient
for the diagnostics, TensorBoard's histograms and a divergence report; a step whose loss is not finite is never
folded. Which steps fold depends only on the config and the step's place in its epoch, so a seed still gives
bit-identical weights, resumed or not.
"""

from nncli import blas
from nncli.blas import axpy, gemm
from nncli.optim.rules import SGD, Momentum


def fused_update(optimizer, net, lr, clip_norm=None):
    """A FusedUpdate of `net` by `optimizer` at learning rate `lr` when the rule folds (SGD or momentum, no L1, no
    gradient clipping, which needs every gradient before any update) and NumPy's BLAS gives GEMM's β; else None."""
    if type(optimizer) not in (SGD, Momentum) or net.l1 or clip_norm is not None or not blas.HAVE_GEMM:
        return None
    return FusedUpdate(optimizer, net, lr)


class FusedUpdate:
    """Called by each Affine's backward with its upstream gradient; `finish` updates the rest of the vector."""

    def __init__(self, optimizer, net, lr):
        self.optimizer, self.net, self.lr = optimizer, net, lr
        self.momentum = getattr(optimizer, "mu", None)
        self.velocity = {}
        if self.momentum is not None:
            offset = 0
            for affine in net.affines:
                self.velocity[affine] = optimizer.v[offset : offset + affine.W.size].reshape(affine.W.shape)
                offset += affine.W.size

    def __call__(self, affine, dout):
        """Update affine.W by the rule, from its input and upstream gradient (dW = affine.xᵀ·dout)."""
        lr, l2, W = self.lr, self.net.l2, affine.W
        if self.momentum is None:
            gemm(-lr, affine.x, dout, 1 - lr * l2, W, trans_a=True)
            return
        v = self.velocity[affine]
        gemm(-lr, affine.x, dout, self.momentum, v, trans_a=True)
        if l2:
            axpy(-lr * l2, W, v)
        axpy(1, v, W)

    def finish(self):
        """The optimizer's own step on the biases and norm parameters (and its step count), after the weights."""
        start, net = self.net.num_weights, self.net
        self.optimizer.step(net.theta[start:], net.grad[start:], self.lr, start)
