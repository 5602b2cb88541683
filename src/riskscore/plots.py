"""Pictures of models, explanations, stability and outreach results (matplotlib, headless; each returns the figure).

Needs matplotlib: ``pip install 'riskscore[plots]'``. Nothing here changes a
result: the functions only read targets and PDs, an
:class:`~riskscore.Explanation`, a reason table, scores, a stability table, or
an outreach read-out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "beeswarm",
    "calibration",
    "gains",
    "performance_over_time",
    "psi_by_feature",
    "qini",
    "readout",
    "reason_frequency",
    "roc_ks",
    "score_distribution",
    "waterfall",
]


def _pyplot() -> Any:
    try:
        import matplotlib

        if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
            import os

            if not os.environ.get("DISPLAY") and os.name != "nt":
                matplotlib.use("Agg")  # no screen: draw to files
        import matplotlib.pyplot as plt
    except ImportError as exc:  # optional dependency
        raise ImportError("riskscore.plots needs matplotlib: pip install 'riskscore[plots]'") from exc
    return plt


_WATERFALL_WORDS = {
    "en": {
        "title": "account {account}{when}: PD {pd} (calibrated), {points} points, band {band}",
        "when": " at {date}",
        "sub": "log-odds of default: average account {base:.2f}, this account {margin:.2f} before calibration",
        "x": "log-odds of default (each bar adds one reason's contributions to the average)",
        "rest": "{n} other reasons",
        "protected": "protected attributes (never a reason)",
        "none": "no reason raises this account's risk above the average",
    },
    "zh": {
        "title": "账户 {account}{when}：违约概率 {pd}（校准后），{points} 分，等级 {band}",
        "when": "（{date}）",
        "sub": "违约对数几率：平均账户 {base:.2f}，本账户 {margin:.2f}（校准前）",
        "x": "违约对数几率（每条表示一个原因在平均值上增加的贡献）",
        "rest": "其他 {n} 个原因",
        "protected": "受保护属性（不作为原因）",
        "none": "没有原因使该账户风险高于平均水平",
    },
}


def waterfall(explanation: Any, account_id: Any, as_of: Any = None, max_reasons: int = 10, lang: str = "en") -> Any:
    """How one score was built, reason by reason: the bars are the reasons ``reason_codes`` states.

    Bars start at the base value (the average account's margin) and each adds
    one reason's summed contributions: first the reasons ``reason_codes`` gives
    for this score, in its order and with its values (numbered as the texts
    under the chart), then the other reasons (those that lower the risk, or
    rank below the top), largest first, the rest summed in one bar. The title
    gives the calibrated PD, the score points and the band. Chinese (``lang="zh"``)
    is drawn with Noto Sans CJK SC (``riskscore[plots]`` installs it).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from riskscore.reasons import LANGUAGES, load_reason_catalogue

    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {list(LANGUAGES)}; got {lang!r}")
    if int(max_reasons) != max_reasons or max_reasons < 1:
        raise ValueError(f"max_reasons must be a whole number >= 1; got {max_reasons!r}")
    plt = _pyplot()
    explanation.for_account(account_id, as_of)  # one row, or a clear error
    index = explanation.values.index
    mask = np.asarray(index.get_level_values("account_id") == account_id)
    if as_of is not None:
        mask &= np.asarray(index.get_level_values("as_of") == pd.Timestamp(as_of))
    sub = _subset(explanation, mask)
    sums = sub.reason_contributions().iloc[0]
    reasons = sub.reason_codes(lang=lang)
    words, cat = _WATERFALL_WORDS[lang], load_reason_catalogue()
    lead = [str(c) for c in reasons["reason_code"]]
    others = sums.drop(lead)
    others = others[others != 0].reindex(others[others != 0].abs().sort_values(ascending=False, kind="stable").index)
    room = max(0, int(max_reasons) - len(lead))
    shown, rest = lead + [str(c) for c in others.index[:room]], others.iloc[room:]

    def title(code: str) -> str:
        if code == "(protected)":
            return words["protected"]
        entry = cat.reasons.get(code, cat.fallback)
        return str(entry["title"][lang])

    labels = [f"{i + 1}. {title(c)}" if i < len(lead) else title(c) for i, c in enumerate(shown)]
    values = [float(sums[c]) for c in shown]
    if len(rest):
        labels.append(words["rest"].format(n=len(rest)))
        values.append(float(rest.sum()))
    base = explanation.base_value
    margin = base + float(sums.sum())
    starts = base + np.concatenate([[0.0], np.cumsum(values)[:-1]])
    lines = max(1, len(reasons))
    height = 1.3 + 0.42 * len(values) + 0.8 + 0.17 * lines  # title, bars, axis label, the reason texts
    with plt.rc_context(_font_rc(lang)):
        fig, ax = plt.subplots(figsize=(10, height))
        y = np.arange(len(values))[::-1]
        colours = ["#c0392b" if v > 0 else "#2471a3" for v in values]
        ax.barh(y, values, left=starts, color=colours, height=0.6)
        ax.set_yticks(y, labels, fontsize=9)
        for yi, start, v in zip(y, starts, values, strict=True):
            ax.text(start + v, yi, f" {v:+.2f} ", va="center", ha="left" if v >= 0 else "right", fontsize=8)
        ax.axvline(base, color="grey", lw=0.8, ls="--")
        ax.axvline(margin, color="black", lw=0.8)
        ax.set_xlabel(words["x"], fontsize=9)
        when = "" if as_of is None else words["when"].format(date=pd.Timestamp(as_of).date())
        p = float(sub.pd_.iloc[0]) if sub.pd_ is not None else _sigmoid(margin)
        shown_pd = ">99.9%" if p > 0.999 else "<0.1%" if p < 0.001 else f"{p:.1%}"
        points = "-" if sub.points_ is None else f"{float(sub.points_.iloc[0]):.0f}"
        band = "-" if sub.band_ is None else str(sub.band_.iloc[0])
        ax.set_title(
            words["title"].format(account=account_id, when=when, pd=shown_pd, points=points, band=band)
            + "\n"
            + words["sub"].format(base=base, margin=margin),
            fontsize=10,
        )
        ends = starts + np.asarray(values)
        low, high = min(starts.min(), ends.min(), base), max(starts.max(), ends.max(), base)
        pad = 0.12 * (high - low or 1.0)
        ax.set_xlim(low - pad, high + pad)
        text = "\n".join(f"{r.rank}. {r.text}" for r in reasons.itertuples()) or words["none"]
        fig.text(0.01, 0.01, text, fontsize=8, va="bottom", ha="left", wrap=True)
        fig.subplots_adjust(left=0.36, bottom=(0.75 + 0.17 * lines) / height, top=1 - 0.6 / height)
    return fig


def _font_rc(lang: str) -> dict[str, Any]:
    """Matplotlib settings that draw ``lang``: for Chinese, a CJK font found (or a clear error)."""
    if lang != "zh":
        return {}
    from matplotlib import font_manager

    path = _cjk_font()
    font_manager.fontManager.addfont(str(path))
    name = font_manager.FontProperties(fname=str(path)).get_name()
    return {"font.family": [name, "DejaVu Sans"], "axes.unicode_minus": False}


def _cjk_font() -> Any:
    """The Noto Sans CJK SC file of the ``mplfonts`` package (the ``plots`` extra), found without importing it."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("mplfonts")
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder) / "fonts" / "NotoSansCJKsc-Regular.otf"
            if path.is_file():
                return path
    raise ImportError(
        "a Chinese chart needs a CJK font, or its text would be drawn as empty boxes: "
        "pip install 'riskscore[plots]' (it installs mplfonts, with Noto Sans CJK SC)"
    )


def beeswarm(explanation: Any, max_features: int = 15, max_points: int = 5000, random_state: int = 0) -> Any:
    """Portfolio view: each dot is one observation's contribution of a feature.

    Features are the ``max_features`` with the largest mean absolute
    contribution; dots are coloured by the feature's value (rank within the
    feature: blue low, red high, grey missing or categorical).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    values = explanation.values
    if len(values) > max_points:
        keep = np.random.default_rng(random_state).choice(len(values), size=max_points, replace=False)
        values, data = values.iloc[np.sort(keep)], explanation.data.iloc[np.sort(keep)]
    else:
        data = explanation.data
    top = values.abs().mean().sort_values(ascending=False).index[:max_features]
    fig, ax = plt.subplots(figsize=(9, 1 + 0.45 * len(top)))
    rng = np.random.default_rng(random_state)
    for i, feature in enumerate(top[::-1]):
        x = values[feature].to_numpy()
        column = data[feature]
        if isinstance(column.dtype, pd.CategoricalDtype):
            colour = np.full(len(x), 0.5)
        else:
            colour = column.rank(pct=True).to_numpy()
        jitter = rng.uniform(-0.3, 0.3, len(x))
        missing = np.isnan(colour)
        dots = ax.scatter(x[~missing], i + jitter[~missing], c=colour[~missing], cmap="coolwarm", s=4, vmin=0, vmax=1)
        ax.scatter(x[missing], i + jitter[missing], color="lightgrey", s=4)
    ax.set_yticks(range(len(top)), list(top[::-1]), fontsize=8)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("contribution to the log-odds of default")
    ax.set_title(f"contributions of the {len(top)} most influential features ({len(values):,} observations)")
    if len(top):
        bar = fig.colorbar(dots, ax=ax, pad=0.01, fraction=0.04, ticks=[0, 1])
        bar.ax.set_yticklabels(["low", "high"])
        bar.set_label("feature value (rank within the feature; grey: missing or a category)", fontsize=8)
    fig.subplots_adjust(left=0.32)
    return fig


