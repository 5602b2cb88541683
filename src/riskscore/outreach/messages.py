"""Message templates: versioned data, linted against the policy, rendered per account."""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from riskscore.errors import PolicyError
from riskscore.outreach.offers import money
from riskscore.outreach.policy import OutreachPolicy, read_document

__all__ = ["DEFAULT_LENDER", "PLACEHOLDERS", "MessageFacts", "Templates"]

DEFAULT_LENDER: dict[str, dict[str, str]] = {
    "en": {"name": "Your lender", "contact": "the number on your card or statement"},
    "zh": {"name": "您的贷款机构", "contact": "卡片或账单上的客服电话"},
}
"""Lender identity quoted in messages when ``lender`` is not given (set your own)."""

PLACEHOLDERS: tuple[str, ...] = (
    "lender",
    "lender_contact",
    "amount",
    "due_date",
    "instalment",
    "term",
    "total",
    "education",
    "plan_education",
    "debt_advice",
    "opt_out",
    "reasons",
)
_LANGS = ("en", "zh")


@dataclass(frozen=True)
class Templates:
    """Templates keyed by ``"action.channel"`` and language, already linted for one policy."""

    name: str
    version: str
    texts: Mapping[str, Mapping[str, str]]
    education: Mapping[str, str]
    plan_education: Mapping[str, str]
    document: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, policy: OutreachPolicy, source: str | Path | Mapping[str, Any] | None = None) -> Templates:
        """Load (the shipped templates by default) and lint against ``policy``; refuse on any breach."""
        doc, origin = read_document(source, "templates_v1.toml", "templates")
        problems: list[str] = []
        texts: dict[str, dict[str, str]] = {}
        for key, by_lang in dict(doc.get("templates", {})).items():
            if not isinstance(by_lang, Mapping) or set(by_lang) != set(_LANGS):
                problems.append(f"template {key}: needs a text for each of {list(_LANGS)}")
                continue
            texts[str(key)] = {str(k): str(v) for k, v in by_lang.items()}
        extras = {}
        for key in ("education", "plan_education"):
            value = doc.get(key, {})
            if not isinstance(value, Mapping) or set(value) != set(_LANGS):
                problems.append(f"[{key}] needs a text for each of {list(_LANGS)}")
                value = {lang: "" for lang in _LANGS}
            extras[key] = {str(k): str(v) for k, v in value.items()}
        if problems:
            raise PolicyError(f"{origin}: " + "; ".join(problems))
        out = cls(
            name=str(doc.get("name", origin)),
            version=str(doc.get("version", "unversioned")),
            texts=texts,
            education=extras["education"],
            plan_education=extras["plan_education"],
            document=json.loads(json.dumps(doc)),
        )
        out.lint(policy, origin)
        return out

    @property
    def hash(self) -> str:
        """SHA-256 of the template document (canonical JSON), first 16 hex digits."""
        canonical = json.dumps(self.document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def lint(self, policy: OutreachPolicy, origin: str = "templates") -> None:
        """Refuse templates with banned content, unknown placeholders or a missing opt-out line."""
        problems = []
        pieces = {
            "education": self.education,
            "plan_education": self.plan_education,
            "debt advice": policy.debt_advice,
            "opt-out text": policy.opt_out_text,
        }
        checked = [(f"template {k}", lang, text) for k, by_lang in self.texts.items() for lang, text in by_lang.items()]
        checked += [(name, lang, text) for name, by_lang in pieces.items() for lang, text in by_lang.items()]
        for where, lang, text in checked:
            problems += [f"{where} ({lang}) {breach.describe()}" for breach in policy.content.breaches(text)]
        for key, by_lang in self.texts.items():
            _, _, channel = key.partition(".")
            for lang, text in by_lang.items():
                fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
                unknown = sorted(set(fields) - set(PLACEHOLDERS))
                if unknown:
                    problems.append(f"template {key} ({lang}): unknown placeholder(s) {unknown}")
                if channel in policy.electronic and policy.opt_out_text and "opt_out" not in fields:
                    rule = "an opt-out line is required in every electronic message"
                    problems.append(f"template {key} ({lang}) has no {{opt_out}}: {rule} (policy {policy.id})")
        if problems:
            raise PolicyError(f"{origin} refused under policy {policy.id}: " + "; ".join(problems))

    def key(self, action: str, channel: str) -> str:
        """Template key of an action on a channel (human review has one brief for all)."""
        return f"{action}.review" if action == "human_review" else f"{action}.{channel}"

    def has(self, action: str, channel: str) -> bool:
        """Whether a template exists for the action on the channel."""
        return self.key(action, channel) in self.texts

    def prepared(self, lang: str, fixed: Mapping[str, str]) -> dict[str, str]:
        """Every template with the ``fixed`` placeholders filled in and spaces tidied, the rest left open.

        Rendering many messages then formats only the per-account fields.
        """
        out = {}
        for key, by_lang in self.texts.items():
            parts = []
            for literal, name, spec, conversion in string.Formatter().parse(by_lang[lang]):
                parts.append(literal.replace("{", "{{").replace("}", "}}"))
                if name is None:
                    continue
                if name in fixed:
                    parts.append(str(fixed[name]).replace("{", "{{").replace("}", "}}"))
                else:
                    parts.append(
                        "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
                    )
            out[key] = " ".join("".join(parts).split())
        return out

    def render(self, action: str, channel: str, lang: str, values: Mapping[str, str]) -> str:
        """The template filled with ``values`` (missing ones empty), spaces tidied."""
        text = self.texts[self.key(action, channel)][lang]
        filled = text.format(**{k: values.get(k, "") for k in PLACEHOLDERS})
        return " ".join(filled.split())


class MessageFacts:
    """The per-account facts messages quote, as arrays, and the templates with the fixed texts filled in."""

    def __init__(
        self,
        frame: pd.DataFrame,
        reasons: np.ndarray,
        policy: OutreachPolicy,
        messages: Templates,
        lang: str,
        lender: Any,
    ) -> None:
        due = pd.DatetimeIndex(frame["due_date"])
        text = np.asarray(due.strftime("%Y-%m-%d"), dtype=object)
        text[np.asarray(due.isna())] = "the due date" if lang == "en" else "到期日"
        self.due = text
        self.amount = frame["amount"].to_numpy(dtype=np.float64)
        self.reasons = reasons
        self.currency, self.lang, self.messages = policy.currency, lang, messages
        self.templates = messages.prepared(
            lang,
            {
                "lender": str(lender["name"]),
                "lender_contact": str(lender["contact"]),
                "education": messages.education[lang],
                "plan_education": messages.plan_education[lang],
                "debt_advice": policy.debt_advice.get(lang, ""),
                "opt_out": policy.opt_out_text.get(lang, ""),
            },
        )
        self.content, self.policy_id = policy.content, policy.id
        self.ids = frame["account_id"].to_numpy()
        self.products = frame["product"].to_numpy(dtype=object) if "product" in frame.columns else None
        days = due.to_numpy()
        self.due_key = np.where(np.isnat(days), np.iinfo(np.int64).max, days.astype(np.int64))  # NaT last
        self.sep = "; " if lang == "en" else "；"
        self.no_reason = "no specific reason" if lang == "en" else "无"

    def render(
        self, i: int, action: str, channel: str, offer: Mapping[str, Any] | None, rows: np.ndarray | None = None
    ) -> str:
        """The message of account ``i``: the prepared template with its own facts.

        With ``rows`` (the accounts of one customer, ``i`` the lead), one
        message for all of them: the amount is their total with each account's
        amount and due date named, the due date the earliest.
        """
        currency = self.currency
        reasons = self.reasons[i] or []
        values = {
            "amount": money(float(self.amount[i]), currency),
            "due_date": self.due[i],
            "reasons": self.sep.join(r["text"] for r in reasons) or self.no_reason,
        }
        if rows is not None and len(rows) > 1:
            values["amount"], values["due_date"] = self._accounts(rows)
        if offer is not None:
            values["instalment"] = money(float(offer["instalment"]), currency)
            values["term"] = str(offer["term_months"])
            values["total"] = money(float(offer["total"]), currency)
        else:
            values["instalment"] = values["term"] = values["total"] = ""
        key = self.messages.key(action, channel)
        text = self.templates[key].format(**values)
        if not self.content.clean(text):  # the last line of defence: reasons quote names from the data
            breach = self.content.breaches(text)[0]
            account = self.ids[i].item() if hasattr(self.ids[i], "item") else self.ids[i]
            raise PolicyError(
                f"the {key} message for account {account!r} {breach.describe()} under policy "
                f"{self.policy_id}: no message is sent with banned content; the text came from the lender, "
                "the reasons or the offer, not the linted template"
            )
        return text

    def _accounts(self, rows: np.ndarray) -> tuple[str, str]:
        """(total amount naming each account, earliest due date) of a customer's accounts, earliest due first."""
        due = self.due_key[rows].tolist()
        ids = self.ids[rows].tolist()
        # Earliest due first, ties by account id (a handful of accounts: plain Python sorts them fastest).
        order = np.asarray([j for _, _, j in sorted(zip(due, ids, rows.tolist(), strict=True))], dtype=np.int64)
        amounts = self.amount[order]
        total = float(np.nansum(amounts)) if np.isfinite(amounts).any() else float("nan")
        names = _PRODUCT_NAMES[self.lang]
        parts = []
        for j, value in zip(order.tolist(), amounts.tolist(), strict=True):
            product = str(self.products[j]) if self.products is not None else ""
            tail = str(self.ids[j].item() if hasattr(self.ids[j], "item") else self.ids[j])[-4:]
            name = names.get(product, names[""])
            if self.lang == "en":
                parts.append(f"{name} ending {tail}: {money(value, self.currency)} due {self.due[j]}")
            else:
                parts.append(f"{name}尾号{tail}：{money(value, self.currency)}，{self.due[j]}到期")
        if self.lang == "en":
            text = f"{money(total, self.currency)} in total ({'; '.join(parts)})"
        else:
            text = f"{money(total, self.currency)}（合计；{'；'.join(parts)}）"
        return text, str(self.due[order[0]])


_PRODUCT_NAMES = {
    "en": {"card": "card", "loan": "loan", "": "account"},
    "zh": {"card": "信用卡", "loan": "贷款", "": "账户"},
}
