"""The suite's guards on writes: protected state has one door, and scope holds after a write.

- :data:`INTERNAL` is the sentinel of the suite's own writes of protected state (balances, periods, states,
  command targets...): a module-level ``object()`` put in the context under :data:`INTERNAL_KEY` and
  compared with ``is`` (as OCA ``queue_job``'s ``EDIT_SENTINEL`` and account's ``BYPASS_LOCK_CHECK``). A
  context that arrives over RPC is JSON: it can hold a string or ``True`` under that key, never this object,
  so no caller can switch a check off. Use :func:`internal` around the one write that needs it, never around
  code that handles a caller's values.
- :class:`PrepaidGuardMixin` is inherited by the suite's models that users write. It refuses writes of the
  model's protected fields (``_prepaid_protected_fields``) outside :data:`INTERNAL`, keeps the model's
  manager fields (``_prepaid_manager_fields``) for prepaid managers, checks that the caller can read every
  record a write or create points at (``_prepaid_target_fields``: Odoo does not check the targets of
  relational fields) and that the written records are still within the caller's reach afterwards (Odoo checks
  record rules on the records before a write, not on what the write makes of them).
"""

from odoo import api, models
from odoo.exceptions import AccessError

INTERNAL = object()
INTERNAL_KEY = "prepaid_internal"
MANAGER_GROUP = "prepaid_base.group_prepaid_manager"


def is_internal(env):
    """Whether ``env`` carries the sentinel of the suite's own writes."""
    return env.context.get(INTERNAL_KEY) is INTERNAL


def internal(records):
    """``records`` in an environment that carries the sentinel (for the suite's own writes only)."""
    return records.with_context(**{INTERNAL_KEY: INTERNAL})


def is_manager(env):
    """Whether the environment acts as a prepaid manager (or as the superuser)."""
    return env.su or env.user.has_group(MANAGER_GROUP)


def _relational_ids(field, value):
    """The ids a write of ``value`` on the relational ``field`` points at (new records excluded)."""
    if not value:
        return []
    if field.type == "many2one":
        return [value.id if isinstance(value, models.BaseModel) else int(value)]
    if isinstance(value, models.BaseModel):
        return value.ids
    ids = []
    for command in value:
        if isinstance(command, int):
            ids.append(command)
        elif isinstance(command, (list, tuple)) and command:
            if command[0] == 6:  # SET
                ids.extend(command[2] or ())
            elif command[0] == 4:  # LINK
                ids.append(command[1])
    return ids


class PrepaidGuardMixin(models.AbstractModel):
    _name = "prepaid.guard.mixin"
    _description = "Prepaid: guarded writes"

    # Records only the suite's own code creates (under INTERNAL): commands, top-ups...
    _prepaid_internal_create = False
    # Fields only the suite's own code writes (under INTERNAL): not on create, not on write.
    _prepaid_protected_fields = ()
    # Fields only prepaid managers may set or change.
    _prepaid_manager_fields = ()
    # Relational fields whose targets the caller must be able to read.
    _prepaid_target_fields = ()
    # Each of the three is the union of what every class of the model declares (the model's own and each
    # module's extension, whatever their load order): an extension lists only its own fields.

    def _prepaid_declared(self, attr):
        """The union of ``attr`` (one of the three field lists) over the model's classes."""
        cls = type(self)
        cache = cls.__dict__.get("_prepaid_declared_cache")
        if cache is None:
            cache = {}
            cls._prepaid_declared_cache = cache
        # The registry rebases a model's class as modules load (its __bases__ change): keyed on its MRO.
        mro = cls.__mro__
        if attr not in cache or cache[attr][0] is not mro:
            names = []
            for klass in reversed(mro):
                names += [f for f in klass.__dict__.get(attr, ()) if f not in names]
            cache[attr] = (mro, tuple(names))
        return cache[attr][1]

    def _prepaid_check_protected(self, vals_list, create=False):
        if is_internal(self.env):
            return
        if create and self._prepaid_internal_create:
            raise AccessError(
                self.env._(
                    "%(model)s records are created by the suite's own actions only.", model=self._description
                )
            )
        touched = sorted(
            {
                fname
                for vals in vals_list
                for fname in vals
                if fname in self._prepaid_declared("_prepaid_protected_fields")
            }
        )
        if touched:
            raise AccessError(
                self.env._(
                    "%(fields)s of %(model)s change only through the suite's own actions.",
                    fields=", ".join(self._fields[f]._description_string(self.env) for f in touched),
                    model=self._description,
                )
            )

    def _prepaid_manager_defaults(self, vals):
        """What a new record gets for each manager field when ``vals`` do not say (an operator may create
        records with these values)."""
        return self.default_get(list(self._prepaid_declared("_prepaid_manager_fields")))

    def _prepaid_check_manager_fields(self, vals_list, create=False):
        if is_manager(self.env) or is_internal(self.env):
            return
        touched = set()
        for vals in vals_list:
            managed = self._prepaid_declared("_prepaid_manager_fields")
            fnames = [fname for fname in vals if fname in managed]
            if fnames and create:
                defaults = self._prepaid_manager_defaults(vals)
                fnames = [f for f in fnames if not self._prepaid_same_value(f, vals[f], defaults.get(f))]
            touched.update(fnames)
        touched = sorted(touched)
        if touched:
            raise AccessError(
                self.env._(
                    "Only prepaid managers can change %(fields)s.",
                    fields=", ".join(self._fields[f]._description_string(self.env) for f in touched),
                )
            )

    def _prepaid_same_value(self, fname, value, default):
        field = self._fields[fname]
        if field.type == "many2one":
            return (value or False) == (default or False) or (
                isinstance(default, models.BaseModel) and default.id == value
            )
        if field.type in ("monetary", "float"):
            return float(value or 0) == float(default or 0)
        return (value or False) == (default or False)

    def _prepaid_check_targets(self, vals_list):
        """Refuse to point records at records the caller cannot read."""
        if self.env.su:
            return
        for fname in self._prepaid_declared("_prepaid_target_fields"):
            field = self._fields[fname]
            ids = {rid for vals in vals_list if fname in vals for rid in _relational_ids(field, vals[fname])}
            if ids:
                targets = self.env[field.comodel_name].browse(sorted(ids))
                try:
                    targets.check_access("read")
                except AccessError as exc:
                    raise AccessError(
                        self.env._(
                            "%(field)s of %(model)s cannot point at records you cannot see.",
                            field=field._description_string(self.env),
                            model=self._description,
                        )
                    ) from exc

    def _prepaid_check_scope(self):
        """Refuse a write that took records out of the caller's companies or properties."""
        if self.env.su or not self:
            return
        try:
            self.check_access("write")
        except AccessError as exc:
            raise AccessError(
                self.env._(
                    "This change would take %(records)s out of your companies or properties.",
                    records=", ".join(self.sudo().mapped("display_name")),
                )
            ) from exc

    def _prepaid_check_vals(self, vals_list, create=False):
        self._prepaid_check_protected(vals_list, create=create)
        self._prepaid_check_manager_fields(vals_list, create=create)
        self._prepaid_check_targets(vals_list)

    @api.model_create_multi
    def create(self, vals_list):
        self._prepaid_check_vals(vals_list, create=True)
        # Odoo checks the record rules of the new records after creating them.
        return super().create(vals_list)

    def write(self, vals):
        self._prepaid_check_vals([vals])
        result = super().write(vals)
        self._prepaid_check_scope()
        return result
