"""The KPI calculator: well-known business ratios derived from a ``metrics`` object.

Each derived KPI carries its formula spelled with the input's own metric names, so a reader
(or the narrator) can see exactly how ``margin_pct = 30`` came out of ``sales`` and ``costs``.
Percentages end in ``_pct``, fractions in ``_rate`` (CONTRACT section 5).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bi_engine.domain.result import KPI, Finding, Severity
from workers.analytics.parts import Part, finding, kpi
from workers.analytics.rounding import num, pct

#: Roles a metric can play, with the names (English and Italian) that mean it.
ROLES: dict[str, tuple[str, ...]] = {
    "revenue": (
        "revenue",
        "revenues",
        "sales",
        "turnover",
        "income",
        "total_revenue",
        "gross_revenue",
        "net_sales",
        "fatturato",
        "ricavi",
        "vendite",
    ),
    "costs": (
        "costs",
        "cost",
        "expenses",
        "total_costs",
        "total_cost",
        "opex",
        "spend",
        "costi",
        "spese",
    ),
    "cogs": ("cogs", "cost_of_goods_sold", "cost_of_sales"),
    "profit": ("profit", "net_profit", "net_income", "earnings", "utile"),
    "investment": (
        "investment",
        "investments",
        "marketing_spend",
        "ad_spend",
        "capex",
        "investimento",
        "investimenti",
    ),
    "orders": ("orders", "transactions", "purchases", "deals", "ordini"),
    "customers": ("customers", "clients", "buyers", "active_customers", "clienti"),
    "new_customers": ("new_customers", "acquired_customers", "nuovi_clienti"),
    "visitors": ("visitors", "sessions", "visits", "leads", "traffic", "prospects", "visitatori"),
    "conversions": ("conversions", "signups", "converted", "conversioni"),
    "churned": ("churned", "churned_customers", "lost_customers"),
    "employees": ("employees", "headcount", "fte", "dipendenti"),
}
_PREVIOUS = re.compile(
    r"^(?:previous|prev|last)_(.+)$|^(.+?)_(?:previous|prev|last_period|last_year|ly)$"
)
_TARGET = re.compile(r"^target_(.+)$|^(.+?)_target$")


def normalise(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def roles(metrics: dict[str, float]) -> dict[str, str]:
    """Role -> the input's own key, first match in the input order."""
    found: dict[str, str] = {}
    for key in metrics:
        for role, names in ROLES.items():
            if normalise(key) in names and role not in found:
                found[role] = key
    return found


def analyze(metrics: dict[str, float]) -> Part:
    """The metrics as KPIs, the ratios derived from them, and alerts on the worrying ones."""
    part = Part(kpis=[kpi(name, value, "", name) for name, value in metrics.items()])
    derived = derive(metrics)
    part.kpis += derived
    part.findings += alerts(metrics, {k.name: k for k in derived})
    part.facts["metrics"] = {
        "given": {k: num(v) for k, v in metrics.items()},
        "derived": {k.name: k.value for k in derived},
        "formulas": {k.name: k.formula for k in derived},
    }
    return part


def derive(metrics: dict[str, float]) -> list[KPI]:
    """Every ratio the metrics allow; divisions by zero are skipped, never infinite."""
    role = roles(metrics)
    out: list[KPI] = []

    def add(
        name: str,
        needs: tuple[str, ...],
        unit: str,
        label: str,
        fn: Callable[..., float],
        formula: str,
    ) -> None:
        if all(r in role for r in needs):
            values = [metrics[role[r]] for r in needs]
            try:
                value = fn(*values)
            except ZeroDivisionError:
                return
            text = formula.format(**{r: role[r] for r in needs})
            out.append(kpi(name, value, unit, label, text))

    if "profit" not in role:
        add(
            "profit",
            ("revenue", "costs"),
            "currency",
            "Profit",
            lambda r, c: r - c,
            "{revenue} - {costs}",
        )
    add(
        "margin_pct",
        ("revenue", "profit"),
        "%",
        "Profit margin",
        lambda r, p: p / r * 100,
        "{profit} / {revenue} * 100",
    )
    if "profit" not in role:
        add(
            "margin_pct",
            ("revenue", "costs"),
            "%",
            "Profit margin",
            lambda r, c: (r - c) / r * 100,
            "({revenue} - {costs}) / {revenue} * 100",
        )
    _ratios(add, role)
    out += _comparisons(metrics)
    return out


