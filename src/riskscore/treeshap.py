"""Exact path-dependent TreeSHAP for small trees: one table per tree, one look-up per row and tree.

In path-dependent TreeSHAP (Lundberg et al., 2020: what LightGBM's
``pred_contrib`` and ``shap.TreeExplainer`` compute), the contributions a tree
gives a row depend only on which way the row goes at each of the tree's split
nodes, off its own path included. A tree of at most :data:`MAX_SPLITS` splits
has at most 256 such patterns, so the contributions of every pattern are
computed once per model and a row then costs one pattern code and one table
look-up per tree.

A pattern's contributions are the Shapley values of the tree's game, summed
over leaves: for leaf ``l`` with value ``c`` and the distinct features ``U`` on
its path, ``v(S) = c * prod_{f in U} (o_f if f in S else z_f)``, where ``o_f``
is 1 when the row follows the path at every split on ``f`` and ``z_f`` the
product of the path's cover fractions at those splits. The Shapley value of
such a product game has a closed form (elementary symmetric sums of the other
features' terms), which is exactly what the TreeSHAP recursion computes,
repeated features included. The splits are evaluated as LightGBM's
``NumericalDecision`` and ``CategoricalDecision`` do (missing types, default
directions, category sets).

The result equals LightGBM's ``pred_contrib`` up to the order of floating-point
additions (about 1e-15 on a margin). Models whose trees are larger, linear, or
several per iteration get no tables (:func:`tables_for` returns None) and are
explained by LightGBM itself.
"""

from __future__ import annotations

import contextlib
import math
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["MAX_SPLITS", "TreeTables", "feature_matrix", "tables_for"]

MAX_SPLITS = 8
"""Most split nodes a tree may have for the table method (256 patterns); larger trees use LightGBM."""

_ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float): it reads |x| <= this as 0.0
_MISSING = {"None": 0, "Zero": 1, "NaN": 2}
_BLOCK = 2048  # rows per block: bounds the (splits x rows) work arrays to a few tens of MB


@dataclass(frozen=True)
class TreeTables:
    """Per-tree pattern tables of a booster (see the module documentation)."""

    feature: np.ndarray  # (T, M) the feature each split reads (0 for padding)
    threshold: np.ndarray  # (T, M) numeric threshold
    missing_left: np.ndarray  # (T, M) direction of a missing value (NaN; zero for missing_type "Zero")
    zero_missing: np.ndarray  # (T, M) missing_type "Zero": zeros take the default direction
    default_left: np.ndarray  # (T, M)
    categorical: dict[tuple[int, int], np.ndarray]  # (tree, split) -> the categories that go left
    table: np.ndarray  # (T, 2**M, K) contributions of each pattern to the tree's K slots
    slots: np.ndarray  # (T, K) the feature of each slot; n_features for padding
    base: float  # the expected margin: sum of the trees' expected values
    n_features: int

    def contributions(self, values: np.ndarray) -> np.ndarray:
        """Contributions (n, n_features) of the rows ``values`` (float64; categoricals as codes, NaN missing)."""
        n, width = values.shape
        if width != self.n_features:
            raise ValueError(f"the model reads {self.n_features} features; got {width} columns")
        out = np.empty((n, self.n_features))
        for start in range(0, n, _BLOCK):
            out[start : start + _BLOCK] = self._block(values[start : start + _BLOCK])
        return out

    def _block(self, rows: np.ndarray) -> np.ndarray:
        trees, m = self.feature.shape
        b = len(rows)
        by_feature = np.array(rows.T, order="C")  # (F, B): each split reads one contiguous row
        with np.errstate(invalid="ignore"):
            by_feature[np.abs(by_feature) <= _ZERO] = 0.0  # LightGBM drops such values from a row: they read as 0
        read = by_feature[self.feature.ravel()]  # (T*M, B)
        missing = np.isnan(read)
        with np.errstate(invalid="ignore"):
            left = read <= self.threshold.reshape(-1, 1)
        left = np.where(missing, self.missing_left.reshape(-1, 1), left)
        zero = self.zero_missing.ravel()
        if zero.any():
            at = np.flatnonzero(zero)
            left[at] = np.where(read[at] == 0.0, self.default_left.ravel()[at, None], left[at])
        for (t, j), categories in self.categorical.items():
            v = read[t * m + j]
            whole = np.trunc(v)
            with np.errstate(invalid="ignore"):
                left[t * m + j] = ~np.isnan(v) & (whole >= 0) & np.isin(whole, categories)
        # A padding split reads feature 0 but lies on no path: its bit selects a copy of the same entries.
        bits = left.reshape(trees, m, b)
        codes = np.zeros((trees, b), dtype=np.intp)
        for j in range(m):
            codes |= bits[:, j, :].astype(np.intp) << j
        vals = self.table[np.arange(trees)[:, None], codes]  # (T, B, K)
        acc = np.zeros((self.n_features + 1, b))
        # Tree by tree, as LightGBM adds them: a tree's slots are distinct features (padding: the spare last row).
        for t in range(trees):
            acc[self.slots[t]] += vals[t].T
        return acc[: self.n_features].T