def performance_over_time(by_period: pd.DataFrame, sample: Any = None, metric: str = "auc") -> Any:
    """A metric per period (``evaluate(..., by="as_of").by_period``), coloured by sample when given.

    ``sample`` is one label per period (development, hold-out, out of time):
    in-sample months read high, so a reader must see which points are which.
    """
    plt = _pyplot()
    if metric not in by_period.columns:
        raise ValueError(f"metric must be a column of by_period; got {metric!r}, known: {list(by_period.columns)}")
    dates = pd.DatetimeIndex(by_period.index)
    labels = np.full(len(dates), "all", dtype=object) if sample is None else np.asarray(sample, dtype=object)
    fig, ax = plt.subplots(figsize=(9, 3.6))
    colours = {"before training": "tab:grey", "development": "tab:orange", "hold-out": "tab:purple",
               "out of time": "tab:blue", "all": "tab:blue"}  # fmt: skip
    ax.plot(dates, by_period[metric].to_numpy(), color="lightgrey", lw=1, zorder=1)
    for name in dict.fromkeys(labels.tolist()):
        mask = labels == name
        ax.scatter(dates[mask], by_period[metric].to_numpy()[mask], color=colours.get(str(name), "tab:green"),
                   label=str(name), zorder=2, s=22)  # fmt: skip
    ax.set_xlabel("as_of (month start)")
    ax.set_ylabel(metric.upper() if metric in ("auc", "ks") else metric)
    ax.set_title(f"{metric.upper() if metric in ('auc', 'ks') else metric} per month, by sample")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def reason_frequency(reasons: pd.DataFrame, rank: int | None = 1, top: int = 15) -> Any:
    """How often each reason code is given (among the principal reasons when ``rank=1``).

    Parameters
    ----------
    reasons : DataFrame
        The output of ``Explanation.reason_codes``.
    rank : int or None, default=1
        Count only reasons of this rank; ``None`` counts every rank.
    top : int, default=15

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    chosen = reasons if rank is None else reasons[reasons["rank"] == rank]
    counts = chosen["reason_code"].value_counts().sort_values(ascending=True).tail(top)
    fig, ax = plt.subplots(figsize=(8, 1 + 0.4 * max(1, len(counts))))
    ax.barh(counts.index, counts.to_numpy(), color="#7d3c98")
    ax.set_xlabel("observations")
    which = "principal reason" if rank == 1 else ("reason" if rank is None else f"reason of rank {rank}")
    ax.set_title(f"{which} frequency ({chosen[['rank']].shape[0]:,} reasons)")
    fig.subplots_adjust(left=0.28)
    return fig


def _subset(explanation: Any, mask: np.ndarray) -> Any:
    from riskscore.explain import Explanation

    return Explanation(
        values=explanation.values[mask],
        base_value=explanation.base_value,
        margin=explanation.margin[mask],
        data=explanation.data[mask],
        catalogue=explanation.catalogue,
        pd_=None if explanation.pd_ is None else explanation.pd_[mask],
        model_version=explanation.model_version,
        points_=None if explanation.points_ is None else explanation.points_[mask],
        band_=None if explanation.band_ is None else explanation.band_[mask],
    )


def _sigmoid(x: float) -> float:
    return float(1.0 / (1.0 + np.exp(-x)))


def _xy(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    y_arr = np.asarray(pd.Series(y).astype("float64"), dtype=np.float64)
    p_arr = np.asarray(p, dtype=np.float64)
    if y_arr.shape != p_arr.shape or np.isnan(y_arr).any() or np.isnan(p_arr).any():
        raise ValueError("y and p must be the same length, without missing values")
    return y_arr, p_arr


def roc_ks(y: Any, p: Any) -> Any:
    """ROC curve with its AUC, and the KS statistic where the two score distributions part most."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    y_arr, p_arr = _xy(y, p)
    fpr, tpr, _ = roc_curve(y_arr, p_arr)
    auc = roc_auc_score(y_arr, p_arr)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    left.plot(fpr, tpr, color="tab:blue", label=f"AUC {auc:.3f} (Gini {2 * auc - 1:.3f})")
    left.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    left.set_xlabel("false positive rate")
    left.set_ylabel("true positive rate")
    left.legend(loc="lower right")
    left.set_title("ROC")
    order = np.argsort(-p_arr, kind="stable")
    share = np.arange(1, len(order) + 1) / len(order)
    bad = np.cumsum(y_arr[order]) / max(y_arr.sum(), 1)
    good = np.cumsum(1 - y_arr[order]) / max((1 - y_arr).sum(), 1)
    gap = bad - good
    at = int(np.argmax(gap))
    right.plot(share, bad, label="defaults", color="tab:red")
    right.plot(share, good, label="non-defaults", color="tab:green")
    right.vlines(share[at], good[at], bad[at], color="black", lw=1.2, label=f"KS {gap[at]:.3f}")
    right.set_xlabel("share of accounts, riskiest first")
    right.set_ylabel("cumulative share")
    right.legend(loc="lower right")
    right.set_title("KS")
    fig.tight_layout()
    return fig


