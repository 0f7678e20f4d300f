"""Disentanglement of codes against known factors: MIG and DCI, as disentanglement_lib defines them.

codes: (N, D) float, one row per grid (the posterior means μ); factors: (N, K) int, the values
that made each grid. Both scores ask whether each factor is carried by one code dimension.

MIG, the mutual information gap (Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs",
arXiv:1802.04942): each code dimension is cut into equal-width bins over its range; for each factor,
the gap between the two largest mutual informations I(z_d; f) over the dimensions, divided by the
factor's entropy H(f); the mean over factors. 1: each factor is told by one dimension alone.

DCI (Eastwood & Williams 2018, "A Framework for the Quantitative Evaluation of Disentangled
Representations", ICLR): a gradient-boosted tree classifier predicts each factor from the codes;
its feature importances fill R (D, K).
  disentanglement: for each dimension 1 - the entropy (base K) of its row of R, normalised, the
      mean weighted by the dimension's share of all importance (each dimension tells one factor);
  completeness: for each factor 1 - the entropy (base D) of its column, weighted alike (each
      factor is told by one dimension);
  informativeness: the classifiers' accuracy on held-out codes, the mean over factors.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import entropy
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import mutual_info_score

MIG_BINS = 20  # disentanglement_lib's histogram discretiser
DCI_TRAIN_SHARE = 2 / 3  # of the grids, the rest scores informativeness
SEED = 0


def discretise(codes: np.ndarray, bins: int = MIG_BINS) -> np.ndarray:
    """(N, D) int: each dimension cut into `bins` equal-width bins over its own range."""
    out = np.zeros(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, d], bins)
        out[:, d] = np.digitize(codes[:, d], edges[1:-1])
    return out


def mutual_information(discrete_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """(D, K) I(z_d; f_k) in nats, from counts."""
    return np.array(
        [[mutual_info_score(factor, code) for factor in factors.T] for code in discrete_codes.T]
    )


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = MIG_BINS) -> dict:
    """MIG over the factors, and per factor: the gap, the dimension of the largest MI, the MIs.
    A factor that takes one value (entropy 0) has no gap and is left out of the mean."""
    if codes.shape[1] < 2:
        raise ValueError("MIG needs a code of at least 2 dimensions")
    mi = mutual_information(discretise(codes, bins), factors)  # (D, K)
    h = np.array([mutual_info_score(factor, factor) for factor in factors.T])  # (K,)
    top = np.sort(mi, axis=0)[::-1]
    defined = h > 0
    gap = np.full(len(h), np.nan)
    gap[defined] = (top[0, defined] - top[1, defined]) / h[defined]
    return {
        "score": float(np.mean(gap[defined])) if defined.any() else None,
        "per_factor": [None if np.isnan(g) else float(g) for g in gap],
        "best_dim": mi.argmax(axis=0).tolist(),
        "entropy_nats": h.tolist(),
        "mutual_information_nats": mi.tolist(),  # (D, K)
    }


def importance_matrix(codes: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, dict]:
    """R (D, K) of gradient-boosted trees fitted on the first DCI_TRAIN_SHARE of a seeded shuffle
    of the grids, one classifier per factor; and their accuracy on both parts."""
    order = np.random.default_rng(SEED).permutation(len(codes))
    cut = int(len(codes) * DCI_TRAIN_SHARE)
    train, test = order[:cut], order[cut:]
    r = np.zeros((codes.shape[1], factors.shape[1]))
    train_accuracy, test_accuracy = [], []
    for k, factor in enumerate(factors.T):
        if len(np.unique(factor[train])) < 2:  # nothing to tell apart: no importance, chance 1
            train_accuracy.append(1.0)
            test_accuracy.append(float(np.mean(factor[test] == factor[train][0])))
            continue
        model = GradientBoostingClassifier(random_state=SEED).fit(codes[train], factor[train])
        r[:, k] = np.abs(model.feature_importances_)
        train_accuracy.append(float(model.score(codes[train], factor[train])))
        test_accuracy.append(float(model.score(codes[test], factor[test])))
    return r, {"train": train_accuracy, "test": test_accuracy}


def one_minus_entropy(rows: np.ndarray) -> np.ndarray:
    """1 - the entropy of each row's normalised distribution, in base len(row): 1 for one-hot."""
    if rows.shape[1] < 2:
        return np.ones(len(rows))
    return 1.0 - entropy(rows.T + 1e-11, base=rows.shape[1])


def dci(codes: np.ndarray, factors: np.ndarray) -> dict:
    """DCI disentanglement, completeness and informativeness (module docstring), the importance
    matrix and the accuracies per factor."""
    r, accuracy = importance_matrix(codes, factors)
    weights = r if r.sum() > 0 else np.ones_like(r)
    code_share = weights.sum(axis=1) / weights.sum()  # (D,)
    factor_share = weights.sum(axis=0) / weights.sum()  # (K,)
    return {
        "disentanglement": float(np.sum(one_minus_entropy(r) * code_share)),
        "completeness": float(np.sum(one_minus_entropy(r.T) * factor_share)),
        "informativeness": float(np.mean(accuracy["test"])),
        "informativeness_train": float(np.mean(accuracy["train"])),
        "accuracy_per_factor": accuracy["test"],
        "importance": r.tolist(),  # (D, K)
    }
