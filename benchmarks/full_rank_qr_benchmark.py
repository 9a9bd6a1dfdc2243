"""Experiment: QR factorizations for full-rank GS/HR at large d (issue 18).

Usage (from the repository root):

    .venv/bin/python benchmarks/full_rank_qr_benchmark.py --dims 2048 4096

Times the forward QR that the Gram–Schmidt and Householder maps need
(`Q` with a positive diagonal of R) against one d×d matmul, in one process,
interleaved over `--rounds`, and reports `max |QᵀQ − I|` in float32 on a
Gaussian P (the hard case: cond(P) ≈ d) and on `I + 0.3·G/√d` (a trained
rotation parameter's neighbourhood). Candidates:

- `householder`: TensorFlow's QR (Eigen), what `keras_opt.linalg` uses;
- `bcgs`: recursive block classical Gram–Schmidt, Householder panels of
  `--panel` columns, one projection per level;
- `bcgs_i+`: the same with every projection done twice (BCGSI+);
- `bcgs_i+_x2`: "twice is enough" on the whole: BCGSI+ of the Q of BCGSI+,
  `R = R₂·R₁`;
- `bcgs_i+_chol`: BCGSI+, then one Cholesky-QR pass on its Q (Q is so
  close to orthogonal that its Gram matrix is perfectly conditioned).

The recursion unrolls one QR per panel into the graph (d/panel of them), so
none of these is a candidate for the library as written (house rule: no
Python loop over blocks in a graph); this measures whether one would be
worth a loop-free formulation. Prints a markdown table.
"""

import argparse
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from benchmarks import _timing  # noqa: E402
from keras_opt import linalg  # noqa: E402


def _signed(q, r):
    signs = tf.where(tf.linalg.diag_part(r) < 0, -1.0, 1.0)
    return q * signs[None, :], r * signs[:, None]


def bcgs(a, panel, reorthogonalize):
    """`(Q, R)` by recursive block classical Gram–Schmidt."""
    p = a.shape[-1]
    if p <= panel:
        return _signed(*tf.linalg.qr(a))
    half = max(panel, (p // 2) // panel * panel)
    q1, r11 = bcgs(a[:, :half], panel, reorthogonalize)
    rest = a[:, half:]
    coefficients = tf.matmul(q1, rest, transpose_a=True)
    rest = rest - tf.matmul(q1, coefficients)
    if reorthogonalize:
        again = tf.matmul(q1, rest, transpose_a=True)
        rest = rest - tf.matmul(q1, again)
        coefficients = coefficients + again
    q2, r22 = bcgs(rest, panel, reorthogonalize)
    zeros = tf.zeros((p - half, half), a.dtype)
    r = tf.concat(
        [tf.concat([r11, coefficients], 1), tf.concat([zeros, r22], 1)], 0
    )
    return tf.concat([q1, q2], 1), r


def candidates(panel):
    def householder(a):
        return linalg.sign_fixed_qr(a), None

    def twice(a):
        q1, r1 = bcgs(a, panel, True)
        q, r2 = bcgs(q1, panel, True)
        return q, tf.matmul(r2, r1)

    def cholesky_pass(a):
        q1, r1 = bcgs(a, panel, True)
        lower = tf.linalg.cholesky(tf.matmul(q1, q1, transpose_a=True))
        q = tf.transpose(
            tf.linalg.triangular_solve(lower, tf.transpose(q1), lower=True)
        )
        return q, tf.matmul(lower, r1, transpose_a=True)

    return {
        "householder": householder,
        "bcgs": lambda a: bcgs(a, panel, False),
        "bcgs_i+": lambda a: bcgs(a, panel, True),
        "bcgs_i+_x2": twice,
        "bcgs_i+_chol": cholesky_pass,
    }


def run(d, panel, rounds, repeats):
    rng = np.random.default_rng(d)
    matrices = {
        "gaussian": rng.standard_normal((d, d)).astype("float32"),
        "near_identity": (
            np.eye(d) + 0.3 * rng.standard_normal((d, d)) / np.sqrt(d)
        ).astype("float32"),
    }
    a = tf.constant(matrices["gaussian"])
    matmul = tf.function(lambda: tf.matmul(a, a))
    functions = {
        name: tf.function(lambda f=f: f(a)[0])
        for name, f in candidates(panel).items()
    }
    errors = {
        name: {
            kind: float(ops.convert_to_numpy(linalg.orthogonality_error(
                candidates(panel)[name](tf.constant(m))[0]
            )))
            for kind, m in matrices.items()
        }
        for name in functions
    }
    times = {name: [] for name in functions}
    units = []
    for _ in range(rounds):
        units.append(_timing.median_seconds(lambda: matmul().numpy(), repeats))
        for name, function in functions.items():
            times[name].append(_timing.median_seconds(
                lambda: function().numpy(), repeats
            ))
    unit = statistics.median(units)
    for name in functions:
        seconds = statistics.median(times[name])
        print(
            f"| {d} | {name} | {seconds:.3f} | {seconds / unit:.2f} | "
            f"{errors[name]['gaussian']:.1e} | "
            f"{errors[name]['near_identity']:.1e} | {unit:.3f} |",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[2048, 4096])
    parser.add_argument("--panel", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    print(
        "| d | QR | forward (s) | / d×d matmul | max abs(QᵀQ − I), Gaussian "
        "| near identity | d×d matmul (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    for d in args.dims:
        run(d, args.panel, args.rounds, args.repeats)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
