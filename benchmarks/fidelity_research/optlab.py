"""Pure-JAX re-implementation of OPT layers for fast recipe screening.

W = gain * phi(P) @ V with V frozen (He-normal), phi one of the OPT maps.
Same maps as keras_opt (GS = sign-fixed QR of P^T, HR = sign-fixed QR of P,
LS = polar factor with the closed-form adjoint, CP = Cayley of the skew upper
triangle, NS = Newton-Schulz polar, OGD = Cayley SGD with momentum on R, the
official step). Hyper-parameters that vary between recipes are traced
scalars, so one compilation per (task, map) serves the whole grid.

Used by benchmarks/fidelity_research/run_gcn.py and benchmarks/fidelity_research/run_fmnist.py.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np

MAPS = ("gs", "hr", "ls", "cp", "ns", "ogd")


# ----------------------------------------------------------------- the maps
def _sign_fixed_qr(a):
    q, t = jnp.linalg.qr(a)
    s = jnp.sign(jnp.diagonal(t))
    s = jnp.where(s == 0, 1.0, s)
    return q * s[None, :]


def gs(p):
    return _sign_fixed_qr(p.T).T


def hr(p):
    return _sign_fixed_qr(p)


@jax.custom_vjp
def polar(p):
    u, _ = jax.scipy.linalg.polar(p, method="qdwh")
    return u


def _polar_fwd(p):
    u, h = jax.scipy.linalg.polar(p, method="qdwh")
    return u, (u, h)


def _polar_bwd(res, g):
    r, h = res
    s, w = jnp.linalg.eigh(0.5 * (h + h.T))  # P = R H, H = W diag(s) W^T
    uu = r @ w                                 # P = uu diag(s) w^T
    gb = uu.T @ g @ w
    k = (gb - gb.T) / jnp.maximum(s[:, None] + s[None, :], 1e-6 * s.max())
    return (uu @ k @ w.T,)


polar.defvjp(_polar_fwd, _polar_bwd)


def ls(p):
    return polar(p)


def cp(p):
    s = jnp.triu(p, 1)
    s = s - s.T
    eye = jnp.eye(p.shape[0], dtype=p.dtype)
    return jnp.linalg.solve(eye - s, eye + s)


def ns(p, iterations=30):
    x = p / jnp.linalg.norm(p)
    for _ in range(iterations):
        x = x @ (1.5 * jnp.eye(p.shape[0], dtype=p.dtype) - 0.5 * x.T @ x)
    return x


def identity_map(p):
    return p


PHI = {"gs": gs, "hr": hr, "ls": ls, "cp": cp, "ns": ns, "ogd": identity_map}


def identity_point(name, d):
    return jnp.zeros((d, d)) if name == "cp" else jnp.eye(d)


def init_rotation(name, init, d, key):
    """init: 'official' (N(0,1); identity for OGD) or 'identity'."""
    if name == "ogd" or init == "identity":
        return identity_point(name, d)
    return jax.random.normal(key, (d, d))


def orthogonality_error(r):
    return jnp.max(jnp.abs(r.T @ r - jnp.eye(r.shape[0])))


# ------------------------------------------------------------ the optimizer
# Per-leaf state: m, v (like the leaf), vs (scalar), t (scalar step count).
# "main" leaves use the task's optimizer (adam or sgdm); rotation leaves use
# hp["rot_kind"] (0 = adam, 1 = scalar-second-moment adam, 2 = sgd+momentum)
# at hp["lr_rot"]; OGD rotations take the official Cayley step.
B1, B2, EPS, MOM = 0.9, 0.999, 1e-7, 0.9


def opt_init(params):
    return jax.tree.map(
        lambda x: {
            "m": jnp.zeros_like(x),
            "v": jnp.zeros_like(x),
            "vs": jnp.zeros(()),
            "t": jnp.zeros(()),
        },
        params,
    )


def _adam(g, st, lr, scalar_v=False):
    t = st["t"] + 1
    m = B1 * st["m"] + (1 - B1) * g
    v = B2 * st["v"] + (1 - B2) * g * g
    vs = B2 * st["vs"] + (1 - B2) * jnp.mean(g * g)
    mh = m / (1 - B1**t)
    denom = jnp.sqrt(vs / (1 - B2**t)) if scalar_v else jnp.sqrt(v / (1 - B2**t))
    return -lr * mh / (denom + EPS), {"m": m, "v": v, "vs": vs, "t": t}


def _sgdm(g, st, lr):
    m = MOM * st["m"] - lr * g  # Keras SGD velocity
    return m, {"m": m, "v": st["v"], "vs": st["vs"], "t": st["t"] + 1}


def main_update(kind, g, st, lr):
    if kind == "adam":
        return _adam(g, st, lr)
    return _sgdm(g, st, lr)


def rot_update(g, st, lr, rot_kind):
    ua, sa = _adam(g, st, lr)
    us, ss = _adam(g, st, lr, scalar_v=True)
    um, sm = _sgdm(g, st, lr)
    sel = lambda a, b, c: jnp.where(rot_kind == 0, a, jnp.where(rot_kind == 1, b, c))
    return sel(ua, us, um), jax.tree.map(sel, sa, ss, sm)


def ogd_update(g, x, st, lr, normalize):
    """The official Cayley SGD step (q = 0.5, s = 2), momentum 0.9.

    normalize = 1 divides G by its running scalar RMS first (a d-free rate).
    """
    vs = B2 * st["vs"] + (1 - B2) * jnp.mean(g * g)
    t = st["t"] + 1
    scale = jnp.where(normalize > 0, 1.0 / (jnp.sqrt(vs / (1 - B2**t)) + EPS), 1.0)
    g = g * scale
    m = MOM * st["m"] - g
    what = m @ x.T - 0.5 * x @ (x.T @ m @ x.T)
    w = what - what.T
    m = w @ x
    alpha = jnp.minimum(lr, 1.0 / (jnp.linalg.norm(w) + 1e-8))
    y = x + alpha * m
    y = x + 0.5 * alpha * w @ (x + y)
    xn = x + 0.5 * alpha * w @ (x + y)
    # the library re-orthonormalizes on drift; here: QR retraction when off
    xq = _sign_fixed_qr(xn)
    xn = jnp.where(orthogonality_error(xn) > 1e-5, xq, xn)
    return xn - x, {"m": m, "v": st["v"], "vs": vs, "t": t}


def apply_updates(params, grads, state, roles, hp, main_kind, map_name):
    """roles: pytree of 'main' | 'rot' | 'gain' matching params."""
    new_p, new_s = {}, {}
    flat_p, tdef = jax.tree.flatten(params)
    flat_g = tdef.flatten_up_to(grads)
    flat_s = tdef.flatten_up_to(state)
    flat_r = tdef.flatten_up_to(roles)
    out_p, out_s = [], []
    for p, g, s, r in zip(flat_p, flat_g, flat_s, flat_r):
        if r == "rot":
            if map_name == "ogd":
                u, s2 = ogd_update(g, p, s, hp["lr_rot"], hp["ogd_norm"])
            else:
                u, s2 = rot_update(g, s, hp["lr_rot"], hp["rot_kind"])
        elif r == "gain":
            u, s2 = main_update(main_kind, g * hp["gain_on"], s, hp["lr"])
        else:
            u, s2 = main_update(main_kind, g, s, hp["lr"])
        out_p.append(p + u)
        out_s.append(s2)
    return tdef.unflatten(out_p), tdef.unflatten(out_s)


def kernel(layer, frozen, map_name):
    """layer: {'P', 'g'} for OPT ({'W'} for plain); frozen: {'V'}."""
    if "W" in layer:
        return layer["W"]
    r = PHI[map_name](layer["P"])
    return jnp.exp(layer["g"]) * (r @ frozen["V"])


def merge(params, frozen, state, map_name):
    """Dynamic trivialization: V <- phi(P) V, P <- identity point, slots reset."""
    params, frozen, state = dict(params), dict(frozen), dict(state)
    for name, layer in params.items():
        if "P" not in layer:
            continue
        r = PHI[map_name](layer["P"])
        frozen[name] = {"V": r @ frozen[name]["V"]}
        d = layer["P"].shape[0]
        params[name] = dict(layer, P=identity_point(map_name, d))
        st = dict(state[name])
        st["P"] = jax.tree.map(jnp.zeros_like, st["P"])
        state[name] = st
    return params, frozen, state