def _ratios(add: Callable[..., None], role: dict[str, str]) -> None:
    add(
        "gross_margin_pct",
        ("revenue", "cogs"),
        "%",
        "Gross margin",
        lambda r, c: (r - c) / r * 100,
        "({revenue} - {cogs}) / {revenue} * 100",
    )
    add(
        "cost_ratio_pct",
        ("revenue", "costs"),
        "%",
        "Costs as a share of revenue",
        lambda r, c: c / r * 100,
        "{costs} / {revenue} * 100",
    )
    if "investment" in role:
        if "profit" in role:
            add(
                "roi_pct",
                ("profit", "investment"),
                "%",
                "Return on investment",
                lambda p, i: p / i * 100,
                "{profit} / {investment} * 100",
            )
        else:
            add(
                "roi_pct",
                ("revenue", "investment"),
                "%",
                "Return on investment",
                lambda r, i: (r - i) / i * 100,
                "({revenue} - {investment}) / {investment} * 100",
            )
    else:
        add(
            "roi_pct",
            ("revenue", "costs"),
            "%",
            "Return on costs (ROI on spend)",
            lambda r, c: (r - c) / c * 100,
            "({revenue} - {costs}) / {costs} * 100",
        )
    if "conversions" in role:
        add(
            "conversion_rate",
            ("conversions", "visitors"),
            "ratio",
            "Conversion rate",
            lambda c, v: c / v,
            "{conversions} / {visitors}",
        )
    else:
        add(
            "conversion_rate",
            ("orders", "visitors"),
            "ratio",
            "Conversion rate",
            lambda o, v: o / v,
            "{orders} / {visitors}",
        )
    add(
        "average_order_value",
        ("revenue", "orders"),
        "currency",
        "Average order value",
        lambda r, o: r / o,
        "{revenue} / {orders}",
    )
    add(
        "cost_per_order",
        ("costs", "orders"),
        "currency",
        "Cost per order",
        lambda c, o: c / o,
        "{costs} / {orders}",
    )
    add(
        "revenue_per_customer",
        ("revenue", "customers"),
        "currency",
        "Revenue per customer",
        lambda r, c: r / c,
        "{revenue} / {customers}",
    )
    add(
        "customer_acquisition_cost",
        ("investment", "new_customers"),
        "currency",
        "Customer acquisition cost",
        lambda i, n: i / n,
        "{investment} / {new_customers}",
    )
    add(
        "churn_rate",
        ("churned", "customers"),
        "ratio",
        "Churn rate",
        lambda ch, c: ch / c,
        "{churned} / {customers}",
    )
    add(
        "revenue_per_employee",
        ("revenue", "employees"),
        "currency",
        "Revenue per employee",
        lambda r, e: r / e,
        "{revenue} / {employees}",
    )


def _comparisons(metrics: dict[str, float]) -> list[KPI]:
    """Growth against ``previous_x``/``x_previous`` and attainment of ``target_x``/``x_target``."""
    by_norm = {normalise(k): k for k in metrics}
    out = []
    for key, value in metrics.items():
        for pattern, kind in ((_PREVIOUS, "growth"), (_TARGET, "target")):
            match = pattern.match(normalise(key))
            base = next((g for g in match.groups() if g), None) if match else None
            current = by_norm.get(base) if base else None
            if current is None or value == 0:
                continue
            now = metrics[current]
            if kind == "growth":
                out.append(
                    kpi(
                        f"{current}_growth_pct",
                        (now - value) / abs(value) * 100,
                        "%",
                        f"Growth of {current}",
                        f"({current} - {key}) / |{key}| * 100",
                    )
                )
            else:
                out.append(
                    kpi(
                        f"{current}_target_attainment_pct",
                        now / value * 100,
                        "%",
                        f"{current} against target",
                        f"{current} / {key} * 100",
                    )
                )
    return out


def alerts(metrics: dict[str, float], derived: dict[str, KPI]) -> list[Finding]:
    """KPI alerts: losses, thin margins, shrinking figures, high churn, missed targets."""
    out = []
    margin = _value(derived, "margin_pct")
    profit = _value(derived, "profit")
    if margin is not None and margin < 5:
        severity: Severity = "critical" if margin < -20 else ("high" if margin < 0 else "low")
        title = "The business is losing money" if margin < 0 else "The profit margin is thin"
        out.append(
            finding(
                "kpi_alert",
                "margin_pct",
                title,
                severity=severity,
                confidence=1.0,
                detail=f"The profit margin is {pct(margin)}%.",
                evidence={"margin_pct": pct(margin), "profit": num(profit)},
            )
        )
    for name, item in derived.items():
        value = item.value
        if value is None:
            continue
        if name.endswith("_growth_pct") and value < 0:
            metric = name.removesuffix("_growth_pct")
            sev: Severity = "high" if value <= -25 else ("medium" if value <= -10 else "low")
            out.append(
                finding(
                    "kpi_alert",
                    metric,
                    f"{metric} is shrinking",
                    severity=sev,
                    confidence=1.0,
                    detail=f"{metric} changed by {pct(value)}%.",
                    evidence={"growth_pct": pct(value), "value": num(metrics[metric])},
                )
            )
        if name.endswith("_target_attainment_pct") and value < 90:
            metric = name.removesuffix("_target_attainment_pct")
            out.append(
                finding(
                    "kpi_alert",
                    metric,
                    f"{metric} is below target",
                    severity="medium" if value >= 70 else "high",
                    confidence=1.0,
                    detail=f"{metric} reached {pct(value)}% of its target.",
                    evidence={"target_attainment_pct": pct(value)},
                )
            )
    churn = _value(derived, "churn_rate")
    if churn is not None and churn > 0.1:
        out.append(
            finding(
                "kpi_alert",
                "churn_rate",
                "Customer churn is high",
                severity="high" if churn > 0.25 else "medium",
                confidence=1.0,
                detail="More than one customer in ten was lost.",
                evidence={"churn_rate": round(churn, 3)},
            )
        )
    return out


def _value(derived: dict[str, KPI], name: str) -> float | None:
    item = derived.get(name)
    return None if item is None or item.value is None else float(item.value)


def as_dict(kpis: list[KPI]) -> dict[str, Any]:
    return {k.name: {"value": k.value, "unit": k.unit, "formula": k.formula} for k in kpis}
