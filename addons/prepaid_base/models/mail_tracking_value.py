from odoo import models


class MailTrackingValue(models.Model):
    _inherit = "mail.tracking.value"

    def _tracking_value_format_model(self, model):
        """Tracked choices of the suite's records (a state, a supply, a level) in the reader's language.

        Odoo keeps a tracked selection value as its label in the language of whoever made the change: the
        suite's crons (polls, commands, levels) write in English, and a Chinese reader would see "On" and
        "Off". The label is read back to its key (in any installed language) and shown in the reader's."""
        formatted = super()._tracking_value_format_model(model)
        if not model or not model.startswith("prepaid.") or model not in self.env:
            return formatted
        Model = self.env[model]
        languages = [code for code, _name in self.env["res.lang"].get_installed()]
        mine = {}
        for entry in formatted:
            field = Model._fields.get(entry["fieldName"])
            if field is None or field.type != "selection":
                continue
            if field.name not in mine:
                keys = {}
                for lang in languages:
                    for key, label in field._description_selection(self.env(context={"lang": lang})):
                        keys.setdefault(label, key)
                labels = dict(field._description_selection(self.env))
                mine[field.name] = (keys, labels)
            keys, labels = mine[field.name]
            for side in ("oldValue", "newValue"):
                value = entry[side]["value"]
                key = keys.get(value)
                if key is not None:
                    entry[side]["value"] = labels.get(key, value)
        return formatted
