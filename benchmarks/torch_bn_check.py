"""CNN7 with BatchNorm (Shi et al. 2021's ``cnn_7layer_bn``) in PyTorch against ntkflow, through the npz file.

Two steps, two interpreters (torch is no dependency of ntkflow, and ntkflow's venv has none):

    <python with torch>  benchmarks/torch_bn_check.py export /tmp/cnn7bn.npz [float32|float64]
    .venv/bin/python     benchmarks/torch_bn_check.py compare /tmp/cnn7bn.npz

``export`` builds the model (width 16, linear 64, CIFAR-shaped 3×32×32 input, float64 unless asked), runs a
few training-mode forwards on random batches so the running statistics are not PyTorch's
initial ones, and writes the model with the README's snippet; beside it, ``PATH.check.npz``
holds an input batch, the model's eval-mode logits, its train-mode logits and its buffers
after that training forward. ``compare`` loads the model with ``nets.load_torch`` and prints
the max abs differences: eval mode (the running statistics), train mode (``with_batch_stats``)
and the running-statistics update (``update_running_stats``). Without torch ``export`` prints a
message and exits 0.
"""

from __future__ import annotations

import json
import sys

import numpy as np

WIDTH, LINEAR, SHAPE, N = 16, 64, (3, 32, 32), 16


def _export(path, dtype="float64"):
    try:
        import torch
        import torch.nn as nn
    except ImportError:
        print("torch is not installed: skipping the export (run it with a Python that has torch)")
        return
    torch.manual_seed(0)
    torch.set_default_dtype(getattr(torch, dtype))
    w, c = WIDTH, SHAPE[0]
    model = nn.Sequential(
        nn.Conv2d(c, w, 3, stride=1, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
        nn.Conv2d(w, w, 3, stride=1, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
        nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),
        nn.Conv2d(2 * w, 2 * w, 3, stride=1, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),
        nn.Conv2d(2 * w, 2 * w, 3, stride=1, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(),
        nn.Flatten(),
        nn.Linear((SHAPE[1] // 2) * (SHAPE[2] // 2) * 2 * w, LINEAR), nn.BatchNorm1d(LINEAR), nn.ReLU(),
        nn.Linear(LINEAR, 10))
    with torch.no_grad():
        for m in model:  # non-trivial affine BN parameters
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
        model.train()
        for _ in range(3):
            model(torch.rand(N, *SHAPE) * 2 + 0.5)
        X = torch.rand(N, *SHAPE)
        model.eval()
        eval_logits = model(X).numpy()
        state = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}  # what the file holds
        model.train()
        train_logits = model(X).numpy()  # this forward also updates the buffers, once
        after = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    fields = {nn.Linear: ["in_features", "out_features"], nn.Flatten: ["start_dim", "end_dim"], nn.ReLU: [],
              nn.Conv2d: ["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                          "groups", "padding_mode"],
              nn.BatchNorm1d: ["num_features", "eps", "momentum", "affine", "track_running_stats"],
              nn.BatchNorm2d: ["num_features", "eps", "momentum", "affine", "track_running_stats"]}
    arch = [{"name": name, "type": type(m).__name__, **{f: getattr(m, f) for f in fields.get(type(m), [])},
             **({"bias": m.bias is not None} if hasattr(m, "bias") else {})} for name, m in model.named_children()]
    np.savez(path, __arch__=json.dumps(arch), __meta__=json.dumps({"input_shape": list(SHAPE)}), **state)
    np.savez(path + ".check.npz", X=X.numpy(), eval=eval_logits, train=train_logits,
             **{f"after.{k}": v for k, v in after.items()})
    print(f"wrote {path} and {path}.check.npz: torch {torch.__version__}, "
          f"{sum(p.numel() for p in model.parameters())} parameters")


def _compare(path):
    import jax

    jax.config.update("jax_enable_x64", True)
    import ntkflow.nets as N

    with np.load(path + ".check.npz", allow_pickle=False) as z:
        X, want_eval, want_train = z["X"], z["eval"], z["train"]
        after = {k[len("after."):]: z[k] for k in z.files if k.startswith("after.")}
    net, params = N.load_torch(path)
    d_eval = np.abs(np.asarray(net.apply(params, X)) - want_eval).max()
    d_train = np.abs(np.asarray(net.apply(N.with_batch_stats(net, params, X), X)) - want_train).max()
    upd = N.update_running_stats(net, params, X)
    d_stats = max(np.abs(np.asarray(upd[i][k]) - after[f"{name}.{k}"]).max()
                  for i, (name, layer) in enumerate(zip(net.names, net.layers)) if layer.kind == "batchnorm"
                  for k in ("running_mean", "running_var", "num_batches_tracked"))
    scale = np.abs(want_eval).max()
    print(f"CNN7-BN width {WIDTH}, linear {LINEAR}, input {SHAPE}, batch {len(X)}, {X.dtype} "
          f"(logits up to {scale:.3g}):")
    print(f"  eval-mode logits   max |ntkflow - torch| = {d_eval:.3g}")
    print(f"  train-mode logits  max |ntkflow - torch| = {d_train:.3g}")
    print(f"  running stats after one training forward: max |ntkflow - torch| = {d_stats:.3g}")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in ("export", "compare") or (
            len(sys.argv) == 4 and (sys.argv[1] != "export" or sys.argv[3] not in ("float32", "float64"))):
        sys.exit("usage: torch_bn_check.py export PATH.npz [float32|float64]  |  compare PATH.npz")
    (_export if sys.argv[1] == "export" else _compare)(*sys.argv[2:])
