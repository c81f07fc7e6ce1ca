"""ntkflow.nets: layers, zoo shapes, init schemes, PyTorch npz interchange."""

import json
import math

import jax
import numpy as np
import pytest

import ntkflow as nf
import ntkflow.nets as N
from conftest import make_problem
from net_reference import torch_forward, write_torch_npz

TINY_CNN = [  # (name, type, fields) as torch lists an nn.Sequential's children
    ("0", "Conv2d", dict(in_channels=2, out_channels=3, kernel_size=(3, 2), stride=(2, 1), padding=(1, 0),
                         dilation=(1, 1), groups=1, padding_mode="zeros", bias=True)),
    ("1", "ReLU", dict(inplace=False)),
    ("2", "Conv2d", dict(in_channels=3, out_channels=2, kernel_size=(2, 2), stride=(1, 1), padding=(0, 1),
                         dilation=(2, 1), groups=1, padding_mode="zeros", bias=False)),
    ("3", "ReLU", dict(inplace=False)),
    ("4", "Flatten", dict(start_dim=1, end_dim=-1)),
    ("5", "Linear", dict(in_features=20, out_features=5, bias=True)),
    ("6", "ReLU", dict(inplace=False)),
    ("fc", "Linear", dict(in_features=5, out_features=4, bias=True)),
]
TINY_SHAPES = {"0.weight": (3, 2, 3, 2), "0.bias": (3,), "2.weight": (2, 3, 2, 2), "5.weight": (5, 20),
               "5.bias": (5,), "fc.weight": (4, 5), "fc.bias": (4,)}
INPUT = (2, 7, 5)  # conv0 → (3, 4, 4); conv2 (dilation 2 rows, pad 1 cols) → (2, 2, 5); flatten → 20


def tiny_arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in TINY_SHAPES.items()}


def test_npz_from_snippet_equivalent_writer_gives_pytorch_logits(tmp_path):
    arrays = tiny_arrays()
    arch = write_torch_npz(tmp_path / "m.npz", TINY_CNN, arrays, INPUT)
    net, params = N.load_torch(tmp_path / "m.npz")
    X = np.random.default_rng(1).uniform(0, 1, (4, *INPUT)).astype(np.float32)
    want = torch_forward(arch, arrays, X)
    assert net.input_shape == INPUT and net.names[-1] == "fc"
    np.testing.assert_allclose(np.asarray(net.apply(params, X)), want, rtol=1e-5, atol=1e-5)


