"""The peers the throughput benchmark times nncli against, and the GEMM-only replays (the floor).

Each contender has `run_epoch()`: one pass over the data in minibatches (or, for the forward replay, in chunks).
"""

import warnings

import numpy as np

D, C = 784, 10
LR, MOMENTUM, L2 = 0.01, 0.9, 1e-4


def make_data(n, seed=0):
    """X (n, 784) float32 standard normal, y (n,) from a random linear teacher, so the task is learnable."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D), dtype=np.float32)
    teacher = rng.standard_normal((D, C), dtype=np.float32)
    return X, (X @ teacher).argmax(axis=1).astype(np.int64)


def flops_per_sample(hidden):
    """Multiply-adds ×2 of forward, dW and dx (no dx for the first layer) per training sample."""
    sizes = [D, *hidden, C]
    pairs = list(zip(sizes[:-1], sizes[1:]))
    return sum(2 * fi * fo * (2 if i == 0 else 3) for i, (fi, fo) in enumerate(pairs))


class TorchContender:
    def __init__(self, X, y, hidden, batch):
        import torch

        torch.manual_seed(0)
        self.torch, self.batch = torch, batch
        sizes = [D, *hidden, C]
        layers = []
        for i, (fi, fo) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(torch.nn.Linear(fi, fo))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)
        weights = [p for n, p in self.model.named_parameters() if n.endswith("weight")]
        biases = [p for n, p in self.model.named_parameters() if n.endswith("bias")]
        self.opt = torch.optim.SGD(
            [{"params": weights, "weight_decay": L2}, {"params": biases, "weight_decay": 0.0}], lr=LR, momentum=MOMENTUM
        )
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)
        self.gen = torch.Generator().manual_seed(0)

    def run_epoch(self):
        torch, n = self.torch, len(self.y)
        order = torch.randperm(n, generator=self.gen)
        total = 0.0
        for start in range(0, n, self.batch):
            idx = order[start : start + self.batch]
            xb, yb = self.X.index_select(0, idx), self.y.index_select(0, idx)
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.model(xb), yb)
            loss.backward()
            self.opt.step()
            total += loss.item()


class SklearnContender:
    def __init__(self, X, y, hidden, batch):
        from sklearn.neural_network import MLPClassifier

        self.X, self.y, self.classes = X, y, np.arange(C)
        self.model = MLPClassifier(
            hidden_layer_sizes=tuple(hidden),
            solver="sgd",
            learning_rate_init=LR,
            momentum=MOMENTUM,
            nesterovs_momentum=False,
            alpha=L2,
            batch_size=batch,
            shuffle=True,
            random_state=0,
        )

    def run_epoch(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.model.partial_fit(self.X, self.y, classes=self.classes)


class StraightforwardNumpy:
    """The textbook float64 loop: every intermediate is a new array, one Python update per parameter."""

    def __init__(self, X, y, hidden, batch):
        rng = np.random.default_rng(0)
        self.X, self.y, self.batch, self.rng = X.astype(np.float64), y, batch, rng
        sizes = [D, *hidden, C]
        self.W = [rng.standard_normal((fi, fo)) * np.sqrt(2 / fi) for fi, fo in zip(sizes[:-1], sizes[1:])]
        self.b = [np.zeros(fo) for fo in sizes[1:]]
        self.vW = [np.zeros_like(w) for w in self.W]
        self.vb = [np.zeros_like(b) for b in self.b]

    def run_epoch(self):
        n = len(self.y)
        order = self.rng.permutation(n)
        for start in range(0, n, self.batch):
            idx = order[start : start + self.batch]
            x, y = self.X[idx], self.y[idx]
            acts = [x]
            for i, (w, b) in enumerate(zip(self.W, self.b)):
                z = acts[-1] @ w + b
                acts.append(np.maximum(0, z) if i < len(self.W) - 1 else z)
            scores = acts[-1]
            p = np.exp(scores - scores.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            _ = -np.mean(np.log(p[np.arange(len(y)), y])) + 0.5 * L2 * sum(np.sum(w * w) for w in self.W)
            d = p
            d[np.arange(len(y)), y] -= 1
            d /= len(y)
            for i in reversed(range(len(self.W))):
                dW = acts[i].T @ d + L2 * self.W[i]
                db = d.sum(axis=0)
                if i > 0:
                    d = (d @ self.W[i].T) * (acts[i] > 0)
                self.vW[i] = MOMENTUM * self.vW[i] - LR * dW
                self.vb[i] = MOMENTUM * self.vb[i] - LR * db
                self.W[i] = self.W[i] + self.vW[i]
                self.b[i] = self.b[i] + self.vb[i]


class GemmReplay:
    """Only the matrix products of a training step: forward x·W, backward xᵀ·dout and dout·Wᵀ (not for layer 1)."""

    def __init__(self, n, hidden, batch, dtype=np.float32):
        rng = np.random.default_rng(0)
        sizes = [D, *hidden, C]
        self.n, self.batch = n, batch
        self.W = [rng.standard_normal((fi, fo)).astype(dtype) for fi, fo in zip(sizes[:-1], sizes[1:])]
        self.dW = [np.empty_like(w) for w in self.W]
        self.acts = [rng.standard_normal((batch, s)).astype(dtype) for s in sizes]
        self.douts = [rng.standard_normal((batch, s)).astype(dtype) for s in sizes]

    def run_epoch(self):
        W, dW, acts, douts, L = self.W, self.dW, self.acts, self.douts, len(self.W)
        for start in range(0, self.n, self.batch):
            rows = min(self.batch, self.n - start)
            for i in range(L):
                np.matmul(acts[i][:rows], W[i], out=acts[i + 1][:rows])
            for i in reversed(range(L)):
                np.matmul(acts[i][:rows].T, douts[i + 1][:rows], out=dW[i])
                if i > 0:
                    np.matmul(douts[i + 1][:rows], W[i].T, out=douts[i][:rows])


class JaxContender:
    """A JAX training step compiled with `jax.jit`: the batch gathered by a jitted take, `jax.value_and_grad` of
    softmax cross-entropy + ½·l2·Σw² (weights only), and the momentum update, all in one jitted function, so XLA
    fuses every elementwise operation and the update. Parameters and velocities are donated (updated in place)."""

    def __init__(self, X, y, hidden, batch):
        import jax
        import jax.numpy as jnp

        self.jax, self.batch, self.n = jax, batch, len(y)
        self.rng = np.random.default_rng(0)
        sizes = [D, *hidden, C]
        self.params = [
            (
                jnp.asarray(self.rng.standard_normal((fi, fo), dtype=np.float32) * np.float32(np.sqrt(2 / fi))),
                jnp.zeros(fo, jnp.float32),
            )
            for fi, fo in zip(sizes[:-1], sizes[1:])
        ]
        self.vel = jax.tree_util.tree_map(jnp.zeros_like, self.params)
        self.X, self.y = jnp.asarray(X), jnp.asarray(y.astype(np.int32))

        def loss_fn(params, xb, yb):
            h = xb
            for w, b in params[:-1]:
                h = jax.nn.relu(h @ w + b)
            scores = h @ params[-1][0] + params[-1][1]
            logp = jax.nn.log_softmax(scores)
            data = -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))
            return data + 0.5 * L2 * sum(jnp.sum(w * w) for w, _ in params)

        def step(params, vel, X, y, idx):
            xb, yb = jnp.take(X, idx, axis=0), jnp.take(y, idx, axis=0)
            loss, grads = jax.value_and_grad(loss_fn)(params, xb, yb)
            vel = jax.tree_util.tree_map(lambda v, g: MOMENTUM * v - LR * g, vel, grads)
            params = jax.tree_util.tree_map(lambda p, v: p + v, params, vel)
            return params, vel, loss

        self.step = jax.jit(step, donate_argnums=(0, 1))

    def run_epoch(self):
        order = self.rng.permutation(self.n).astype(np.int32)
        losses = []
        for start in range(0, self.n, self.batch):
            self.params, self.vel, loss = self.step(
                self.params, self.vel, self.X, self.y, order[start : start + self.batch]
            )
            losses.append(loss)
        self.jax.block_until_ready((self.params, losses))


class ForwardReplay:
    """Only the forward matrix products of evaluation, `chunk` rows at a time, over the rows of X (a memmap too):
    each chunk copied into a contiguous float32 buffer, then x·W1 … x·WL into `out=` buffers (no bias, no ReLU)."""

    def __init__(self, X, sizes, chunk=4096, dtype=np.float32):
        rng = np.random.default_rng(0)
        self.X, self.chunk = X, chunk
        self.W = [rng.standard_normal((fi, fo)).astype(dtype) for fi, fo in zip(sizes[:-1], sizes[1:])]
        self.xb = np.empty((chunk, sizes[0]), dtype)
        self.acts = [np.empty((chunk, s), dtype) for s in sizes[1:]]

    def run_epoch(self):
        from nncli.data.arrays import release_pages

        for start in range(0, len(self.X), self.chunk):
            block = self.X[start : start + self.chunk]
            rows = len(block)
            x = self.xb[:rows]
            x[...] = block
            for w, out in zip(self.W, self.acts):
                x = np.matmul(x, w, out=out[:rows])
            release_pages(self.X)  # as eval does: the pages read leave the process's resident set
