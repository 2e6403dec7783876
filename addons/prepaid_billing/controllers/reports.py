from odoo import http
from odoo.http import content_disposition, request

from .main import XLSX_MIMETYPE


class PrepaidReportsController(http.Controller):
    @http.route(
        "/prepaid_billing/shift_report/<int:wizard_id>/xlsx", type="http", auth="user", methods=["GET"]
    )
    def shift_report_xlsx(self, wizard_id, **kwargs):
        """The XLSX of the user's shift report wizard ``wizard_id`` (its lines as the user may read them)."""
        wizard = request.env["prepaid.shift.report.wizard"].browse(wizard_id).exists()
        wizard.check_access("read")
        request.env["prepaid.order.report"].check_access("read")
        content = wizard._export_xlsx()
        return request.make_response(
            content,
            headers=[
                ("Content-Type", XLSX_MIMETYPE),
                ("Content-Length", len(content)),
                ("Content-Disposition", content_disposition("shift_report.xlsx")),
            ],
        )
