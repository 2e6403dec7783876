/** @odoo-module */

import { registry } from "@web/core/registry";

// An operator opens Prepaid > Reports > Dashboard: the KPI cards and the charts render; the income card of the
// month opens the Income Summary pivot on that month.
registry.category("web_tour.tours").add("prepaid_report_dashboard_tour", {
    url: "/odoo/action-prepaid_base.prepaid_account_action",
    steps: () => [
        {
            content: "Open the Reports menu",
            trigger: ".o_menu_sections [data-menu-xmlid='prepaid_billing.prepaid_report_menu']",
            run: "click",
        },
        {
            content: "Open the Dashboard",
            trigger: ".dropdown-menu [data-menu-xmlid='prepaid_billing.prepaid_report_dashboard_menu']",
            run: "click",
        },
        {
            content: "The income card of the month shows its figure",
            trigger: ".o_prepaid_kpi[data-kpi='income_month'] .o_prepaid_kpi_value:not(:empty)",
        },
        {
            content: "The consumption cards compare with the month before",
            trigger: ".o_prepaid_kpi[data-kpi='electricity_month'] .o_prepaid_kpi_change",
        },
        {
            content: "The charts are drawn",
            trigger: ".o_prepaid_dashboard canvas",
        },
        {
            content: "Refresh the figures",
            trigger: ".o_prepaid_dashboard_refresh:enabled",
            run: "click",
        },
        {
            content: "The cards are back once the figures are read again",
            trigger: ".o_prepaid_dashboard_refresh:enabled",
        },
        {
            content: "Open the income of the month",
            trigger: ".o_prepaid_kpi[data-kpi='income_month']",
            run: "click",
        },
        {
            content: "The income report opens on the month",
            trigger: ".o_pivot_view .o_breadcrumb:contains('Income This Month')",
        },
    ],
});
