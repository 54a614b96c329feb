"""A compiled predict for scikit-learn's HistGradientBoostingClassifier on small requests.

For one row, scikit-learn's `predict_proba` walks its trees one at a time, each a call into
compiled code that opens an OpenMP region: with 60 trees that is about 360 µs, nearly all of
it per-tree overhead, and it is what a gateway spends most of each request on. Here every
tree of the model is packed into flat NumPy arrays and all trees are walked together, one
level per step, so a request costs a dozen vectorised steps however many trees there are.

The packing reads the fitted trees (`_predictors`, `_baseline_prediction`), which are not
public API; so `compile_forest` checks its answers against the model's own `predict_proba`
on probe rows built around every split threshold (and NaN) before it is used, and returns
None — the gateway then calls scikit-learn as before — for anything it does not cover
(categorical splits, named columns, a mismatch, an attribute layout it does not know).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy


class CompiledForest:
    """The trees of one fitted classifier as flat arrays; `predict_proba(X)` for a float
    matrix with the model's columns."""

    def __init__(self, estimator: Any) -> None:
        import numpy as np

        iterations = estimator._predictors
        self.n_classes_per_iter = len(iterations[0])
        trees = [tree for iteration in iterations for tree in iteration]
        nodes = [t.nodes for t in trees]
        sizes = [len(n) for n in nodes]
        offsets = np.cumsum([0, *sizes[:-1]])
        allnodes = np.concatenate(nodes)
        if bool(np.any(allnodes["is_categorical"])):
            raise ValueError("categorical splits are not compiled")
        shift = np.repeat(offsets, sizes)
        self.feature = allnodes["feature_idx"].astype(np.intp)
        self.threshold = allnodes["num_threshold"].astype(np.float64)
        self.missing_left = allnodes["missing_go_to_left"].astype(bool)
        self.left = (allnodes["left"].astype(np.intp) + shift).astype(np.intp)
        self.right = (allnodes["right"].astype(np.intp) + shift).astype(np.intp)
        self.is_leaf = allnodes["is_leaf"].astype(bool)
        self.value = allnodes["value"].astype(np.float64)
        self.roots = offsets.astype(np.intp)
        self.depth = int(allnodes["depth"].max()) + 1
        self.n_iter = len(iterations)
        self.baseline = np.asarray(estimator._baseline_prediction, dtype=np.float64).reshape(1, -1)
        if self.baseline.shape[1] != self.n_classes_per_iter:
            raise ValueError("unexpected baseline shape")
        self.n_features = int(estimator.n_features_in_)

    def raw(self, X: numpy.ndarray) -> numpy.ndarray:
        import numpy as np

        n = X.shape[0]
        rows = np.arange(n)[:, None]
        idx = np.broadcast_to(self.roots, (n, self.roots.size)).copy()
        for _ in range(self.depth):
            leaf = self.is_leaf[idx]
            if leaf.all():
                break
            x = X[rows, self.feature[idx]]
            nan = np.isnan(x)
            go_left = np.where(nan, self.missing_left[idx], x <= self.threshold[idx])
            step = np.where(go_left, self.left[idx], self.right[idx])
            idx = np.where(leaf, idx, step)
        values = self.value[idx].reshape(n, self.n_iter, self.n_classes_per_iter)
        return values.sum(axis=1) + self.baseline

    def predict_proba(self, X: numpy.ndarray) -> numpy.ndarray:
        import numpy as np

        raw = self.raw(np.asarray(X, dtype=np.float64))
        if raw.shape[1] == 1:
            p1 = 1.0 / (1.0 + np.exp(-raw[:, 0]))
            return np.column_stack([1.0 - p1, p1])
        shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
        out: numpy.ndarray = shifted / shifted.sum(axis=1, keepdims=True)
        return out


def _probe_rows(forest: CompiledForest, seed: int = 0) -> numpy.ndarray:
    """Rows on both sides of every threshold the trees use, some NaN, some random."""
    import numpy as np

    rng = np.random.default_rng(seed)
    inner = ~forest.is_leaf
    features, thresholds = forest.feature[inner], forest.threshold[inner]
    rows = rng.normal(size=(256, forest.n_features)) * 3.0
    for i in range(min(len(features), 512)):
        j = i % rows.shape[0]
        f, t = features[i], thresholds[i]
        rows[j, f] = t if i % 3 == 0 else np.nextafter(t, np.inf if i % 3 == 1 else -np.inf)
    rows[rng.random(rows.shape) < 0.05] = np.nan
    return rows


def compile_forest(estimator: Any) -> CompiledForest | None:
    """A checked CompiledForest for `estimator`, or None when it cannot serve it exactly."""
    import numpy as np

    if type(estimator).__name__ != "HistGradientBoostingClassifier":
        return None
    if hasattr(estimator, "feature_names_in_"):
        return None
    try:
        forest = CompiledForest(estimator)
        probe = _probe_rows(forest)
        ours = forest.predict_proba(probe)
        theirs = np.asarray(estimator.predict_proba(probe))
    except Exception:
        return None
    if ours.shape != theirs.shape or not np.allclose(ours, theirs, rtol=1e-9, atol=1e-12):
        return None
    return forest


__all__ = ["CompiledForest", "compile_forest"]
