from odoo import http
from odoo.http import content_disposition, request
from werkzeug.exceptions import BadRequest

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class MonthlyLedgerController(http.Controller):
    @http.route("/prepaid/monthly_ledger/xlsx", type="http", auth="user", methods=["GET"])
    def monthly_ledger_xlsx(self, ids="", **kwargs):
        """The XLSX of the monthly ledgers ``ids`` (comma-separated) the user reads; marks them exported."""
        try:
            record_ids = [int(part) for part in ids.split(",") if part.strip()]
        except ValueError as exc:
            raise BadRequest("ids must be comma-separated integers") from exc
        if not record_ids:
            raise BadRequest("no ledger")
        ledgers = request.env["prepaid.monthly.ledger"].browse(record_ids).exists()
        ledgers.check_access("read")
        content = ledgers._export_xlsx()
        name = ledgers[0].name if len(ledgers) == 1 else "monthly_ledgers"
        return request.make_response(
            content,
            headers=[
                ("Content-Type", XLSX_MIMETYPE),
                ("Content-Length", len(content)),
                ("Content-Disposition", content_disposition(f"{name}.xlsx")),
            ],
        )
