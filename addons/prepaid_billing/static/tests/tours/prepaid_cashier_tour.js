/** @odoo-module */

import { registry } from "@web/core/registry";

// A cashier (an operator without accounting rights) takes money from the Cashier menu: the account is found
// by typing the tenant's name, the amount is typed, the top-up is confirmed; the Python test checks the
// balance, the paid invoice and the ledger line.
registry.category("web_tour.tours").add("prepaid_cashier_tour", {
    url: "/odoo/action-prepaid_base.prepaid_account_action",
    steps: () => [
        {
            content: "Open the Cashier menu",
            trigger: ".o_menu_sections [data-menu-xmlid='prepaid_billing.prepaid_cashier_menu']",
            run: "click",
        },
        {
            content: "Top Up",
            trigger: ".dropdown-menu [data-menu-xmlid='prepaid_billing.prepaid_topup_wizard_menu']",
            run: "click",
        },
        {
            content: "Type the tenant's name in the account",
            trigger: ".modal div[name='account_id'] input",
            run: "edit Cashier Tour",
        },
        {
            content: "The tenant's open account is offered: pick it",
            trigger: ".o-autocomplete--dropdown-item a:contains('Cashier Tour Tenant')",
            run: "click",
        },
        {
            content: "The current balance shows",
            trigger: ".modal div[name='balance']:contains('5.00')",
        },
        {
            content: "Type the amount",
            trigger: ".modal div[name='amount'] input",
            run: "edit 25",
        },
        {
            content: "No receipt this time",
            trigger: ".modal div[name='print_receipt'] input",
            run: "click",
        },
        {
            content: "Confirm the top-up",
            trigger: ".modal button[name='action_confirm']",
            run: "click",
        },
        {
            content: "The dialog closes",
            trigger: "body:not(:has(.modal))",
        },
    ],
});
