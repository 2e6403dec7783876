"""The monthly ledger as an XLSX workbook (xlsxwriter): one sheet per ledger (a building's month), a title
block, a frozen header row, quantities to 3 decimals, money to the currency's precision, a totals row.
Column headers and labels are the translated terms, in the language of the environment (the exporting user).
Reads the stored (frozen) figures only: no arithmetic here."""

import io
import re

import xlsxwriter

HEADER_ROW = 5  # 0-based row of the column headers; the rows above are the title block
FROZEN_COLUMNS = 3  # account, tenant, units stay in view


def _columns(env):
    """(label, line field, kind) of each column; kind: text, quantity, money, percent."""
    _ = env._
    return [
        (_("Account"), "account", "text"),
        (_("Tenant"), "tenant", "text"),
        (_("Units"), "unit_names", "text"),
        (_("Electricity (kWh)"), "electricity_quantity", "quantity"),
        (_("Last Month (kWh)"), "previous_electricity_quantity", "quantity"),
        (_("Difference (kWh)"), "electricity_difference", "quantity"),
        (_("Change (%)"), "electricity", "percent"),
        (_("Electricity Charge"), "electricity_amount", "money"),
        (_("Water (m³)"), "water_quantity", "quantity"),
        (_("Last Month (m³)"), "previous_water_quantity", "quantity"),
        (_("Difference (m³)"), "water_difference", "quantity"),
        (_("Change (%)"), "water", "percent"),
        (_("Water Charge"), "water_amount", "money"),
        (_("Apportioned Shares"), "apportionment", "money"),
        (_("Fees"), "fees", "money"),
        (_("Total"), "total", "money"),
    ]


def sheet_name(ledger, taken):
    """The building and month, within Excel's 31 characters and without its forbidden characters, unique."""
    base = re.sub(r"[\[\]:*?/\\]", "-", f"{ledger.building_id.name} {ledger.month_label}").strip("'")
    name = base[:31]
    counter = 2
    while name.lower() in taken:
        suffix = f" ({counter})"
        name = base[: 31 - len(suffix)] + suffix
        counter += 1
    taken.add(name.lower())
    return name


def _value(env, record, field, kind, new_label):
    if field == "account":
        return (record.account_id.name or "") if record._name.endswith(".line") else env._("Total")
    if field == "tenant":
        return record.partner_id.name or "" if record._name.endswith(".line") else ""
    if field == "unit_names":
        return record.unit_names or "" if record._name.endswith(".line") else ""
    if kind == "percent":
        if record[f"{field}_percent_none"]:
            return new_label
        return record[f"{field}_percent"] / 100.0
    return record[field]


def ledger_workbook(ledgers):
    """The workbook of ``ledgers`` (bytes)."""
    env = ledgers.env
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True})
    bold = book.add_format({"bold": True})
    title = book.add_format({"bold": True, "font_size": 14})
    header = book.add_format(
        {"bold": True, "bg_color": "#D9E1F2", "border": 1, "text_wrap": True, "valign": "top"}
    )
    state_labels = dict(ledgers._fields["state"]._description_selection(env))
    new_label = env._("new")
    taken = set()
    for ledger in ledgers:
        digits = ledger.currency_id.decimal_places
        money_format = "#,##0" + ("." + "0" * digits if digits else "")
        formats = {
            "text": book.add_format({}),
            "quantity": book.add_format({"num_format": "#,##0.000"}),
            "money": book.add_format({"num_format": money_format}),
            "percent": book.add_format({"num_format": "0.0%", "align": "right"}),
        }
        totals = {
            kind: book.add_format({"bold": True, "top": 2, **({"num_format": fmt} if fmt else {})})
            for kind, fmt in (
                ("text", None),
                ("quantity", "#,##0.000"),
                ("money", money_format),
                ("percent", "0.0%"),
            )
        }
        sheet = book.add_worksheet(sheet_name(ledger, taken))
        sheet.write(0, 0, env._("Monthly Ledger"), title)
        sheet.write(1, 0, env._("Building"), bold)
        sheet.write(1, 1, ledger.building_id.display_name)
        sheet.write(2, 0, env._("Month"), bold)
        sheet.write(2, 1, ledger.month_label)
        sheet.write(2, 2, f"{ledger.date_from} - {ledger.date_to}")
        sheet.write(3, 0, env._("Status"), bold)
        status = state_labels.get(ledger.state, ledger.state)
        if ledger.reviewer_id:
            status = env._(
                "%(state)s (reviewed by %(user)s on %(date)s)",
                state=status,
                user=ledger.reviewer_id.name,
                date=ledger.review_date.date().isoformat() if ledger.review_date else "",
            )
        sheet.write(3, 1, status)
        if ledger.changed_since_review:
            sheet.write(3, 5, env._("Changed since review"), bold)
        columns = _columns(env)
        for col, (label, _field, kind) in enumerate(columns):
            sheet.write(HEADER_ROW, col, label, header)
            sheet.set_column(col, col, 24 if kind == "text" else 14)
        sheet.set_row(HEADER_ROW, 32)
        row = HEADER_ROW
        for line in ledger.line_ids:
            row += 1
            for col, (_label, field, kind) in enumerate(columns):
                value = _value(env, line, field, kind, new_label)
                sheet.write(row, col, value, formats["text" if isinstance(value, str) else kind])
        row += 1
        for col, (_label, field, kind) in enumerate(columns):
            value = _value(env, ledger, field, kind, new_label)
            sheet.write(row, col, value, totals["text" if isinstance(value, str) else kind])
        sheet.freeze_panes(HEADER_ROW + 1, FROZEN_COLUMNS)
        sheet.autofilter(HEADER_ROW, 0, row - 1, len(columns) - 1)
    book.close()
    return buffer.getvalue()
