"""PyTorch reference: the workload's model as `nn.Sequential` of Keras-equivalent modules, eager.

Built from the same resolved conv1dx layer specs as the Keras reference. Convolutions and pooling
run channels-first (PyTorch's native `(B, C, T)`); the builder inserts a transpose where a layer
needs the other layout, and `Flatten` flattens in Keras' `(T, C)` order. The GRU is written out
(`KerasGRU`) because `torch.nn.GRU` has neither `reset_after=False` nor recurrent dropout: Keras 3
equations, gate order [z, r, h], one dropout mask per gate sampled once per sequence (Keras'
implementation 1 when dropout is on), input projections of all steps computed before the Python loop
over steps.

Training is a plain eager loop: shuffled indices, `zero_grad`, forward, loss, `backward`, `step`
(`torch.compile` of the model when `compiled=True`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from experiments.throughput import peer_spec, synthetic

_ACTIVATIONS = {None: nn.Identity, "linear": nn.Identity, "relu": nn.ReLU, "tanh": nn.Tanh,
                "sigmoid": nn.Sigmoid, "elu": nn.ELU, "gelu": nn.GELU,
                "softmax": lambda: nn.Softmax(-1)}


def activation(name):
    if name not in _ACTIVATIONS:
        raise ValueError(f"No PyTorch reference for activation {name!r}; "
                         f"known: {list(_ACTIVATIONS)}.")
    return _ACTIVATIONS[name]()


class Transpose(nn.Module):
    """Swap the step and channel axes: `(B, T, C)` <-> `(B, C, T)`."""

    def forward(self, x):
        return x.transpose(1, 2)


class GlobalPool(nn.Module):
    """Max or mean over the step axis `dim`: `(B, T, C)` or `(B, C, T)` -> `(B, C)`."""

    def __init__(self, kind: str, dim: int):
        super().__init__()
        self.kind, self.dim = kind, dim

    def forward(self, x):
        return x.amax(self.dim) if self.kind == "max" else x.mean(self.dim)


class KerasGRU(nn.Module):
    """Keras 3 GRU over `x_BxTxC` -> `h_BxU` (or `y_BxTxU` with `return_sequences`)."""

    def __init__(self, channels: int, units: int, *, dropout=0.0, recurrent_dropout=0.0,
                 reset_after=True, return_sequences=False, use_bias=True):
        super().__init__()
        self.units, self.dropout, self.recurrent_dropout = units, dropout, recurrent_dropout
        self.reset_after, self.return_sequences = reset_after, return_sequences
        self.kernel = nn.Parameter(torch.empty(channels, 3 * units))
        self.recurrent_kernel = nn.Parameter(torch.empty(units, 3 * units))
        nn.init.xavier_uniform_(self.kernel)
        nn.init.orthogonal_(self.recurrent_kernel)
        shape = (2, 3 * units) if reset_after else (3 * units,)
        self.bias = nn.Parameter(torch.zeros(shape)) if use_bias else None

    def _masks(self, rate, batch, width, like):
        keep = 1.0 - rate
        return torch.bernoulli(torch.full((3, batch, width), keep, dtype=like.dtype)) / keep

    def forward(self, x_BxTxC):
        b, t, c = x_BxTxC.shape
        u = self.units
        kernel_z, kernel_r, kernel_h = self.kernel.split(u, dim=1)
        if self.training and self.dropout > 0:
            m = self._masks(self.dropout, b, c, x_BxTxC)[:, :, None, :]
            x_z, x_r, x_h = (x_BxTxC * m[0]) @ kernel_z, (x_BxTxC * m[1]) @ kernel_r, \
                (x_BxTxC * m[2]) @ kernel_h
        else:
            x_z, x_r, x_h = (x_BxTxC @ self.kernel).split(u, dim=-1)
        rec_bias = None
        if self.bias is not None:
            in_bias = self.bias[0] if self.reset_after else self.bias
            b_z, b_r, b_h = in_bias.split(u)
            x_z, x_r, x_h = x_z + b_z, x_r + b_r, x_h + b_h
            rec_bias = self.bias[1].split(u) if self.reset_after else None
        rec_z, rec_r, rec_h = self.recurrent_kernel.split(u, dim=1)
        masks = (self._masks(self.recurrent_dropout, b, u, x_BxTxC)
                 if self.training and self.recurrent_dropout > 0 else None)
        h = x_BxTxC.new_zeros(b, u)
        outputs = []
        for step in range(t):
            h_z, h_r, h_h = (h * masks[0], h * masks[1], h * masks[2]) if masks is not None \
                else (h, h, h)
            inner_z, inner_r = h_z @ rec_z, h_r @ rec_r
            if rec_bias is not None:
                inner_z, inner_r = inner_z + rec_bias[0], inner_r + rec_bias[1]
            z = torch.sigmoid(x_z[:, step] + inner_z)
            r = torch.sigmoid(x_r[:, step] + inner_r)
            if self.reset_after:
                inner_h = h_h @ rec_h + (rec_bias[2] if rec_bias is not None else 0.0)
                candidate = torch.tanh(x_h[:, step] + r * inner_h)
            else:
                candidate = torch.tanh(x_h[:, step] + (r * h_h) @ rec_h)
            h = z * h + (1.0 - z) * candidate
            if self.return_sequences:
                outputs.append(h)
        return torch.stack(outputs, dim=1) if self.return_sequences else h


def _conv_steps(steps, kernel, stride, dilation, padding):
    if padding == "same":
        return math.ceil(steps / stride)
    span = dilation * (kernel - 1) + 1
    return (steps - span) // stride + 1 if padding == "valid" else (steps - 1) // stride + 1


def build_model(workload: dict) -> nn.Sequential:
    """The workload's model; inputs `(B, T, C)` float or `(B, T)` ids, outputs as Keras'."""
    modules, shape, layout = [], tuple(workload["input_shape"]), "last"

    def to(wanted):
        nonlocal layout
        if len(shape) == 2 and layout != wanted:
            modules.append(Transpose())
            layout = wanted

    for spec in workload["layers"]:
        kind, a = peer_spec.layer_kind(spec)
        if a.get("data_format", "channels_last") != "channels_last":
            raise ValueError(f"{kind}: the PyTorch reference supports data_format='channels_last' "
                             "only.")
        if kind == "Embedding":
            modules.append(nn.Embedding(a["input_dim"], a["output_dim"]))
            shape = (shape[0], a["output_dim"])
        elif kind == "Conv1D":
            to("first")
            k, s = a["kernel_size"], a.get("strides", 1)
            d, padding = a.get("dilation_rate", 1), a.get("padding", "valid")
            if padding == "causal":
                modules.append(nn.ConstantPad1d((d * (k - 1), 0), 0.0))
            modules.append(nn.Conv1d(shape[1], a["filters"], k, stride=s, dilation=d,
                                     padding="same" if padding == "same" else 0,
                                     groups=a.get("groups", 1), bias=a.get("use_bias", True)))
            modules.append(activation(a.get("activation")))
            shape = (_conv_steps(shape[0], k, s, d, padding), a["filters"])
        elif kind in ("MaxPooling1D", "AveragePooling1D"):
            if a.get("padding", "valid") != "valid":
                raise ValueError(f"{kind}: the PyTorch reference supports padding='valid' only.")
            to("first")
            pool, stride = a.get("pool_size", 2), a.get("strides") or a.get("pool_size", 2)
            pool_class = nn.MaxPool1d if kind == "MaxPooling1D" else nn.AvgPool1d
            modules.append(pool_class(pool, stride))
            shape = ((shape[0] - pool) // stride + 1, shape[1])
        elif kind in ("GlobalMaxPooling1D", "GlobalAveragePooling1D"):
            modules.append(GlobalPool("max" if "Max" in kind else "mean",
                                      2 if layout == "first" else 1))
            shape = (shape[1],)
        elif kind == "Dropout":
            modules.append(nn.Dropout(a["rate"]))
        elif kind == "Flatten":
            to("last")
            modules.append(nn.Flatten())
            shape = (math.prod(shape),)
        elif kind == "Dense":
            to("last")
            modules.append(nn.Linear(shape[-1], a["units"], bias=a.get("use_bias", True)))
            modules.append(activation(a.get("activation")))
            shape = (*shape[:-1], a["units"])
        elif kind == "GRU":
            to("last")
            modules.append(KerasGRU(shape[-1], a["units"], dropout=a.get("dropout", 0.0),
                                    recurrent_dropout=a.get("recurrent_dropout", 0.0),
                                    reset_after=a.get("reset_after", True),
                                    return_sequences=a.get("return_sequences", False),
                                    use_bias=a.get("use_bias", True)))
            shape = (shape[0], a["units"]) if a.get("return_sequences") else (a["units"],)
        elif kind == "Activation":
            modules.append(activation(a["activation"]))
        else:
            raise ValueError(f"No PyTorch reference for layer {kind}; add it to torch_models.py.")
    to("last")
    return nn.Sequential(*modules)


def loss_function(name: str):
    """`loss(outputs, targets) -> mean loss` for the reference loss `name` (outputs are logits)."""
    if name == "binary_crossentropy":
        bce = nn.BCEWithLogitsLoss()
        return lambda out, y: bce(out.reshape(-1), y.reshape(-1).to(out.dtype))
    if name == "sparse_categorical_crossentropy":
        ce = nn.CrossEntropyLoss()
        return lambda out, y: ce(out, y.long())
    if name in ("mean_absolute_error", "mean_squared_error"):
        base = nn.L1Loss() if name == "mean_absolute_error" else nn.MSELoss()
        return lambda out, y: base(out.reshape(y.shape), y)
    raise ValueError(f"No PyTorch reference loss {name!r}.")


def optimizer(name: str, args: dict, params):
    lr = args["learning_rate"]
    if name in ("adam", "adamw"):
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
        extra = {"weight_decay": args["weight_decay"]} if "weight_decay" in args else {}
        return cls(params, lr=lr, betas=(args.get("beta_1", 0.9), args.get("beta_2", 0.999)),
                   eps=args.get("epsilon", 1e-7), **extra)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=args.get("rho", 0.9),
                                   eps=args.get("epsilon", 1e-7),
                                   momentum=args.get("momentum") or 0.0)
    return torch.optim.SGD(params, lr=lr, momentum=args.get("momentum", 0.0),
                           nesterov=args.get("nesterov", False))


class TorchRunner:
    """`run(repeats)` trains `repeats` epochs of `steps` batches eagerly; returns examples seen."""

    def __init__(self, workload: dict, *, compiled: bool = False):
        torch.manual_seed(workload["seed"])
        self.model = build_model(workload).train()
        self.step_model = torch.compile(self.model) if compiled else self.model
        self.optimizer = optimizer(*peer_spec.optimizer_spec(workload["optimizer"]),
                                   self.model.parameters())
        self.loss = loss_function(peer_spec.loss_kind(workload["loss"]))
        x, y = synthetic.peer_arrays(workload, seed=workload["seed"])
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.batch_size, self.steps = int(workload["batch_size"]), int(workload["steps"])
        self.task = workload["task"]

    def run(self, repeats: int) -> int:
        for _ in range(repeats):
            order = torch.randperm(len(self.x))
            for step in range(self.steps):
                idx = order[step * self.batch_size:(step + 1) * self.batch_size]
                self.optimizer.zero_grad(set_to_none=True)
                outputs = self.step_model(self.x[idx])
                loss = self.loss(outputs, self.y[idx])
                loss.backward()
                self.optimizer.step()
                self._metric(outputs, self.y[idx])
        return repeats * self.steps * self.batch_size

    @torch.no_grad()
    def _metric(self, outputs, y):
        """The metric Keras and conv1dx also compute each step: accuracy or MAE (not synced)."""
        if self.task != "classification":
            self.metric_sum = (outputs.reshape(y.shape) - y).abs().sum()
        elif outputs.shape[-1] == 1:
            self.metric_sum = ((outputs.reshape(-1) > 0) == (y.reshape(-1) > 0)).sum()
        else:
            self.metric_sum = (outputs.argmax(-1) == y).sum()

    def info(self) -> dict:
        threads = {"intra_op": torch.get_num_threads(), "inter_op": torch.get_num_interop_threads()}
        return {"version": torch.__version__, "threads": threads}
