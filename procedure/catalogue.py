"""The metric catalogue a new installation starts from: common operations KPIs, each
with its unit, direction and how it is collected (DESIGN section 5). Administrators
change the catalogue afterwards; seeding never overwrites what they changed."""

from __future__ import annotations

from engine.pack import MetricSeed

# code, zh, en, category (4.1), unit, direction, collection method
METRICS: tuple[MetricSeed, ...] = tuple(
    MetricSeed(*row)
    for row in (
        (
            "AVAIL",
            "服务可用率",
            "Availability",
            "quality",
            "%",
            "higher_better",
            "监控系统按月统计",
        ),
        (
            "MTTR",
            "平均修复时间",
            "Mean time to repair",
            "efficiency",
            "h",
            "lower_better",
            "事件管理系统统计",
        ),
        (
            "MTBF",
            "平均故障间隔",
            "Mean time between failures",
            "quality",
            "h",
            "higher_better",
            "事件管理系统统计",
        ),
        (
            "FRT",
            "首次响应时间",
            "First-response time",
            "efficiency",
            "min",
            "lower_better",
            "服务台工单统计",
        ),
        ("SLA", "SLA 达成率", "SLA compliance", "quality", "%", "higher_better", "服务级别报告"),
        (
            "FCR",
            "一次解决率",
            "First-contact resolution",
            "effect",
            "%",
            "higher_better",
            "服务台工单统计",
        ),
        (
            "CSAT",
            "客户满意度",
            "Customer satisfaction",
            "effect",
            "1-5",
            "higher_better",
            "满意度调查",
        ),
        (
            "CHG_OK",
            "变更成功率",
            "Change success rate",
            "quality",
            "%",
            "higher_better",
            "变更管理记录",
        ),
        (
            "CHG_EMERG",
            "紧急变更占比",
            "Emergency-change ratio",
            "efficiency",
            "%",
            "lower_better",
            "变更管理记录",
        ),
        (
            "BACKLOG",
            "积压工单数",
            "Backlog",
            "efficiency",
            "count",
            "lower_better",
            "服务台工单统计",
        ),
        (
            "REPEAT",
            "重复事件率",
            "Repeat-incident rate",
            "quality",
            "%",
            "lower_better",
            "问题管理记录",
        ),
        (
            "COST_TKT",
            "单张工单成本",
            "Cost per ticket",
            "cost",
            "CNY",
            "lower_better",
            "财务与工单数据",
        ),
    )
)
