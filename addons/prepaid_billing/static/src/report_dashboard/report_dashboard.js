/** @odoo-module */

import { Component, onWillStart, onWillUnmount, useEffect, useRef, useState } from "@odoo/owl";
import { loadBundle } from "@web/core/assets";
import { cookie } from "@web/core/browser/cookie";
import { getColor, hexToRGBA } from "@web/core/colors/colors";
import { _t } from "@web/core/l10n/translation";
import { registry } from "@web/core/registry";
import { formatFloat } from "@web/core/utils/numbers";
import { useService } from "@web/core/utils/hooks";
import { Layout } from "@web/search/layout";

/**
 * One Chart.js chart (the library Odoo's graph view loads: the web.chartjs_lib bundle, loaded by the
 * dashboard before it renders). Bars stacked or side by side; values shown by `formatValue` in tooltips.
 */
export class PrepaidDashboardChart extends Component {
    static template = "prepaid_billing.DashboardChart";
    static props = {
        title: String,
        labels: Array,
        datasets: Array,
        stacked: { type: Boolean, optional: true },
        dimmed: { type: Array, optional: true },
        colorOffset: { type: Number, optional: true },
        formatValue: Function,
    };
    static defaultProps = { stacked: false, dimmed: [], colorOffset: 0 };

    setup() {
        this.canvasRef = useRef("canvas");
        this.chart = null;
        useEffect(
            () => {
                this.renderChart();
                return () => this.destroyChart();
            },
            () => [this.props.labels, this.props.datasets]
        );
        onWillUnmount(() => this.destroyChart());
    }

    get isEmpty() {
        return !this.props.datasets.some((dataset) => dataset.data.some((value) => value));
    }

    destroyChart() {
        if (this.chart) {
            this.chart.destroy();
            this.chart = null;
        }
    }

    renderChart() {
        this.destroyChart();
        const colorScheme = cookie.get("color_scheme");
        const datasets = this.props.datasets.map((dataset, index) => {
            // Side by side (a dimmed dataset): one colour, the dimmed bars lighter; stacked: one colour each.
            const shade = this.props.dimmed.length ? 0 : index;
            const color = getColor(this.props.colorOffset + shade, colorScheme, "sm");
            const dimmed = this.props.dimmed.includes(dataset.key);
            return {
                label: dataset.label,
                data: dataset.data,
                backgroundColor: dimmed ? hexToRGBA(color, 0.35) : color,
                borderColor: color,
                borderWidth: dimmed ? 1 : 0,
            };
        });
        const formatValue = this.props.formatValue;
        this.chart = new window.Chart(this.canvasRef.el, {
            type: "bar",
            data: { labels: this.props.labels, datasets },
            options: {
                responsive: true,
                maintainAspectRatio: false,
                animation: false,
                scales: {
                    x: { stacked: this.props.stacked },
                    y: { stacked: this.props.stacked, beginAtZero: true },
                },
                plugins: {
                    legend: { position: "bottom" },
                    tooltip: {
                        callbacks: {
                            label: (item) => `${item.dataset.label}: ${formatValue(item.parsed.y)}`,
                        },
                    },
                },
            },
        });
    }
}

/**
 * Prepaid > Reports > Dashboard: the KPI cards of the company (income, top-ups, consumption against the
 * month before, anomalies and accounts to look at), the income of the last twelve months by composition and
 * the consumption of each utility beside the same month a year before. The figures are
 * prepaid.report.dashboard's get_dashboard_data(), read as the user reads the reports; each card opens the
 * report it sums.
 */
export class PrepaidReportDashboard extends Component {
    static template = "prepaid_billing.ReportDashboard";
    static components = { Layout, PrepaidDashboardChart };
    static props = ["*"];

    setup() {
        this.orm = useService("orm");
        this.actionService = useService("action");
        this.state = useState({ data: null, loading: true });
        this.display = { controlPanel: {} };
        onWillStart(async () => {
            await Promise.all([loadBundle("web.chartjs_lib"), this.load()]);
        });
    }

    async load() {
        this.state.loading = true;
        this.state.data = await this.orm.call("prepaid.report.dashboard", "get_dashboard_data", []);
        this.state.loading = false;
    }

    formatMonetary(value) {
        const { symbol, position, digits } = this.state.data.currency;
        const amount = formatFloat(value || 0, { digits: [false, digits] });
        return position === "after" ? `${amount}\u00a0${symbol}` : `${symbol}\u00a0${amount}`;
    }

    formatQuantity(value, unit) {
        const quantity = formatFloat(value || 0, { digits: [false, 1] });
        return unit ? `${quantity}\u00a0${unit}` : quantity;
    }

    formatCard(card, value = card.value) {
        if (card.format === "monetary") {
            return this.formatMonetary(value);
        }
        if (card.format === "quantity") {
            return this.formatQuantity(value, card.unit);
        }
        return formatFloat(value || 0, { digits: [false, 0] });
    }

    hasChange(card) {
        return card.change !== null && card.change !== undefined;
    }

    formatChange(card) {
        const sign = card.change > 0 ? "+" : "";
        return `${sign}${formatFloat(card.change, { digits: [false, 1] })}%`;
    }

    changeIcon(card) {
        if (!card.change) {
            return "fa-minus";
        }
        return card.change > 0 ? "fa-arrow-up" : "fa-arrow-down";
    }

    get incomeFormatter() {
        return (value) => this.formatMonetary(value);
    }

    quantityFormatter(unit) {
        return (value) => this.formatQuantity(value, unit);
    }

    openCard(card) {
        return this.actionService.doAction(card.action);
    }

    onCardKeydown(ev, card) {
        if (ev.key === "Enter" || ev.key === " ") {
            ev.preventDefault();
            this.openCard(card);
        }
    }

    get refreshLabel() {
        return _t("Refresh");
    }
}

registry.category("actions").add("prepaid_billing.report_dashboard", PrepaidReportDashboard);