_CACHE: weakref.WeakKeyDictionary[Any, tuple[tuple[int, int, int], TreeTables | None]] = weakref.WeakKeyDictionary()


def tables_for(booster: Any) -> TreeTables | None:
    """The booster's tables, built once per booster (and again if it was trained further); None if not eligible."""
    # The trees predict uses: a booster trained further, or with another best iteration, needs new tables.
    signature = (booster.num_trees(), booster.current_iteration(), booster.best_iteration)
    with contextlib.suppress(KeyError, TypeError):
        seen, cached = _CACHE[booster]
        if seen == signature:
            return cached
    built = _build(booster.dump_model())
    with contextlib.suppress(TypeError):  # an object that takes no weak reference: built every time
        _CACHE[booster] = (signature, built)
    return built


def feature_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The rows as LightGBM reads a DataFrame: numbers as float64, categoricals as their codes, missing as NaN."""
    columns = []
    for name in frame.columns:
        col = frame[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy().astype(np.float64)
            codes[codes < 0] = np.nan
            columns.append(codes)
        else:
            columns.append(col.to_numpy(dtype=np.float64, na_value=np.nan))
    return np.column_stack(columns) if columns else np.empty((len(frame), 0))


def _build(dump: dict[str, Any]) -> TreeTables | None:
    if dump.get("num_tree_per_iteration", 1) != 1:
        return None
    trees = []
    for info in dump["tree_info"]:
        tree = _flatten(info["tree_structure"])
        if tree is None:
            return None
        trees.append(tree)
    n_features = int(dump["max_feature_idx"]) + 1
    t_count = len(trees)
    m = max([len(nodes) for nodes, _ in trees] + [1])
    k = max([len({nd["split_feature"] for nd in nodes}) for nodes, _ in trees] + [1])
    feature = np.zeros((t_count, m), dtype=np.intp)
    threshold = np.full((t_count, m), np.inf)
    missing_left = np.zeros((t_count, m), dtype=bool)
    zero_missing = np.zeros((t_count, m), dtype=bool)
    default_left = np.zeros((t_count, m), dtype=bool)
    categorical: dict[tuple[int, int], np.ndarray] = {}
    table = np.zeros((t_count, 1 << m, k))
    slots = np.full((t_count, k), n_features, dtype=np.intp)
    patterns = ((np.arange(1 << m)[:, None] >> np.arange(m)) & 1).astype(bool)  # bit j: left at split j
    base = 0.0
    for t, (nodes, leaves) in enumerate(trees):
        for j, nd in enumerate(nodes):
            feature[t, j] = nd["split_feature"]
            default_left[t, j] = bool(nd["default_left"])
            kind = _MISSING[nd["missing_type"]]
            if nd["decision_type"] == "==":
                categorical[(t, j)] = np.array([int(c) for c in str(nd["threshold"]).split("||")], dtype=np.float64)
                missing_left[t, j] = False  # LightGBM sends a missing category right
            else:
                threshold[t, j] = float(nd["threshold"])
                zero_missing[t, j] = kind == 1
                # missing_type None reads NaN as 0.0; Zero and NaN send it the default way.
                missing_left[t, j] = default_left[t, j] if kind else threshold[t, j] >= 0.0
        features = sorted({nd["split_feature"] for nd in nodes})
        slots[t, : len(features)] = features
        base += _leaf_game(table[t], leaves, nodes, patterns, {f: i for i, f in enumerate(features)})
    return TreeTables(feature, threshold, missing_left, zero_missing, default_left, categorical, table, slots, base,
                      n_features)  # fmt: skip


def _flatten(root: dict[str, Any]) -> tuple[list[dict[str, Any]], list[tuple[float, float, list[Any]]]] | None:
    """The tree's split nodes (in visiting order) and, per leaf, its value, cover and path; None if not eligible."""
    nodes: list[dict[str, Any]] = []
    leaves: list[tuple[float, float, list[Any]]] = []
    stack: list[tuple[dict[str, Any], list[Any]]] = [(root, [])]
    while stack:
        node, path = stack.pop()
        if "leaf_value" in node:
            if "leaf_coeff" in node or "leaf_features" in node:
                return None  # a linear leaf: not a constant game
            leaves.append((float(node["leaf_value"]), float(node.get("leaf_count", 0)), path))
            continue
        if node.get("decision_type") not in ("<=", "==") or len(nodes) >= MAX_SPLITS:
            return None
        j = len(nodes)
        nodes.append(node)
        cover = float(node["internal_count"])
        for went_left, child in ((False, node["right_child"]), (True, node["left_child"])):
            child_cover = float(child["leaf_count"] if "leaf_value" in child else child["internal_count"])
            stack.append((child, [*path, (j, went_left, child_cover / cover if cover else 0.0)]))
    return nodes, leaves


