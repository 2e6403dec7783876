import tempfile

from odoo import http
from odoo.http import content_disposition, request
from werkzeug.exceptions import NotFound
from werkzeug.wsgi import wrap_file

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

    @http.route(
        "/prepaid_billing/report_export/<int:wizard_id>/xlsx", type="http", auth="user", methods=["GET"]
    )
    def report_export_xlsx(self, wizard_id, **kwargs):
        """The XLSX of the user's own report export wizard ``wizard_id`` (the report as the user may read
        it), streamed from a temporary file."""
        wizard = request.env["prepaid.report.export.wizard"].browse(wizard_id).exists()
        if not wizard or wizard.create_uid != request.env.user:
            raise NotFound()
        wizard.check_access("read")
        wizard._report_model().check_access("read")
        # Closed by the response once sent.
        out = tempfile.TemporaryFile()  # noqa: SIM115  # pylint: disable=consider-using-with
        try:
            wizard._export_xlsx(out)
            size = out.seek(0, 2)
            out.seek(0)
        except Exception:
            out.close()
            raise
        return request.make_response(
            wrap_file(request.httprequest.environ, out),
            headers=[
                ("Content-Type", XLSX_MIMETYPE),
                ("Content-Length", size),
                ("Content-Disposition", content_disposition(wizard._export_filename())),
            ],
        )
