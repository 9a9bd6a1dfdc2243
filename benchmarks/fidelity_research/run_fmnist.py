"""Fashion-MNIST main-job network: plain vs OPT recipes, pure JAX.

python benchmarks/fidelity_research/run_fmnist.py OUT.jsonl [--only SUBSTR,...] [--seeds 0,1,2]
EPOCHS=2 (env) epochs; SGD lr 0.1, momentum 0.9 (Keras form), batch 128,
train on the first 50k, validate on the last 10k of train, test on test.

Network (examples/fashion_mnist.py): OPTConv2D(16,3,relu) -> maxpool 2 ->
OPTConv2D(32,3,relu) -> maxpool 4 -> flatten -> OPTDense(128,relu) -> Dense(10).
Plain: the same with Glorot-uniform kernels (Keras defaults), zero biases.
"""
import json
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import optlab  # noqa: E402

jax.config.update("jax_default_matmul_precision", "highest")
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "fmnist.npz")
EPOCHS = int(os.environ.get("EPOCHS", 2))
BATCH = 128
LAYERS = {"c1": (9, 16, (3, 3, 1, 16)), "c2": (144, 32, (3, 3, 16, 32)), "d1": (128, 128, None)}


def load():
    z = np.load(DATA)
    x = z["x_train"].astype(np.float32)[..., None] / 255.0
    xt = z["x_test"].astype(np.float32)[..., None] / 255.0
    y, yt = z["y_train"].astype(np.int32), z["y_test"].astype(np.int32)
    if os.environ.get("SMOKE"):
        x = np.concatenate([x[:1280], x[50000:51000]]); y = np.concatenate([y[:1280], y[50000:51000]])
        xt, yt = xt[:1000], yt[:1000]
        return dict(xtr=jnp.asarray(x[:1280]), ytr=jnp.asarray(y[:1280]), xva=jnp.asarray(x[1280:]),
                    yva=jnp.asarray(y[1280:]), xte=jnp.asarray(xt), yte=jnp.asarray(yt))
    return dict(xtr=jnp.asarray(x[:50000]), ytr=jnp.asarray(y[:50000]),
                xva=jnp.asarray(x[50000:]), yva=jnp.asarray(y[50000:]),
                xte=jnp.asarray(xt), yte=jnp.asarray(yt))


def glorot(key, shape, fan_in, fan_out):
    lim = np.sqrt(6.0 / (fan_in + fan_out))
    return jax.random.uniform(key, shape, minval=-lim, maxval=lim)


def build(cfg, seed):
    k = jax.random.split(jax.random.PRNGKey(seed), 10)
    params, frozen, roles = {}, {}, {}
    for i, (name, (d, n, shape)) in enumerate(LAYERS.items()):
        if cfg["map"] == "plain":
            fi, fo = (d, n) if shape is None else (d, 9 * n)
            params[name] = {"W": glorot(k[2 * i], (d, n), fi, fo), "b": jnp.zeros(n)}
            frozen[name] = {}
            roles[name] = {"W": "main", "b": "main"}
        else:
            p = optlab.init_rotation(cfg["map"], cfg.get("init", "official"), d, k[2 * i])
            if cfg.get("init") == "scaled":
                p = p / np.sqrt(d)
            g = jnp.zeros((n,)) if cfg.get("gain") == "neuron" else jnp.zeros(())
            params[name] = {"P": p, "g": g, "b": jnp.zeros(n)}
            frozen[name] = {"V": jax.random.normal(k[2 * i + 1], (d, n)) * np.sqrt(2.0 / d)}
            roles[name] = {"P": "rot", "g": "gain", "b": "main"}
    params["out"] = {"W": glorot(k[9], (128, 10), 128, 10), "b": jnp.zeros(10)}
    frozen["out"] = {}
    roles["out"] = {"W": "main", "b": "main"}
    return params, frozen, roles


def make_run(map_name, roles, data):
    mapn = "gs" if map_name == "plain" else map_name
    steps = data["xtr"].shape[0] // BATCH

    def kern(params, frozen, name):
        return optlab.kernel(params[name], frozen[name], mapn)

    def conv(x, w, b, shape):
        y = jax.lax.conv_general_dilated(x, w.reshape(shape), (1, 1), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jax.nn.relu(y + b)

    def pool(x, s):
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, s, s, 1), (1, s, s, 1), "VALID")

    def forward(params, frozen, x):
        h = pool(conv(x, kern(params, frozen, "c1"), params["c1"]["b"], LAYERS["c1"][2]), 2)
        h = pool(conv(h, kern(params, frozen, "c2"), params["c2"]["b"], LAYERS["c2"][2]), 4)
        h = h.reshape(h.shape[0], -1)
        h = jax.nn.relu(h @ kern(params, frozen, "d1") + params["d1"]["b"])
        return h @ params["out"]["W"] + params["out"]["b"]

    def xent(logits, y):
        lp = jax.nn.log_softmax(logits)
        return -jnp.mean(jnp.take_along_axis(lp, y[:, None], 1))

    def step(carry, idx):
        params, frozen, state, hp, t = carry
        x, y = data["xtr"][idx], data["ytr"][idx]
        loss, grads = jax.value_and_grad(lambda p: xent(forward(p, frozen, x), y))(params)
        params, state = optlab.apply_updates(params, grads, state, roles, hp, "sgdm", mapn)
        if map_name not in ("plain", "ogd"):
            do = (hp["merge_every"] > 0) & ((t + 1) % jnp.maximum(hp["merge_every"], 1) == 0)
            params, frozen, state = jax.lax.cond(
                do, lambda a: optlab.merge(*a, mapn), lambda a: a, (params, frozen, state))
        return (params, frozen, state, hp, t + 1), loss

    def evaluate(params, frozen, x, y):
        logits = forward(params, frozen, x)
        return jnp.mean(jnp.argmax(logits, 1) == y), xent(logits, y)

    @jax.jit
    def run_epoch(params, frozen, state, hp, t, key):
        perm = jax.random.permutation(key, data["xtr"].shape[0])[: steps * BATCH].reshape(steps, BATCH)
        (params, frozen, state, hp, t), losses = jax.lax.scan(step, (params, frozen, state, hp, t), perm)
        va, vl = evaluate(params, frozen, data["xva"], data["yva"])
        te, _ = evaluate(params, frozen, data["xte"], data["yte"])
        orth = [optlab.orthogonality_error(optlab.PHI[mapn](p["P"]) if mapn != "ogd" else p["P"])
                for p in params.values() if "P" in p]
        return params, frozen, state, t, jnp.stack([jnp.mean(losses), va, vl, te]), (
            jnp.stack(orth) if orth else jnp.zeros(1))

    return run_epoch


