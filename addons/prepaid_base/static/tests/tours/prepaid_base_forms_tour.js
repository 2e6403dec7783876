/** @odoo-module */

import { registry } from "@web/core/registry";
import { stepUtils } from "@web_tour/tour_service/tour_utils";

// Opens the main forms of the Prepaid app as a user would; the Python test checks what they saved.
registry.category("web_tour.tours").add("prepaid_base_forms_tour", {
    url: "/odoo/action-prepaid_base.prepaid_property_action",
    steps: () => [
        {
            content: "Open the building",
            trigger: ".o_list_view .o_data_cell:contains('Tour Building')",
            run: "click",
        },
        {
            content: "Add a child from the Children tab",
            trigger: "div[name='child_ids'] .o_field_x2many_list_row_add a",
            run: "click",
        },
        {
            content: "Name the new floor",
            trigger: "div[name='child_ids'] .o_selected_row div[name='name'] input",
            run: "edit Tour Floor",
        },
        ...stepUtils.saveForm(),
        {
            content: "The floor is listed under the building",
            trigger: "div[name='child_ids'] .o_data_row:contains('Tour Floor')",
        },
        {
            content: "Go to the accounts",
            trigger: "a[data-menu-xmlid='prepaid_base.prepaid_account_menu']",
            run: "click",
        },
        {
            content: "Open the tenant's account",
            trigger: ".o_list_view .o_data_cell:contains('Tour Tenant')",
            run: "click",
        },
        {
            content: "The balance shows the ledger sum",
            trigger: ".o_form_view div[name='balance']:contains('42.50')",
        },
        {
            content: "The ledger tab lists the top-up",
            trigger: "div[name='ledger_ids'] .o_data_row:contains('Top-up')",
        },
        {
            content: "Open the Levels tab",
            trigger: ".o_notebook a[name='levels']",
            run: "click",
        },
        {
            content: "Raise the first warning level",
            trigger: "div[name='warn_level_1'] input",
            run: "edit 60",
        },
        ...stepUtils.saveForm(),
        {
            content: "Suspend the account",
            trigger: ".o_form_view .o_statusbar_buttons button[name='action_suspend']",
            run: "click",
        },
        {
            content: "Confirm",
            trigger: ".modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "The account is suspended",
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains('Suspended')",
        },
        {
            content: "Open the configuration menu",
            trigger: "button[data-menu-xmlid='prepaid_base.prepaid_config_menu']",
            run: "click",
        },
        {
            content: "Go to the tariffs",
            trigger: "a[data-menu-xmlid='prepaid_base.prepaid_tariff_menu']",
            run: "click",
        },
        {
            content: "Open the time-of-use tariff",
            trigger: ".o_list_view .o_data_cell:contains('Tour TOU')",
            run: "click",
        },
        {
            content: "Its daily periods are listed",
            trigger: "div[name='period_ids'] .o_data_row:contains('Valley')",
        },
    ],
});