def calibration(y: Any, p: Any, bins: int = 10) -> Any:
    """Observed default rate against mean predicted PD per PD decile (or ``bins`` quantiles)."""
    plt = _pyplot()
    y_arr, p_arr = _xy(y, p)
    groups = pd.qcut(pd.Series(p_arr), q=bins, duplicates="drop", labels=False)
    table = pd.DataFrame({"p": p_arr, "y": y_arr, "g": groups}).groupby("g").agg(p=("p", "mean"), y=("y", "mean"))
    fig, ax = plt.subplots(figsize=(5.5, 5))
    top = float(max(table["p"].max(), table["y"].max()) * 1.05)
    ax.plot([0, top], [0, top], color="grey", lw=0.8, ls="--", label="perfect calibration")
    ax.plot(table["p"], table["y"], marker="o", color="tab:blue", label="observed")
    ax.set_xlabel("mean predicted PD")
    ax.set_ylabel("observed default rate")
    ax.set_title(f"calibration ({len(table)} quantile bins)")
    ax.legend(loc="upper left")
    return fig


def gains(y: Any, p: Any) -> Any:
    """Cumulative share of defaults captured (gains) and lift, accounts sorted riskiest first."""
    plt = _pyplot()
    y_arr, p_arr = _xy(y, p)
    order = np.argsort(-p_arr, kind="stable")
    share = np.arange(1, len(order) + 1) / len(order)
    captured = np.cumsum(y_arr[order]) / max(y_arr.sum(), 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    left.plot(share, captured, color="tab:blue", label="model")
    left.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="random")
    left.set_xlabel("share of accounts, riskiest first")
    left.set_ylabel("share of defaults captured")
    left.legend(loc="lower right")
    left.set_title("gains")
    right.plot(share, captured / share, color="tab:orange")
    right.axhline(1, color="grey", lw=0.8, ls="--")
    right.set_xlabel("share of accounts, riskiest first")
    right.set_ylabel("lift")
    right.set_title("lift")
    fig.tight_layout()
    return fig


