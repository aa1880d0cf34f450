"""A fully connected network built from the gates in `layers`, `normalization` and `activations`.

[affine (→ norm) → activation (→ dropout)] for each hidden width, then a final affine to class scores:
`hidden=[]` is a linear classifier, `[h]` a two-layer net, `[h1, h2]` a three-layer net.

Every parameter is a view into one flat buffer `theta` (weights W1..WL first, then biases b1..bL, then a norm's
gamma1, beta1, …) and every gradient a view into `grad` of the same layout, so an optimizer updates all parameters
with a few vectorized passes and regularization touches one contiguous weight block. A batch norm's running
averages are not parameters: they live in `running` (running_mean1, running_var1, …), which checkpoints store.
"""

import functools
import math

import numpy as np

from nncli.nn.activations import hyperparameters, make_activation
from nncli.nn.initialization import weight_std
from nncli.nn.layers import Affine, Dropout
from nncli.nn.losses import LOSSES, loss_options, softmax
from nncli.nn.normalization import make_norm
from nncli.nn.regularization import add_regularization_grad, l1_kinks, regularization_loss


class Network:
    """Scores f(x) of a fully connected net, its loss, and the gradient of the loss on every parameter.

    input_dim D, hidden widths, num_classes C. Parameters `params['W1']` (D, h1), `params['b1']` (h1,), …
    All randomness (init, dropout masks) comes from `rng`, a numpy Generator or a seed. `class_weights` (C,), or
    (K, 2) for logistic (see nncli.nn.weights), make the data loss a weighted mean, validation's too; None: plain.
    `norm` ("none", "batchnorm", "layernorm") follows each hidden affine, with `norm_eps` and `norm_momentum`.
    """

    def __init__(
        self,
        input_dim,
        hidden,
        num_classes,
        *,
        activation="relu",
        activation_options=None,
        init="he",
        init_std=0.01,
        bias_init=0.0,
        dropout=0.0,
        norm="none",
        norm_momentum=0.9,
        norm_eps=1e-5,
        loss="softmax",
        loss_options=None,
        class_weights=None,
        l2=0.0,
        l1=0.0,
        dtype=np.float32,
        rng=0,
    ):
        self.sizes = [int(input_dim), *map(int, hidden), int(num_classes)]
        self.activation, self.loss_name = activation, loss
        self.l2, self.l1 = float(l2), float(l1)
        self.dtype = np.dtype(dtype)
        self.rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self._loss = LOSSES[loss]
        self.loss_options = dict(loss_options or {})
        self._loss_fn = functools.partial(self._loss.fn, **self.loss_options) if self.loss_options else self._loss.fn
        self.class_weights = None if class_weights is None else np.asarray(class_weights, np.float64)
        if self.class_weights is not None:  # a weighted mean over the batch (nncli.nn.weights); None: the plain loss
            self._loss_fn = functools.partial(self._loss.weighted, class_weights=self.class_weights)
        self.norm = norm
        self._allocate(init, init_std, bias_init)
        self._build_layers(activation, activation_options or {}, dropout, (norm, norm_momentum, norm_eps))
        self._dscores = None
        self._reg_scratch = None

    def _allocate(self, init, init_std, bias_init):
        """theta and grad, the flat buffers, and params/grads as views into them; weights drawn from `init`."""
        shapes = list(zip(self.sizes[:-1], self.sizes[1:]))
        self.num_weights = sum(fi * fo for fi, fo in shapes)
        self.theta = np.zeros(self.num_weights + sum(self.sizes[1:]) + 2 * sum(self._normed_widths), self.dtype)
        self.grad = np.zeros_like(self.theta)
        self._views()
        for i, (fi, fo) in enumerate(shapes, start=1):
            self.params[f"W{i}"][...] = self.rng.standard_normal((fi, fo)) * weight_std(init, fi, fo, init_std)
            if i < len(shapes):  # hidden layers only: the scores' biases start at 0
                self.params[f"b{i}"][...] = bias_init
        for i in range(1, len(self._normed_widths) + 1):  # gamma starts at 1, beta at 0: the norm starts as x̂ itself
            self.params[f"gamma{i}"][...] = 1

    @property
    def _normed_widths(self):
        """The widths of the hidden layers a norm follows (each has a gamma and a beta): all of them, or none."""
        return self.sizes[1:-1] if self.norm != "none" else []

    def _views(self):
        """params and grads as views into theta and grad: W1..WL, then b1..bL, then gamma1, beta1, … per hidden layer
        with a norm."""
        self.params, self.grads = {}, {}
        w_off, b_off = 0, self.num_weights
        for i, (fi, fo) in enumerate(zip(self.sizes[:-1], self.sizes[1:]), start=1):
            for store, flat in ((self.params, self.theta), (self.grads, self.grad)):
                store[f"W{i}"] = flat[w_off : w_off + fi * fo].reshape(fi, fo)
                store[f"b{i}"] = flat[b_off : b_off + fo]
            w_off, b_off = w_off + fi * fo, b_off + fo
        for i, width in enumerate(self._normed_widths, start=1):
            for name in ("gamma", "beta"):
                for store, flat in ((self.params, self.theta), (self.grads, self.grad)):
                    store[f"{name}{i}"] = flat[b_off : b_off + width]
                b_off += width

    def __setstate__(self, state):
        """Unpickled (a pickled estimator): pickle copies views apart, so make every parameter and gradient, and the
        layers' references to them, views of `theta` and `grad` again; training then updates what predicts."""
        self.__dict__.update(state)
        params, grads = self.params, self.grads  # the copies, kept alive while their ids are looked up
        self._views()
        views = {id(params[n]): self.params[n] for n in params} | {id(grads[n]): self.grads[n] for n in grads}
        for layer in self.layers:
            for attr, value in list(vars(layer).items()):
                if id(value) in views:
                    setattr(layer, attr, views[id(value)])

    def _build_layers(self, activation, options, dropout, norm):
        """[affine (→ norm) → activation (→ dropout)] per hidden layer, then the scores' affine; norms and activations
        work in place. `norm` is (name, momentum, eps)."""
        self.layers, self.affines, self.norms, self.running = [], [], [], {}
        depth = len(self.sizes) - 1
        for i in range(1, depth + 1):
            affine = Affine(self.params[f"W{i}"], self.params[f"b{i}"], self.grads[f"W{i}"], self.grads[f"b{i}"])
            self.affines.append(affine)
            self.layers.append(affine)
            if i < depth:
                if norm[0] != "none":
                    self.norms.append(self._norm_layer(i, *norm))
                    self.layers.append(self.norms[-1])
                self.layers.append(make_activation(activation, inplace=True, **options))
                if dropout > 0:
                    self.layers.append(Dropout(dropout, self.rng))
        self.mode_layers = [layer for layer in self.layers if hasattr(layer, "train")]

    def _norm_layer(self, i, name, momentum, eps):
        """Layer i's norm gate over gamma_i and beta_i; its running averages (batch norm) join `running`."""
        p, g = self.params, self.grads
        layer = make_norm(name, p[f"gamma{i}"], p[f"beta{i}"], g[f"gamma{i}"], g[f"beta{i}"], eps, momentum, True)
        if hasattr(layer, "running_mean"):
            self.running[f"running_mean{i}"], self.running[f"running_var{i}"] = layer.running_mean, layer.running_var
        return layer

    @property
    def weights(self):
        """All weight matrices as one flat view (the block regularization acts on)."""
        return self.theta[: self.num_weights]

    def forward(self, X, train=False):
        """Scores (N, C) for a batch; `train` turns dropout on and has batch norm use (and average) the batch's
        statistics. The array is reused by the next call."""
        for layer in self.mode_layers:
            layer.train = train
        out = X if X.dtype == self.dtype else X.astype(self.dtype)
        for layer in self.layers:
            out = layer.forward(out)
        self.scores = out
        return out

    def regularization_loss(self):
        return regularization_loss(self.weights, self.l2, self.l1)

    def forward_loss(self, X, y, train=True):
        """Total loss (data + regularization) of a batch, without the backward pass."""
        self.data_loss, self._dscores_view = self._loss_fn(self.forward(X, train), y, self._dscores_buffer(len(y)))
        return self.data_loss + self.regularization_loss()

    def loss(self, X, y, train=True, need_dx=False, update=None):
        """Forward and backward on a batch: returns the total loss and fills `grads` (and `dx` if asked).

        `update` (a nncli.optim.fused.FusedUpdate) updates each weight matrix during the backward pass instead of
        filling its gradient, unless the loss is not finite: that step is left unapplied, its gradients filled."""
        total = self.forward_loss(X, y, train)
        self.backward(self._dscores_view, need_dx, update if math.isfinite(total) else None)
        return total

    def backward(self, dscores, need_dx=False, update=None):
        """Chain rule through the layers in reverse; the first affine's dx is computed only if asked. With `update`
        the weight gradients (and their L2 term) go into the update instead of `grads`."""
        dout = dscores
        for layer in reversed(self.layers[1:]):
            dout = layer.backward(dout, update=update) if isinstance(layer, Affine) else layer.backward(dout)
        self.dx = self.layers[0].backward(dout, need_dx=need_dx, update=update)
        if update is None and (self.l2 or self.l1):
            if self._reg_scratch is None:
                self._reg_scratch = np.empty(self.num_weights, self.dtype)
            add_regularization_grad(self.weights, self.grad[: self.num_weights], self.l2, self.l1, self._reg_scratch)

    def _dscores_buffer(self, n):
        if self._dscores is None or self._dscores.shape[0] < n:
            self._dscores = np.empty((n, self.sizes[-1]), self.dtype)
        return self._dscores[:n]

    def evaluate(self, chunks, tally):
        """Count an iterable of (X, y) chunks into `tally` (a nncli.nn.tally.Tally), so memory stays bounded;
        returns its metrics. A class-weighted loss is counted as its weighted sums, so the split's loss is the
        weighted mean over all its rows, not a mean of the chunks' means."""
        for xb, yb in chunks:
            scores = self.forward(xb)
            loss = self._loss_fn(scores, yb, self._dscores_buffer(len(yb)))[0]
            tally.add(loss, scores, yb, self._weighted_sums(scores, yb, loss))
        return tally.metrics()

    def _weighted_sums(self, scores, y, loss):
        """(Σ_i w_i L_i, Σ_i w_i) of a weighted loss on a chunk, per attribute for logistic; None when unweighted."""
        w = self.class_weights
        if w is None:
            return None
        if w.ndim == 1:  # softmax, svm: one weighted mean over the rows
            total = w[y].sum()
            return np.array([loss * total]), np.array([total])
        weights = np.where(y > 0.5, w[:, 1], w[:, 0])  # logistic: each attribute's own weighted mean
        means = [self._loss.weighted(scores[:, [k]], y[:, [k]], class_weights=w[[k]])[0] for k in range(len(w))]
        return np.asarray(means) * weights.sum(axis=0), weights.sum(axis=0)

    def predict_scores(self, X, chunk=4096):
        """Class scores (N, C) as a new array, computed in chunks (eval mode)."""
        out = np.empty((len(X), self.sizes[-1]), self.dtype)
        for start in range(0, len(X), chunk):
            out[start : start + chunk] = self.forward(self._batch(X, start, chunk))
        return out

    def predict_proba(self, X, chunk=4096):
        """Softmax class probabilities (N, C), float64 whatever the network's dtype (each row sums to 1)."""
        return softmax(self.predict_scores(X, chunk).astype(np.float64))

    def predict(self, X, chunk=4096):
        """Predicted class ids (N,)."""
        return self.predict_scores(X, chunk).argmax(axis=1)

    def _batch(self, X, start, chunk):
        return np.ascontiguousarray(X[start : start + chunk], dtype=self.dtype)

    def kinks(self, y=None):
        """Side of every non-differentiable point after the last forward (ReLU-family inputs, SVM margins, L1 weights)."""
        parts = [layer.kinks().ravel() for layer in self.layers if layer.kinked]
        if self._loss.kinks is not None and y is not None:
            parts.append(self._loss.kinks(self.scores, y).ravel())
        w_signs = l1_kinks(self.weights, self.l1)
        if w_signs is not None:
            parts.append(w_signs)
        return np.concatenate(parts) if parts else np.zeros(0, bool)

    def load_parameters(self, params, running=None):
        """Copy parameters (W1, b1, …, gamma1, beta1, …) and a batch norm's running averages into the buffers."""
        for name, value in params.items():
            self.params[name][...] = value
        for name, value in (running or {}).items():
            self.running[name][...] = value

    def layer_shapes(self):
        """[(name, shape, count)] for every parameter, in order W1, b1, W2, b2, …, then gamma1, beta1, …"""
        return [(name, p.shape, p.size) for name, p in self.params.items()]

    @property
    def num_params(self):
        return self.theta.size


def build_network(config, input_dim, num_classes, rng=0, dtype=None, class_weights=None):
    """The network a config's `model`, `loss`, `regularization` and `train.dtype` (unless `dtype`) describe;
    `class_weights` are its `loss_weights` resolved on the data (`nncli.nn.weights.class_weights`), else None."""
    m, reg = config.model, config.regularization
    return Network(
        input_dim,
        m.hidden,
        num_classes,
        activation=m.activation,
        activation_options={key: getattr(m, key) for key in hyperparameters(m.activation)},
        init=m.init,
        init_std=m.init_std,
        bias_init=m.bias_init,
        dropout=m.dropout,
        norm=m.norm,
        norm_momentum=m.norm_momentum,
        norm_eps=m.norm_eps,
        loss=config.loss,
        loss_options=loss_options(config),
        class_weights=class_weights,
        l2=reg.l2,
        l1=reg.l1,
        dtype=dtype or config.train.dtype,
        rng=rng,
    )
