"""The report's figures, one function per section: each returns the frames the HTML shows.

Every function reads; none fits the model again. The one model fitted here is
the benchmark challenger (a WOE logistic scorecard), on the development rows
only, so it is judged on the same hold-out and out-of-time rows as the model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "band_table",
    "challenger",
    "exclusions",
    "fairness",
    "sample_metrics",
    "settings",
]


def sample_metrics(y: pd.Series, p: np.ndarray, sample: np.ndarray, order: tuple[str, ...]) -> pd.DataFrame:
    """Per sample: months, observations, defaults, rate with its Wilson interval, AUC with DeLong's, KS, Brier."""
    from riskscore.evaluate import auc_interval, evaluate, rate_interval

    dates = y.index.get_level_values("as_of")
    rows = {}
    for name in [s for s in order if (sample == s).any()]:
        mask = sample == name
        yy = y.to_numpy()[mask]
        if len(np.unique(yy)) < 2 or min(yy.sum(), len(yy) - yy.sum()) < 2:
            continue
        summary = evaluate(yy, p[mask]).summary
        auc, low, high = auc_interval(yy, p[mask])
        r_low, r_high = rate_interval(int(yy.sum()), len(yy))
        rows[name] = {
            "months": f"{dates[mask].min():%Y-%m} to {dates[mask].max():%Y-%m}",
            "observations": int(summary["n"]),
            "defaults": int(summary["positives"]),
            "default rate": summary["rate"],
            "rate 95% CI": (r_low, r_high),
            "mean PD": float(np.mean(p[mask])),
            "AUC": auc,
            "AUC 95% CI": (low, high),
            "KS": summary["ks"],
            "Brier": summary["brier"],
            "calibration error": summary["ece"],
            "lift at 10%": summary["lift_10"],
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("sample")


def challenger(X: pd.DataFrame, y: pd.Series, sample: np.ndarray, order: tuple[str, ...]) -> tuple[Any, pd.DataFrame]:
    """A WOE logistic scorecard fitted on the development rows, and its AUC (with interval) per sample."""
    from riskscore.evaluate import auc_interval
    from riskscore.model.scorecard import WoeScorecard

    dev = sample == "development"
    card = WoeScorecard().fit(X[dev], y[dev])
    p = card.predict_proba(X)[:, 1]
    rows = {}
    for name in [s for s in order if (sample == s).any()]:
        mask = sample == name
        yy = y.to_numpy()[mask]
        if min(yy.sum(), len(yy) - yy.sum()) < 2:
            continue
        auc, low, high = auc_interval(yy, p[mask])
        rows[name] = {"challenger AUC": auc, "challenger AUC 95% CI": (low, high)}
    return card, pd.DataFrame.from_dict(rows, orient="index").rename_axis("sample")


def band_table(model: Any, scores: pd.DataFrame, y: pd.Series, sample: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The bands: PD cut-offs, points range, and out of time accounts, observed and predicted rates; rates per month.

    Out-of-time rows when there are any, else every row with a target.
    """
    from riskscore.model.params import bands_of, points_scale
    from riskscore.model.scales import points_of

    bounds = bands_of(model)
    scale = points_scale(model)
    oot = sample == "out of time"
    use = oot if oot.any() else np.ones(len(scores), dtype=bool)
    frame = pd.DataFrame(
        {
            "band": scores["band"].astype(str).to_numpy(),
            "pd": scores["pd"].to_numpy(),
            "y": y.to_numpy(dtype=np.float64),
            "as_of": y.index.get_level_values("as_of"),
        }
    )
    rows = []
    lower = 0.0
    for band, upper in bounds.items():
        part = frame[use & (frame["band"] == band).to_numpy()]
        best, worst = points_of(
            np.array([max(lower, 1e-6), min(upper, 1 - 1e-6)]), scale["base_points"], scale["base_odds"], scale["pdo"]
        )
        rows.append(
            {
                "band": band,
                "PD from": lower,
                "PD below": upper,
                "points": f"{worst:.0f} to {best:.0f}",
                "accounts": len(part),
                "share": len(part) / max(int(use.sum()), 1),
                "observed default rate": part["y"].mean() if len(part) else np.nan,
                "mean PD": part["pd"].mean() if len(part) else np.nan,
            }
        )
        lower = upper
    over_time = frame.pivot_table(index="as_of", columns="band", values="y", aggfunc="mean", observed=True)
    return pd.DataFrame(rows).set_index("band"), over_time


def exclusions(events: Any, start: Any, end: Any, current: pd.DataFrame, known: np.ndarray) -> pd.DataFrame:
    """Per month: accounts open, excluded as not current (past due at as_of), scored, and without a complete window."""
    from riskscore.labels import observation_dates

    opened = observation_dates(events, start=start, end=end, eligible="all")
    open_n = opened.groupby("as_of").size()
    current_n = current.groupby("as_of").size()
    complete_n = current.loc[known].groupby("as_of").size()
    out = pd.DataFrame({"accounts open": open_n}).join(current_n.rename("current (scored)"), how="left")
    out = out.join(complete_n.rename("with a complete target window"), how="left").fillna(0).astype(np.int64)
    out.insert(1, "excluded: past due at as_of", out["accounts open"] - out["current (scored)"])
    out["excluded share"] = out["excluded: past due at as_of"] / out["accounts open"].where(out["accounts open"] > 0)
    out.index = [f"{d:%Y-%m-%d}" for d in pd.DatetimeIndex(out.index)]
    return out.rename_axis("as_of")


def fairness(events: Any, scores: pd.DataFrame, y: pd.Series, flagged: np.ndarray, decisions: Any) -> dict[str, Any]:
    """Per protected attribute supplied for monitoring: AUC, calibration, mean PD, flagged share, adverse-impact ratio.

    ``flagged`` marks the rows in the bands that call for contact. The adverse
    -impact ratio is each group's share not flagged over the highest group's
    (the four-fifths rule reads below 0.80 as a sign of disparate impact). With
    ``decisions``, each group's share of customers contacted too.
    """
    from riskscore.evaluate import auc_interval

    accounts = events.accounts.set_index("account_id")
    ids = y.index.get_level_values("account_id")
    out: dict[str, Any] = {}
    for col in [c for c in events.protected if c in accounts.columns]:
        values = accounts[col].reindex(ids)
        groups = _groups(values)
        frame = pd.DataFrame(
            {"group": groups, "pd": scores["pd"].to_numpy(), "y": y.to_numpy(dtype=np.float64), "flagged": flagged}
        )
        rows = {}
        for name, part in frame.groupby("group", observed=True, sort=True):
            yy = part["y"].to_numpy()
            auc = auc_interval(yy, part["pd"].to_numpy())[0] if min(yy.sum(), len(yy) - yy.sum()) >= 2 else np.nan
            rows[name] = {
                "observations": len(part),
                "default rate": yy.mean(),
                "mean PD": part["pd"].mean(),
                "PD - default rate": part["pd"].mean() - yy.mean(),
                "AUC": auc,
                "in contact bands": part["flagged"].mean(),
            }
        table = pd.DataFrame.from_dict(rows, orient="index").rename_axis(col)
        favourable = 1 - table["in contact bands"]
        table["adverse-impact ratio"] = favourable / favourable.max() if favourable.max() > 0 else np.nan
        if decisions is not None and "action" in decisions.columns:
            acted = decisions.assign(contacted=decisions["action"].astype(str) != "none")
            per = acted.groupby("account_id")["contacted"].max()
            contact = pd.Series(per.reindex(accounts.index).to_numpy(), index=accounts.index)
            grouped = pd.Series(_groups(accounts[col]), index=accounts.index)
            known = contact.notna()
            table["contacted (decisions)"] = contact[known].astype(float).groupby(grouped[known]).mean()
        out[col] = table
    return out


def settings(model: Any) -> pd.DataFrame:
    """The settings in force: LightGBM parameters, constraints, calibration, bands, points, training record."""
    manifest = model.manifest_
    training = manifest.get("training", {})
    booster = model.booster_.params
    from riskscore.model.params import BOOSTER_SETTINGS, bands_of, points_scale

    keys = ("objective", *BOOSTER_SETTINGS, "min_data_in_leaf", "seed")
    rows = [(f"LightGBM {k}", str(booster[k])) for k in keys if k in booster]
    monotone = training.get("monotone", {})
    dropped = monotone.get("dropped") or []
    rows += [
        ("trees", str(model.booster_.num_trees())),
        ("features", str(len(model.feature_names_in_))),
        (
            "monotone constraints",
            f"{monotone.get('constrained', 'none recorded')} features constrained in the "
            f"catalogue's direction; dropped where the training rows disagree: "
            f"{', '.join(map(str, dropped)) or 'none'}",
        ),
        (
            "calibration",
            f"{model.calibration} on the hold-out ({training.get('holdout', 'not recorded')}, "
            f"{training.get('holdout_rows', 0):,} rows)",
        ),
        ("refit on all rows after early stopping", str(bool(getattr(model, "refit", False)))),
        ("bands (PD upper bounds)", ", ".join(f"{b} < {v:.1%}" for b, v in bands_of(model).items())),
        ("points", ", ".join(f"{k} {v:g}" for k, v in points_scale(model).items())),
        (
            "training rows",
            f"{training.get('rows', 0):,} ({training.get('positives', 0):,} defaults), as_of "
            f"{training.get('first_as_of')} to {training.get('last_as_of')}",
        ),
        ("model version", str(model.version_)),
    ]
    return pd.DataFrame(rows, columns=["setting", "value"]).set_index("setting")


def _groups(values: pd.Series) -> np.ndarray:
    """Readable groups: quartiles of a many-valued number as "21 to 29", else the values themselves."""
    if pd.api.types.is_numeric_dtype(values.dtype) and values.nunique() > 8:
        edges = np.unique(np.nanquantile(values.to_numpy(dtype=np.float64), [0, 0.25, 0.5, 0.75, 1]))
        cut = pd.cut(values, list(edges), include_lowest=True)
        whole = bool(np.all(np.mod(values.dropna(), 1) == 0))
        labels = {
            iv: (f"{iv.left + (0 if i == 0 else 1):.0f} to {iv.right:.0f}" if whole else f"{iv.left:g} to {iv.right:g}")
            for i, iv in enumerate(cut.cat.categories)
        }
        shown = cut.map(labels).astype(object)
        return np.asarray(shown.where(values.notna(), "(missing)"), dtype=object)
    return np.asarray(values.astype(object).where(values.notna(), "(missing)").astype(str), dtype=object)
