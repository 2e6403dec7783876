/** @odoo-module **/

import { registry } from "@web/core/registry";

// A new portal user binds an account by its code, sees its balance, recharges 100 with the demo payment
// provider and lands back on the account page with the payment credited (the test starts the tour at
// /my/prepaid/bind?account=<number> and checks the ledger, the invoice and the restore command afterwards).
registry.category("web_tour.tours").add("prepaid_portal_bind_and_recharge", {
    steps: () => [
        {
            content: "Enter the code from the label",
            trigger: "input[name=code]",
            run: "edit 24681357",
        },
        {
            content: "Bind the account",
            trigger: "button.o_prepaid_bind_submit",
            run: "click",
        },
        {
            content: "The account page shows the balance",
            trigger: ".o_prepaid_account_page .o_prepaid_balance",
        },
        {
            content: "Recharge",
            trigger: "a.o_prepaid_recharge_button",
            run: "click",
        },
        {
            content: "Tap the preset of 100",
            trigger: "button.o_prepaid_preset[data-amount='100.0']",
            run: "click",
        },
        {
            content: "Continue to payment",
            trigger: "button.o_prepaid_continue",
            run: "click",
        },
        {
            content: "Odoo's payment form with the demo provider",
            trigger: ".o_prepaid_pay_page #simulated_payment_state",
        },
        {
            content: "Pay",
            trigger: "button[name=o_payment_submit_button]:not(:disabled)",
            run: "click",
        },
        {
            content: "Back on the account page: the payment is credited",
            trigger: ".o_prepaid_account_page .o_prepaid_paid",
            timeout: 30000,
        },
    ],
});