def score_distribution(scores: pd.DataFrame) -> Any:
    """Accounts per risk band and the PD distribution within each (``model.score(X)``)."""
    plt = _pyplot()
    bands = scores["band"].astype(str)
    order = sorted(bands.unique())
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    counts = bands.value_counts().reindex(order)
    left.bar(order, counts.to_numpy(), color="tab:blue")
    for i, n in enumerate(counts.to_numpy()):
        left.text(i, n, f"{n:,}", ha="center", va="bottom", fontsize=8)
    left.set_xlabel("band")
    left.set_ylabel("accounts")
    left.set_title("accounts per band")
    data = [scores.loc[(bands == b).to_numpy(), "pd"].to_numpy() for b in order]
    right.boxplot(data, tick_labels=order, showfliers=False)
    right.set_yscale("log")
    right.set_xlabel("band")
    right.set_ylabel("PD (log scale)")
    right.set_title("PD within each band")
    fig.tight_layout()
    return fig


def psi_by_feature(table: pd.DataFrame, top: int = 20) -> Any:
    """The features whose distribution moved most (``monitor.stability``), with the 0.10 and 0.25 marks."""
    plt = _pyplot()
    shown = table.sort_values("psi", ascending=False).head(top).iloc[::-1]
    colours = ["tab:red" if v >= 0.25 else "tab:orange" if v >= 0.10 else "tab:green" for v in shown["psi"]]
    fig, ax = plt.subplots(figsize=(8, 1 + 0.35 * len(shown)))
    ax.barh(range(len(shown)), shown["psi"].to_numpy(), color=colours)
    ax.set_yticks(range(len(shown)), list(shown.index), fontsize=8)
    for mark in (0.10, 0.25):
        ax.axvline(mark, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("population stability index")
    ax.set_title(f"stability: the {len(shown)} features that moved most")
    fig.subplots_adjust(left=0.35)
    return fig


def readout(table: pd.DataFrame, title: str | None = None) -> Any:
    """The uplift of each group of a read-out (``riskscore.outreach.readout``) with its confidence interval.

    One row per group: the point is the uplift (fewer reaching 30+ days past
    due, in percentage points; right of zero the contact helped), the line its
    interval; the column on the right gives the figure and the accounts
    treated vs held out. A group too small to say anything shows its minimum
    detectable effect instead.
    """
    plt = _pyplot()
    needed = {"uplift", "ci_low", "ci_high", "enough", "mde", "treated", "control", "rate_treated", "rate_control"}
    if not needed <= set(table.columns):
        raise ValueError(f"plots.readout needs a read-out table (columns {sorted(needed)}); got {list(table.columns)}")
    shown = table.iloc[::-1]
    labels = []
    for key in shown.index:
        parts = [str(k) for k in (key if isinstance(key, tuple) else (key,)) if str(k)]
        labels.append("all groups" if parts == ["all"] else " / ".join(parts))
    level = table.attrs.get("confidence", 0.95)
    height = 1.9 + 0.38 * len(shown)
    fig, ax = plt.subplots(figsize=(11, height))
    for i, (_, row) in enumerate(shown.iterrows()):
        count = f"{int(row['treated']):,} vs {int(row['control']):,}"
        if bool(row["enough"]) and np.isfinite(row["uplift"]):
            colour = "tab:green" if row["ci_low"] > 0 else "tab:red" if row["ci_high"] < 0 else "tab:grey"
            ax.plot([100 * row["ci_low"], 100 * row["ci_high"]], [i, i], color=colour, lw=2.5, solid_capstyle="butt")
            ax.plot(100 * row["uplift"], i, "o", color="black", ms=5)
            text, shade = (f"{100 * row['uplift']:+.1f} pp [{100 * row['ci_low']:+.1f}, {100 * row['ci_high']:+.1f}]"
                           f"  ({count})"), "black"  # fmt: skip
        elif np.isfinite(row["mde"]) and (row["rate_treated"] > 0 or row["rate_control"] > 0):
            text, shade = f"too few to say: detectable {100 * row['mde']:.1f} pp  ({count})", "tab:grey"
        else:
            text, shade = f"too few to say: no delinquency in either arm  ({count})", "tab:grey"
        ax.text(1.02, i, text, transform=ax.get_yaxis_transform(), va="center", fontsize=8, color=shade)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_ylim(-0.7, len(shown) - 0.3)
    ax.set_yticks(range(len(shown)), labels, fontsize=8)
    ax.set_xlabel(f"uplift: fewer reaching 30+ DPD, percentage points ({level:.0%} interval)")
    ax.set_title(title or "what each treatment achieved against its control group (right of 0: it helped)")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=c, lw=2.5, label=t) for c, t in
               (("tab:green", "helped (interval above 0)"), ("tab:grey", "not distinguishable from 0"),
                ("tab:red", "harmed (interval below 0)"))]  # fmt: skip
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.41, 0.1 / height), ncol=3, fontsize=8,
               frameon=False)  # fmt: skip
    fig.subplots_adjust(left=0.2, right=0.62, bottom=0.95 / height, top=1 - 0.45 / height)
    return fig


def qini(outcome: Any, treated: Any, scores: Any) -> Any:
    """Qini curves: delinquencies averted among the accounts ranked first by each score, against random targeting.

    ``scores`` is one array or a mapping of names to arrays (for instance an
    :class:`~riskscore.outreach.UpliftModel`'s prediction against the PD),
    over randomised decisions with ``outcome`` (reached 30+ DPD) and
    ``treated`` (contacted, or held out).
    """
    from riskscore.outreach.uplift import qini_curve

    plt = _pyplot()
    named = dict(scores) if isinstance(scores, dict) else {"score": scores}
    fig, ax = plt.subplots(figsize=(6.5, 5))
    curve = None
    for name, score in named.items():
        curve = qini_curve(outcome, treated, score)
        ax.plot(100 * curve["share"], curve["averted"], label=f"{name} (Qini {curve.attrs['qini']:+.2f})")
    if curve is not None:
        ax.plot(100 * curve["share"], curve["random"], color="grey", ls="--", lw=0.8, label="random targeting")
    ax.set_xlabel("share of accounts contacted, highest score first (%)")
    ax.set_ylabel("delinquencies averted")
    ax.set_title("Qini: who does a contact help?")
    ax.legend(loc="upper left", fontsize=8)
    return fig
