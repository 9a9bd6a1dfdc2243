"""The planetoid citation graphs (Cora, CiteSeer, PubMed), numpy only.

`load_planetoid(name, data_dir)` reads the `ind.<name>.*` files of Yang et
al. (2016), as used by Kipf & Welling's GCN, and returns the standard split
(train = the labelled nodes of `ind.<name>.y`, validation = the next 500
nodes, test = the 1,000 nodes of `ind.<name>.test.index`) the way the GCN
code builds it. Cora's files ship in `examples/data/planetoid` (MIT; see the
README there), so the GCN example runs offline; pass `data_dir` for CiteSeer
or PubMed in the same format.

The feature files are Python-2 pickles of `scipy.sparse.csr_matrix`. SciPy
is not needed: `_Unpickler` maps that class to a small stand-in that keeps
the CSR arrays, which are densified with numpy.
"""

import os
import pickle

import numpy as np

DEFAULT_DATA_DIR = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "data", "planetoid"
)
NAMES = ("cora", "citeseer", "pubmed")
NUM_VALIDATION = 500


class _CSRMatrix:
    """What the pickles hold of a `scipy.sparse.csr_matrix`: its arrays."""

    def __setstate__(self, state):
        self.__dict__.update(state)

    def toarray(self):
        rows, cols = self._shape
        dense = np.zeros((rows, cols), dtype=self.data.dtype)
        counts = np.diff(self.indptr)
        row_ids = np.repeat(np.arange(rows), counts)
        np.add.at(dense, (row_ids, self.indices), self.data)
        return dense


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module.startswith("scipy.sparse") and name == "csr_matrix":
            return _CSRMatrix
        if module.startswith("numpy.core"):
            module = "numpy._core" + module[len("numpy.core"):]
        return super().find_class(module, name)


def _read(path):
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"Planetoid file not found: {path}. Expected the ind.<name>.* "
            "files of kimiyoung/planetoid (or tkipf/gcn) in the data "
            "directory."
        )
    with open(path, "rb") as f:
        value = _Unpickler(f, encoding="latin1").load()
    return value.toarray() if isinstance(value, _CSRMatrix) else value


def _fill_isolated_test_nodes(tx, ty, test_range):
    """CiteSeer's isolated test nodes have no rows: give them zero features
    and no label, as the GCN code does."""
    span = test_range[-1] - test_range[0] + 1
    tx_full = np.zeros((span, tx.shape[1]), tx.dtype)
    tx_full[test_range - test_range[0]] = tx
    ty_full = np.zeros((span, ty.shape[1]), ty.dtype)
    ty_full[test_range - test_range[0]] = ty
    return tx_full, ty_full


def load_planetoid(name="cora", data_dir=None):
    """Loads a planetoid dataset with its standard split.

    Args:
        name: `"cora"`, `"citeseer"` or `"pubmed"`.
        data_dir: directory with the `ind.<name>.*` files; defaults to the
            vendored `examples/data/planetoid` (Cora only).

    Returns:
        A dict with `features` (float32, nodes × features, as stored),
        `labels` (int32, -1 for the nodes without a label), `adjacency`
        (float32, nodes × nodes, symmetric 0/1, self-loops as listed) and
        the index arrays `train`, `validation`, `test`.

    Raises:
        ValueError: if `name` is not a planetoid dataset.
        FileNotFoundError: if a file is missing.
    """
    if name not in NAMES:
        raise ValueError(
            f"Invalid value for argument `name`. Expected one of {NAMES}. "
            f"Received: name={name!r}"
        )
    data_dir = data_dir or DEFAULT_DATA_DIR
    prefix = os.path.join(data_dir, f"ind.{name}.")
    x, y, tx, ty, allx, ally, graph = (
        _read(prefix + part)
        for part in ("x", "y", "tx", "ty", "allx", "ally", "graph")
    )
    with open(prefix + "test.index") as f:
        test_index = np.array([int(line) for line in f if line.strip()])
    test_range = np.sort(test_index)
    if name == "citeseer":
        tx, ty = _fill_isolated_test_nodes(tx, ty, test_range)
    features = np.concatenate([allx, tx]).astype("float32")
    features[test_index] = features[test_range]
    onehot = np.concatenate([ally, ty])
    onehot[test_index] = onehot[test_range]
    labels = np.where(onehot.any(axis=1), onehot.argmax(axis=1), -1)

    num_nodes = features.shape[0]
    adjacency = np.zeros((num_nodes, num_nodes), "float32")
    for node, neighbours in graph.items():
        adjacency[node, neighbours] = 1.0
    adjacency = np.maximum(adjacency, adjacency.T)
    num_train = len(y)
    return {
        "features": features,
        "labels": labels.astype("int32"),
        "adjacency": adjacency,
        "train": np.arange(num_train),
        "validation": np.arange(num_train, num_train + NUM_VALIDATION),
        "test": test_range,
    }


def normalize_adjacency(adjacency):
    """D^-1/2 (A + I) D^-1/2, the GCN propagation matrix (float32)."""
    a = adjacency + np.eye(adjacency.shape[0], dtype=adjacency.dtype)
    degree = a.sum(axis=1)
    scale = np.where(degree > 0, 1.0 / np.sqrt(degree), 0.0)
    return (a * scale[:, None] * scale[None, :]).astype("float32")


def normalize_features(features):
    """Divides each row by its sum (rows of zeros stay zero)."""
    total = features.sum(axis=1, keepdims=True)
    return (features / np.where(total > 0, total, 1.0)).astype("float32")
