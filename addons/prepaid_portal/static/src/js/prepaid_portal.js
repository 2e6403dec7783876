/** @odoo-module **/

import { loadBundle } from "@web/core/assets";
import { rpc } from "@web/core/network/rpc";
import publicWidget from "@web/legacy/js/public/public_widget";

const BAND_COLOURS = { sharp: "#dc3545", peak: "#fd7e14", flat: "#0d6efd", valley: "#20c997" };

// How often and how long the account page asks for the supply state after a payment.
const POLL_MS = 4000;
const POLL_TIMES = 45;

publicWidget.registry.PrepaidAccountPage = publicWidget.Widget.extend({
    selector: ".o_prepaid_account_page",

    async start() {
        await this._super(...arguments);
        const dataEl = this.el.querySelector(".o_prepaid_usage_data");
        this.usage = dataEl ? JSON.parse(dataEl.dataset.usage || "{}") : {};
        // The words come translated with the page (the portal loads no script translations).
        this.labels = dataEl ? JSON.parse(dataEl.dataset.labels || "{}") : {};
        this.charts = [];
        if (Object.keys(this.usage).length) {
            await loadBundle("web.chartjs_lib");
            this._drawCharts();
        }
        if (this.el.dataset.poll === "1") {
            this._polls = 0;
            this._pollTimer = setInterval(() => this._poll(), POLL_MS);
        }
    },

    destroy() {
        clearInterval(this._pollTimer);
        for (const chart of this.charts) {
            chart.destroy();
        }
        this._super(...arguments);
    },

    _drawCharts() {
        for (const canvas of this.el.querySelectorAll("canvas.o_prepaid_chart_daily")) {
            const u = this.usage[canvas.dataset.utility];
            const bands = Object.keys(u.bands || {});
            const datasets = bands.length
                ? bands.map((band) => ({
                      label: this.labels[band] || band,
                      data: u.bands[band],
                      backgroundColor: BAND_COLOURS[band],
                      stack: "q",
                  }))
                : [{ label: this.labels.daily, data: u.quantity, backgroundColor: "#0d6efd" }];
            this.charts.push(
                new Chart(canvas, {
                    type: "bar",
                    data: { labels: u.days, datasets },
                    options: {
                        maintainAspectRatio: false,
                        plugins: { title: { display: true, text: this.labels.last_30 } },
                        scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } },
                    },
                })
            );
        }
        for (const canvas of this.el.querySelectorAll("canvas.o_prepaid_chart_monthly")) {
            const u = this.usage[canvas.dataset.utility];
            this.charts.push(
                new Chart(canvas, {
                    type: "bar",
                    data: {
                        labels: u.months,
                        datasets: [
                            { label: this.labels.this_year, data: u.month_quantity, backgroundColor: "#0d6efd" },
                            {
                                label: this.labels.year_before,
                                data: u.last_year_quantity,
                                backgroundColor: "#adb5bd",
                            },
                        ],
                    },
                    options: {
                        maintainAspectRatio: false,
                        plugins: { title: { display: true, text: this.labels.last_12 } },
                        scales: { y: { beginAtZero: true } },
                    },
                })
            );
        }
    },

    async _poll() {
        this._polls += 1;
        if (this._polls > POLL_TIMES) {
            clearInterval(this._pollTimer);
            return;
        }
        let status;
        try {
            status = await rpc(`/my/prepaid/accounts/${this.el.dataset.accountId}/status`, {});
        } catch {
            return;
        }
        for (const el of this.el.querySelectorAll(".o_prepaid_balance")) {
            el.textContent = status.balance;
        }
        let allOn = true;
        for (const badge of this.el.querySelectorAll(".o_prepaid_supply")) {
            const supply = status.meters[badge.dataset.meter];
            if (!supply) {
                continue;
            }
            allOn = allOn && supply === "on";
            if (supply !== badge.dataset.supply) {
                badge.dataset.supply = supply;
                badge.classList.toggle("text-bg-success", supply === "on");
                badge.classList.toggle("text-bg-danger", supply === "off");
                badge.textContent = this.labels[supply] || supply;
            }
        }
        const note = this.el.querySelector(".o_prepaid_restore_note");
        if (allOn && !status.supply_cut) {
            if (note) {
                note.textContent = this.labels.restored;
                note.classList.add("o_prepaid_restored");
            }
            clearInterval(this._pollTimer);
        }
    },
});

publicWidget.registry.PrepaidRecharge = publicWidget.Widget.extend({
    selector: ".o_prepaid_recharge_form",
    events: { "click .o_prepaid_preset": "_onPreset" },

    _onPreset(ev) {
        const input = this.el.querySelector("input[name=amount]");
        input.value = ev.currentTarget.dataset.amount;
        this.el.querySelectorAll(".o_prepaid_preset").forEach((b) => b.classList.remove("active"));
        ev.currentTarget.classList.add("active");
    },
});
