"""Per-account uplift: who does a contact help? A two-model learner and the Qini curve that judges it.

On the randomised decisions of an experiment (treated and held-out customers
assigned the same treatment), :class:`UpliftModel` fits one LightGBM
classifier of reaching 30+ days past due on the treated rows and one on the
held-out rows, over the same features; the uplift of an account is the
difference, ``P(reach | held out) - P(reach | treated)`` (the "T-learner").
:func:`qini_curve` ranks accounts by any uplift score and counts the
delinquencies averted among the top ``k``: the treated arm's delinquencies
against the control arm's scaled to the treated count (Radcliffe's Qini). A
score that ranks the helped first bows above the diagonal of random targeting;
the Qini coefficient is the area between the two over the share targeted (in
delinquencies averted: the mean gain over random targeting).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from riskscore.outreach.inputs import zero_one

__all__ = ["UpliftModel", "account_effects", "qini_curve"]


def qini_curve(outcome: Any, treated: Any, score: Any) -> pd.DataFrame:
    """Delinquencies averted among the ``k`` accounts of highest ``score``, for every ``k``.

    Parameters
    ----------
    outcome : array of 0/1
        Reached 30+ days past due within the horizon (the read-out's outcome).
    treated : array of bool
        Contacted arm (True) or held out (False), drawn at random.
    score : array of float
        Predicted uplift (higher: helped more).

    Returns
    -------
    DataFrame
        ``share`` (of accounts targeted), ``averted`` (control delinquencies
        scaled to the treated count, minus treated delinquencies, among the
        top ``k``) and ``random`` (the same for random targeting); ``attrs``
        holds ``qini`` (the area between the two over the share targeted).
    """
    y = _outcome(outcome).astype(np.float64)
    t = _arm(treated)
    s = np.asarray(score, dtype=np.float64)
    if not (len(y) == len(t) == len(s)) or len(y) == 0:
        raise ValueError(f"outcome, treated and score must have one equal, non-zero length; got {len(y)}, {len(t)}, "
                         f"{len(s)}")  # fmt: skip
    if not t.any() or t.all():
        raise ValueError("qini_curve needs both treated and held-out accounts")
    if not np.isfinite(s).all():
        raise ValueError(f"score must be finite for every account; {int((~np.isfinite(s)).sum()):,} are not")
    order = np.argsort(-s, kind="stable")
    y, t = y[order], t[order]
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    y_t, y_c = np.cumsum(y * t), np.cumsum(y * ~t)
    with np.errstate(divide="ignore", invalid="ignore"):
        averted = np.where(n_c > 0, y_c * n_t / n_c, 0.0) - y_t
    share = np.arange(1, len(y) + 1) / len(y)
    total = averted[-1]
    frame = pd.DataFrame({"share": np.concatenate([[0.0], share]), "averted": np.concatenate([[0.0], averted])}).assign(
        random=lambda f: f["share"] * total
    )
    frame.attrs["qini"] = float(np.trapezoid(frame["averted"] - frame["random"], frame["share"]))
    return frame


def _outcome(outcome: Any) -> np.ndarray:
    """The outcome as 0/1 integers; anything else (2, a missing value, text) is refused."""
    reached, unknown = zero_one(outcome)
    if unknown.any():
        bad = np.asarray(outcome, dtype=object).reshape(-1)[unknown][:5].tolist()
        raise ValueError(f"outcome must be 0 or 1 for every account; {int(unknown.sum()):,} are not, e.g. {bad}")
    return reached.astype(np.int64)


def _arm(treated: Any) -> np.ndarray:
    """The arm as booleans (True: contacted); values other than True/False or 1/0 are refused, never guessed."""
    contacted, unknown = zero_one(treated)
    if unknown.any():
        bad = np.asarray(treated, dtype=object).reshape(-1)[unknown][:5].tolist()
        raise ValueError(f"treated must be True/False (or 1/0) for every account; {int(unknown.sum()):,} are not, "
                         f"e.g. {bad}")  # fmt: skip
    return contacted


class UpliftModel:
    """Two LightGBM classifiers, treated and held out, on the same features: uplift = P(held out) - P(treated).

    Parameters
    ----------
    params : dict, optional
        LightGBM settings for both (``n_estimators`` 200, ``learning_rate``
        0.05, ``num_leaves`` 15, ``min_child_samples`` 50 by default).
    random_state : int, default=0
    """

    def __init__(self, params: dict[str, Any] | None = None, random_state: int = 0) -> None:
        self.params = params
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, outcome: Any, treated: Any) -> UpliftModel:
        """Fit on randomised decisions: features, reached 30+ DPD (0/1), and the arm (True: contacted)."""
        import lightgbm as lgb

        if not isinstance(X, pd.DataFrame):
            raise TypeError(f"X must be a DataFrame of features; got {type(X).__name__}")
        y = _outcome(outcome)
        t = _arm(treated)
        if len(y) != len(X) or len(t) != len(X):
            raise ValueError(f"X, outcome and treated must have the same length; got {len(X)}, {len(y)}, {len(t)}")
        for arm, name in ((t, "treated"), (~t, "held-out")):
            if len(np.unique(y[arm])) < 2:
                raise ValueError(f"the {name} rows need both outcomes to fit an uplift model; got {np.unique(y[arm])}")
        settings = {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 50,
                    "verbose": -1, "random_state": self.random_state, **(self.params or {})}  # fmt: skip
        self.columns_ = list(X.columns)
        self.treated_ = lgb.LGBMClassifier(**settings).fit(X[t], y[t])
        self.control_ = lgb.LGBMClassifier(**settings).fit(X[~t], y[~t])
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Uplift per row: the drop in the chance of reaching 30+ DPD that the contact causes."""
        if not hasattr(self, "columns_"):
            raise ValueError("UpliftModel is not fitted: call fit(X, outcome, treated) first")
        missing = [c for c in self.columns_ if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks {len(missing)} feature(s) the uplift model was fitted on, e.g. {missing[:3]}")
        data = X[self.columns_]
        held = np.asarray(self.control_.predict_proba(data))[:, 1]
        contacted = np.asarray(self.treated_.predict_proba(data))[:, 1]
        return held - contacted


def account_effects(uplift: Any, frame: pd.DataFrame, explanation: Any, actions: Any) -> dict[str, np.ndarray]:
    """Per row of a decision frame, each given action's own effect: the predicted drop in PD over the PD.

    ``uplift`` maps an action to an :class:`UpliftModel` (anything with
    ``predict(X)``, called on the explained rows' features) or to a Series of
    predicted drops indexed by ``account_id``. The drop is read as a share of
    the account's PD, clipped to [0, 1]: a contact cannot avert more than the
    risk, and a predicted rise counts as no benefit. Rows without an
    explanation get NaN (the treatment table's effect then holds for them).
    """
    if not isinstance(uplift, Mapping):
        raise ValueError(f"uplift must map actions to an UpliftModel or a Series by account_id; got {uplift!r}")
    known = sorted(str(a) for a in actions)
    unknown = sorted(str(a) for a in uplift if a not in known)
    if unknown:
        raise ValueError(f"uplift: unknown action(s) {unknown}; the treatment table's actions are {known}")
    explained = frame["explained_row"].to_numpy() if "explained_row" in frame.columns else np.zeros(0)
    rows = np.flatnonzero(explained >= 0)
    if explanation is None or not len(rows):
        return {}
    positions = frame["explained_row"].to_numpy()[rows]
    ids = frame["account_id"].to_numpy()[rows]
    risk = frame["pd"].to_numpy(dtype=np.float64)[rows]
    out: dict[str, np.ndarray] = {}
    for action, source in uplift.items():
        if isinstance(source, pd.Series):
            if source.index.has_duplicates:
                raise ValueError(f"uplift[{action!r}]: the Series must hold one value per account_id; ids repeat")
            drop = source.reindex(pd.Index(ids)).to_numpy(dtype=np.float64)
            lacking = ids[np.isnan(drop)]
            if len(lacking):
                raise ValueError(
                    f"uplift[{action!r}] must give every explained account a value; {len(lacking)} lack one, "
                    f"e.g. account_id {lacking[:5].tolist()}"
                )
        elif callable(getattr(source, "predict", None)):
            drop = np.asarray(source.predict(explanation.data.iloc[positions]), dtype=np.float64).reshape(-1)
            if len(drop) != len(rows):
                raise ValueError(f"uplift[{action!r}].predict gave {len(drop)} values for {len(rows)} explained rows")
        else:
            raise ValueError(
                f"uplift[{action!r}] must be an UpliftModel (with predict) or a Series by account_id; "
                f"got {type(source).__name__}"
            )
        bad = ~np.isfinite(drop)
        if bad.any():
            raise ValueError(f"uplift[{action!r}] must be finite for every account; not for account_id "
                             f"{ids[bad][:5].tolist()}")  # fmt: skip
        effect = np.full(len(frame), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            effect[rows] = np.where(risk > 0, np.clip(drop / risk, 0.0, 1.0), 0.0)
        out[str(action)] = effect
    return out
