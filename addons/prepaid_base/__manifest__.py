{
    "name": "Prepaid Utilities: Base",
    "summary": "Properties, tenancies, prepaid accounts with an append-only ledger, tariffs and fee items",
    "version": "18.0.1.0.0",
    "category": "Services/Prepaid Utilities",
    "author": "Prepaid Utilities Suite",
    "license": "LGPL-3",
    "depends": ["base", "mail", "portal", "web_hierarchy"],
    "data": [
        "security/prepaid_base_security.xml",
        "security/ir.model.access.csv",
        "data/ir_sequence_data.xml",
        "views/prepaid_property_views.xml",
        "views/prepaid_tenancy_views.xml",
        "views/prepaid_account_views.xml",
        "views/prepaid_ledger_views.xml",
        "views/prepaid_tariff_views.xml",
        "views/prepaid_fee_item_views.xml",
        "views/res_config_settings_views.xml",
        "views/res_users_views.xml",
        "views/prepaid_menus.xml",
    ],
    "demo": [
        "demo/prepaid_base_demo.xml",
    ],
    "assets": {
        "web.assets_tests": [
            "prepaid_base/static/tests/tours/*.js",
        ],
    },
    "application": True,
    "installable": True,
}
