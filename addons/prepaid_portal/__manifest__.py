{
    "name": "Prepaid Utilities: Tenant Portal",
    "summary": "The tenant's own pages on the Odoo customer portal: balance, meters, usage charts, ledger, "
    "receipts; online recharge through Odoo payment providers; binding codes, QR labels and invitations",
    "version": "18.0.1.0.0",
    "category": "Services/Prepaid Utilities",
    "author": "Prepaid Utilities Suite",
    "license": "LGPL-3",
    "depends": ["prepaid_billing", "portal", "payment", "account_payment"],
    "external_dependencies": {"python": ["prepaid-engine"]},
    "data": [
        "security/prepaid_portal_security.xml",
        "security/ir.model.access.csv",
        "data/ir_cron_data.xml",
        "report/prepaid_binding_label_report.xml",
        "views/prepaid_portal_templates.xml",
        "views/prepaid_portal_binding_views.xml",
        "views/prepaid_account_views.xml",
        "views/res_config_settings_views.xml",
        "views/prepaid_portal_menus.xml",
    ],
    "demo": ["demo/prepaid_portal_demo.xml"],
    "assets": {
        "web.assets_frontend": [
            "prepaid_portal/static/src/scss/prepaid_portal.scss",
            "prepaid_portal/static/src/js/prepaid_portal.js",
        ],
        "web.assets_tests": [
            "prepaid_portal/static/tests/tours/*.js",
        ],
    },
    "installable": True,
}