def test_save_load_round_trip_keeps_logits_and_folds_scales(tmp_path):
    with jax.enable_x64(True):
        models = [(net, net.init(k)) for k, net in enumerate(
            [N.dm_small((1, 12, 12), classes=3), N.mlp((6, 4), parameterization="ntk", input_shape=(2, 3))])]
        for k, (net, params) in enumerate(models + [N.two_layer(*make_problem(m=9, d=6)[:2])]):
            X = np.random.default_rng(k).uniform(0, 1, (3, *net.input_shape))
            N.save_torch(tmp_path / f"{k}.npz", net, params)
            net2, params2 = N.load_torch(tmp_path / f"{k}.npz")
            assert all(layer.scale == 1.0 for layer in net2.layers if layer.kind == "affine")
            np.testing.assert_allclose(net2.apply(params2, X), net.apply(params, X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("change, match", [
    (lambda a: a.__setitem__(1, ("1", "MaxPool2d", {"kernel_size": 2})), "'1'.*MaxPool2d"),
    (lambda a: a[0][2].__setitem__("groups", 3), "groups"),
    (lambda a: a[0][2].__setitem__("padding_mode", "reflect"), "padding_mode"),
    (lambda a: a[0][2].__setitem__("padding", "same"), "string padding"),
    (lambda a: a[4][2].__setitem__("start_dim", 2), "Flatten"),
    (lambda a: a[5][2].__setitem__("in_features", 21), "params|expects"),
])
def test_unsupported_or_inconsistent_files_are_one_line_errors(tmp_path, change, match):
    arch = [(n, t, dict(f)) for n, t, f in TINY_CNN]
    change(arch)
    write_torch_npz(tmp_path / "m.npz", arch, tiny_arrays(), INPUT)
    with pytest.raises(ValueError, match=match) as e:
        N.load_torch(tmp_path / "m.npz")
    assert "\n" not in str(e.value)


def test_missing_extra_and_unreadable_entries(tmp_path):
    arrays = tiny_arrays()
    write_torch_npz(tmp_path / "a.npz", TINY_CNN, {k: v for k, v in arrays.items() if k != "5.bias"}, INPUT)
    with pytest.raises(ValueError, match="missing.*5.bias"):
        N.load_torch(tmp_path / "a.npz")
    write_torch_npz(tmp_path / "b.npz", TINY_CNN, {**arrays, "bn.running_mean": np.zeros(3)}, INPUT)
    with pytest.raises(ValueError, match="running_mean"):
        N.load_torch(tmp_path / "b.npz")
    (tmp_path / "c.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot read"):
        N.load_torch(tmp_path / "c.npz")
    np.savez(tmp_path / "d.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="__arch__"):
        N.load_torch(tmp_path / "d.npz")


def test_two_layer_net_is_eq1():
    W, a, X, y = make_problem()
    with jax.enable_x64(True):
        net, params = N.two_layer(W, a)
        np.testing.assert_allclose(y * net.apply(params, X), nf.margin(W, a, X, y), rtol=1e-13, atol=1e-13)
    W2, a2 = N.two_layer_weights(net, params)
    np.testing.assert_array_equal(W2, W)
    np.testing.assert_array_equal(a2, a)
    assert jax.tree_util.tree_leaves(params)[0].shape == W.shape and len(jax.tree_util.tree_leaves(params)) == 1
    with pytest.raises(ValueError, match="a:"):
        N.two_layer(W, a * 0.5)
    with pytest.raises(ValueError, match="two-layer"):
        N.two_layer_weights(N.mlp((3, 1)), None)


def test_ntk_parameterization_scales_by_fan_in():
    net = N.mlp((7, 3), parameterization="ntk")
    with jax.enable_x64(True):
        p = net.init(0, (5,), init="ntk")
        X = np.random.default_rng(0).uniform(size=(4, 5))
        W1, W2 = np.asarray(p[1]["weight"]), np.asarray(p[3]["weight"])
        want = (np.maximum(X @ W1.T / math.sqrt(5), 0) @ W2.T) / math.sqrt(7)  # biases are 0 under "ntk"
        np.testing.assert_allclose(net.apply(p, X), want, rtol=1e-12)


def test_zoo_shapes_match_the_tables():
    assert N.dm_small().shapes((1, 28, 28))[1:5] == [(16, 13, 13), (16, 13, 13), (32, 10, 10), (32, 10, 10)]
    assert N.dm_medium().shapes((1, 28, 28))[8] == (64, 4, 4)
    assert N.dm_large().shapes((1, 28, 28))[10] == (128, 14, 14)
    # thesis Table 3.1: CNN-7's fan-ins on CIFAR are 27, 576, 1152 and 32768
    net = N.cnn7()
    shapes = net.shapes((3, 32, 32))
    fans = {layer.fan_in(s) for layer, s in zip(net.layers, shapes) if layer.kind == "affine"}
    assert {27, 576, 1152, 32768} <= fans
    for name, (convs, fc) in N.FAN2021_TABLE_F.items():
        layers = N.fan2021(name).layers
        got = [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in layers if isinstance(c, N.Conv2d)]
        assert got == convs and [d.out_features for d in layers if isinstance(d, N.Dense)] == [fc, 10]


def test_init_schemes_have_their_stated_distributions():
    net = N.mlp((400, 2))
    fan = 300
    with jax.enable_x64(True):
        t, k, b = (net.init(3, (fan,), init=s) for s in ("torch", "ntk", "ibp"))
        Wt, Wk, Wb = (np.asarray(p[1]["weight"]) for p in (t, k, b))
        se = 4 / math.sqrt(Wt.size)  # 4 standard errors (relative)
        assert np.abs(Wt).max() <= 1 / math.sqrt(fan) and np.abs(np.asarray(t[1]["bias"])).max() <= 1 / math.sqrt(fan)
        assert abs(Wt.var() * 3 * fan - 1) < 4 * se * math.sqrt(0.8)  # U(±1/√fan): var 1/(3 fan)
        assert abs(Wk.var() - 1) < 4 * se * math.sqrt(2) and np.all(np.asarray(k[1]["bias"]) == 0)
        # IBP init: the difference gain (fan/2)·E|W| of thesis Eq. 3.4 is 1
        assert abs(fan / 2 * np.abs(Wb).mean() - 1) < 4 * se
        np.testing.assert_array_equal(net.init(3, (fan,), init="ibp")[1]["weight"], Wb)
    with pytest.raises(ValueError, match="init"):
        net.init(0, (3,), init="xavier")


def test_structural_errors_are_one_line_value_errors():
    with pytest.raises(ValueError, match="last layer"):
        N.Net((N.Dense(3), N.ReLU()))
    with pytest.raises(ValueError, match="Flatten"):
        N.Net((N.Dense(3),)).init(0, (1, 4, 4))
    with pytest.raises(ValueError, match="scale"):
        N.Dense(3, scale=-1.0)
    with pytest.raises(ValueError, match="input_shape"):
        N.mlp((3,)).init(0)
    net = N.mlp((4, 2))
    params = net.init(0, (3,))
    with pytest.raises(ValueError, match="params: layer 1"):
        net.check_params(params, (5,))
    with pytest.raises(ValueError, match="model"):
        N.fan2021("K")


def test_leading_batch_dimension_of_one_is_accepted(tmp_path):
    """The shape a PyTorch user traces with ([1, *per-sample]) means the per-sample shape."""
    write_torch_npz(tmp_path / "m.npz", TINY_CNN, tiny_arrays(), (1, *INPUT))
    net, _ = N.load_torch(tmp_path / "m.npz")
    assert net.input_shape == INPUT
    mlp = [("0", "Linear", dict(in_features=4, out_features=3, bias=True)), ("1", "ReLU", {}),
           ("2", "Linear", dict(in_features=3, out_features=2, bias=True))]
    rng = np.random.default_rng(0)
    arrays = {"0.weight": rng.normal(size=(3, 4)), "0.bias": np.zeros(3), "2.weight": rng.normal(size=(2, 3)),
              "2.bias": np.zeros(2)}
    write_torch_npz(tmp_path / "l.npz", mlp, arrays, (1, 4))
    assert N.load_torch(tmp_path / "l.npz")[0].input_shape == (4,)
    write_torch_npz(tmp_path / "bad.npz", mlp, arrays, (2, 4))  # not a batch of one: the message says which shape
    with pytest.raises(ValueError, match=r"bad.npz: .*__meta__ input_shape is \[2, 4\]: the shape of ONE sample"):
        N.load_torch(tmp_path / "bad.npz")


def test_malformed_entries_are_one_line_errors_naming_file_and_field(tmp_path):
    arrays = tiny_arrays()
    arch = json.dumps([{"name": n, "type": t, **{k: list(v) if isinstance(v, tuple) else v for k, v in f.items()}}
                       for n, t, f in TINY_CNN])
    cases = {
        "s.npz": dict(__arch__=arch, __meta__=json.dumps({"input_shape": list(INPUT)}),
                      **{**arrays, "0.weight": np.array(["a", "b"])}),
        "m.npz": dict(__arch__=arch, __meta__=json.dumps([1, 2]), **arrays),
        "n.npz": dict(__arch__=arch, __meta__="{}", **{**arrays, "0.bias": np.full(3, np.nan, np.float32)}),
        "f.npz": dict(__arch__=arch.replace('"out_features": 5', '"out_features": "abc"'), __meta__="{}", **arrays),
    }
    want = {"s.npz": r"'0.weight' has dtype <U1", "m.npz": "__meta__ must be a JSON object",
            "n.npz": "'0.bias' has non-finite", "f.npz": r"layer '5' \(Linear\) has a field of the wrong type"}
    for name, content in cases.items():
        np.savez(tmp_path / name, **content)
        with pytest.raises(ValueError, match=f"{name}: .*{want[name]}") as e:
            N.load_torch(tmp_path / name)
        assert "\n" not in str(e.value)