PRIORITY = {"official", "scaled", "id", "id_ngain", "scaled_ngain", "lr0.1", "lr0.02"}
HP0 = dict(lr=0.1, lr_rot=0.1, rot_kind=2, wd=0.0, wdP=0.0, gain_on=0.0, ogd_norm=0, merge_every=0)


def grid():
    C = [dict(name="plain", map="plain")]
    R = [
        ("official", {}, {}),
        ("scaled", dict(init="scaled"), {}),
        ("id", dict(init="identity"), {}),
        ("id_gain", dict(init="identity"), dict(gain_on=1.0)),
        ("id_ngain", dict(init="identity", gain="neuron"), dict(gain_on=1.0)),
        ("scaled_ngain", dict(init="scaled", gain="neuron"), dict(gain_on=1.0)),
        ("id_merge50", dict(init="identity"), dict(merge_every=50)),
        ("id_sadam0.01", dict(init="identity"), dict(rot_kind=1, lr_rot=0.01)),
        ("id_lr0.3", dict(init="identity"), dict(lr_rot=0.3)),
    ]
    core = {"official", "id", "scaled", "id_ngain", "scaled_ngain"}
    for m in ["gs", "cp", "hr", "ls", "ns"]:
        for name, c, h in R:
            if m in ("hr", "ls", "ns") and name not in core:
                continue
            C.append(dict(name=f"{m}:{name}", map=m, **c, hp=h))
    for lr in [0.1, 0.02, 0.5, 0.01, 0.005]:
        C.append(dict(name=f"ogd:lr{lr}", map="ogd", hp=dict(lr_rot=lr)))
    C.append(dict(name="ogd:lr0.1_ngain", map="ogd", gain="neuron", hp=dict(lr_rot=0.1, gain_on=1.0)))
    C.append(dict(name="ogd:norm0.1", map="ogd", hp=dict(lr_rot=0.1, ogd_norm=1)))
    return C


def main():
    out = sys.argv[1]
    args = sys.argv[2:]
    seeds = [0, 1, 2]
    only = None
    if "--seeds" in args:
        seeds = [int(s) for s in args[args.index("--seeds") + 1].split(",")]
    if "--only" in args:
        only = args[args.index("--only") + 1].split(",")
    data = load()
    runs = {}
    cfgs = grid()
    if only:
        cfgs = [c for c in cfgs if c["name"] in only]
    def priority(c):
        m, _, r = c["name"].partition(":")
        if m == "plain":
            return 0
        if m in ("gs", "cp", "ogd") and r in PRIORITY:
            return 1
        if m == "ogd":
            return 2
        return 3 if r in PRIORITY else 4
    cfgs = sorted(cfgs, key=priority)
    start = time.time()
    deadline = float(os.environ.get("DEADLINE", 1e9))
    with open(out, "a") as f:
        for cfg in cfgs:
            if time.time() - start > deadline:
                print("deadline: skipped", cfg["name"], flush=True)
                continue
            hp = dict(HP0, **cfg.get("hp", {}))
            hpj = {k: jnp.asarray(v, jnp.float32) for k, v in hp.items()}
            for seed in seeds:
                params, frozen, roles = build(cfg, seed)
                key = (cfg["map"], cfg.get("gain", "scalar"))
                if key not in runs:
                    runs[key] = make_run(cfg["map"], roles, data)
                t0 = time.time()
                state = optlab.opt_init(params)
                t = jnp.zeros((), jnp.int32)
                hist = []
                for e in range(EPOCHS):
                    params, frozen, state, t, m, orth = runs[key](
                        params, frozen, state, hpj, t, jax.random.PRNGKey(1000 * seed + e))
                    hist.append([float(v) for v in np.asarray(m)])
                rec = dict(task="fmnist", name=cfg["name"], seed=seed, secs=round(time.time() - t0, 2),
                           train_loss=[h[0] for h in hist], val=[h[1] for h in hist],
                           test=[h[3] for h in hist], orth=[float(o) for o in np.asarray(orth)])
                print(json.dumps(rec), flush=True)
                f.write(json.dumps(rec) + "\n")
                f.flush()


if __name__ == "__main__":
    main()
