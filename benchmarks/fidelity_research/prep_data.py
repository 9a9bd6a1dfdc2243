"""Writes benchmarks/fidelity_research/data/{cora.npz,fmnist.npz} for the research scripts.

Cora: Kipf & Welling preprocessing (row-normalized features, D^-1/2 (A+I) D^-1/2
as an edge list), standard planetoid split (140 / 500 / 1000).
Fashion-MNIST: the Debian package's idx files as uint8 arrays.

python benchmarks/fidelity_research/prep_data.py  (needs numpy + scipy; uses examples/data/planetoid)
"""
import gzip, os, pickle, sys
import numpy as np
import scipy.sparse as sp

PLANETOID = "examples/data/planetoid"
FM = "/usr/share/datasets/fashion-mnist"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")


def load_planetoid(name):
    objs = {}
    for k in ["x", "y", "tx", "ty", "allx", "ally", "graph"]:
        with open(f"{PLANETOID}/ind.{name}.{k}", "rb") as f:
            objs[k] = pickle.load(f, encoding="latin1")
    test_idx = [int(l) for l in open(f"{PLANETOID}/ind.{name}.test.index")]
    test_sorted = np.sort(test_idx)
    features = sp.vstack((objs["allx"], objs["tx"])).tolil()
    features[test_idx, :] = features[test_sorted, :]
    labels = np.vstack((objs["ally"], objs["ty"]))
    labels[test_idx, :] = labels[test_sorted, :]
    n = features.shape[0]
    adj = sp.lil_matrix((n, n))
    for i, nbrs in objs["graph"].items():
        for j in nbrs:
            adj[i, j] = 1
    adj = adj.tocsr()
    adj = adj + adj.T.multiply(adj.T > adj) - adj.multiply(adj.T > adj)
    features = sp.csr_matrix(features)
    rs = np.asarray(features.sum(1)).ravel()
    rinv = np.where(rs > 0, 1.0 / np.maximum(rs, 1e-12), 0.0)
    features = sp.diags(rinv) @ features
    a = adj + sp.eye(n)
    d = np.asarray(a.sum(1)).ravel()
    dinv = d ** -0.5
    a = sp.coo_matrix(sp.diags(dinv) @ a @ sp.diags(dinv))
    ny = len(objs["y"])
    return dict(
        x=np.asarray(features.todense(), np.float32),
        y=labels.argmax(1).astype(np.int32),
        rows=a.row.astype(np.int32), cols=a.col.astype(np.int32),
        vals=a.data.astype(np.float32),
        train=np.arange(ny), val=np.arange(ny, ny + 500), test=np.array(test_sorted),
    )


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    if data[2] == 8 and data[3] == 3:
        return np.frombuffer(data, np.uint8, offset=16).reshape(-1, 28, 28)
    return np.frombuffer(data, np.uint8, offset=8)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    np.savez_compressed(f"{OUT}/cora.npz", **load_planetoid("cora"))
    np.savez_compressed(
        f"{OUT}/fmnist.npz",
        x_train=idx(f"{FM}/train-images-idx3-ubyte.gz"),
        y_train=idx(f"{FM}/train-labels-idx1-ubyte.gz"),
        x_test=idx(f"{FM}/t10k-images-idx3-ubyte.gz"),
        y_test=idx(f"{FM}/t10k-labels-idx1-ubyte.gz"),
    )
    print(os.listdir(OUT))