def _leaf_game(
    table: np.ndarray,
    leaves: list[tuple[float, float, list[Any]]],
    nodes: list[dict[str, Any]],
    patterns: np.ndarray,
    slot: dict[int, int],
) -> float:
    """Add every leaf's Shapley values per pattern into ``table``; return the tree's expected value."""
    if not nodes:
        return leaves[0][0]  # a single leaf: its value is the expected value, no contributions
    total = float(nodes[0]["internal_count"])
    expected = 0.0
    n = len(patterns)
    for value, cover, path in leaves:
        expected += cover / total * value if total else 0.0
        terms: dict[int, tuple[np.ndarray, float]] = {}
        for j, went_left, fraction in path:
            f = nodes[j]["split_feature"]
            follows, share = terms.get(f, (np.ones(n, dtype=bool), 1.0))
            terms[f] = (follows & (patterns[:, j] == went_left), share * fraction)
        items = list(terms.items())
        d = len(items)
        weights = [math.factorial(s) * math.factorial(d - 1 - s) / math.factorial(d) for s in range(d)]
        for i, (f, (follows_i, share_i)) in enumerate(items):
            # Coefficients of prod over the other features of (z_j + o_j x): the sums over coalitions by size.
            coef = [np.ones(n)]
            for q, (_, (follows_j, share_j)) in enumerate(items):
                if q == i:
                    continue
                o = follows_j.astype(np.float64)
                nxt = [c * share_j for c in coef] + [np.zeros(n)]
                for s, c in enumerate(coef):
                    nxt[s + 1] = nxt[s + 1] + c * o
                coef = nxt
            shapley = sum(w * c for w, c in zip(weights, coef, strict=True))
            table[:, slot[f]] += value * (follows_i.astype(np.float64) - share_i) * shapley
    return expected
