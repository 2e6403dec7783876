"""The meter-model catalogue: every model the engine ships, as data.

Each built-in model is one JSON file in ``prepaid_engine/data/models/`` named after its code, holding exactly
``MeterModel.to_dict()`` (written in ``MeterModel.to_json()`` form), so the Odoo addons can store the same
JSON in a data record and staff can add models without code. Uncertain register addresses and identifiers
are marked in each model's ``options`` (``uncertain``, ``notes``, ``source``). Each built-in model also says
what it can pass at most (``capacity``: maximum current, nominal voltage and phases, or maximum flow), which
:mod:`prepaid_engine.plausibility` judges readings against. Electricity models may locate their load-control
parameters (``parameters``: power limit, malicious-load rule, automatic restore, trip reason, event records;
:mod:`prepaid_engine.load.params`), each marked ``uncertain`` where no public document confirms it; a model
without them loads as before.

    from prepaid_engine.catalog import builtin_models, get_model, load_models
    model = get_model("acrel_ddsy1352")
    site_models = {**builtin_models(), **load_models(["/etc/prepaid/models"])}
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path

from .codecs.modbus import validate_register_map
from .errors import ConfigError
from .types import MeterModel, Protocol

# Length in hex digits of a data identifier, per protocol (DL/T 645-2007: 4 bytes; -1997 and CJ/T 188: 2).
DI_HEX_DIGITS = {Protocol.DLT645_2007: 8, Protocol.DLT645_1997: 4, Protocol.CJT188: 4}
# Option name -> pattern its value must match, per protocol (absent options take the codec's default).
OPTION_PATTERNS = {
    Protocol.DLT645_2007: {
        "password_level": r"[0-9A-Fa-f]{2}",
        "password": r"[0-9A-Fa-f]{6}",
        "operator": r"[0-9A-Fa-f]{8}",
    },
    Protocol.CJT188: {"meter_type": r"[0-9A-Fa-f]{2}", "di_order": r"msb|lsb"},
}
_CODE = re.compile(r"[a-z0-9][a-z0-9_]*")


def validate_model(model: MeterModel) -> MeterModel:
    """Return ``model`` unchanged if the engine can use it; raise :class:`ConfigError` saying why not."""
    if not _CODE.fullmatch(model.code):
        raise ConfigError(f"model code {model.code!r} must be lower-case letters, digits and underscores")
    digits = DI_HEX_DIGITS.get(model.protocol)
    if digits is not None:
        if not model.reads:
            raise ConfigError(f"model {model.code}: a {model.protocol} model lists at least one identifier")
        for di in model.reads:
            if len(di) != digits or not re.fullmatch(r"[0-9A-F]+", di):
                raise ConfigError(f"model {model.code}: identifier {di!r} is not {digits} hex digits")
        if len(set(model.reads)) != len(model.reads):
            raise ConfigError(f"model {model.code}: identifiers repeat")
    options = dict(model.options)
    for name, pattern in OPTION_PATTERNS.get(model.protocol, {}).items():
        value = options.get(name)
        if value is not None and not re.fullmatch(pattern, value):
            raise ConfigError(f"model {model.code}: option {name}={value!r} does not match {pattern}")
    zone = options.get("clock_timezone")
    if model.protocol is Protocol.DLT645_2007 and zone is not None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"model {model.code}: option clock_timezone={zone!r} is no time zone") from exc
    if model.capacity is not None:
        try:
            model.capacity.check(model.utility)
        except ConfigError as exc:
            raise ConfigError(f"model {model.code}: {exc}", kind=exc.kind, **exc.params) from exc
    validate_register_map(model)
    if model.parameters:
        from .load.params import validate_parameters

        validate_parameters(model)
    return model


def load_model(path: str | os.PathLike) -> MeterModel:
    """One model from one JSON file (``MeterModel.to_dict()`` shape), validated."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read meter model {path}: {exc}") from exc
    try:
        return validate_model(MeterModel.from_json(text))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def load_models(paths: Iterable[str | os.PathLike]) -> dict[str, MeterModel]:
    """Models from JSON files and directories of ``*.json`` files, by code. A code seen twice is an error."""
    models: dict[str, MeterModel] = {}
    for path in paths:
        path = Path(path)
        files = sorted(path.glob("*.json")) if path.is_dir() else [path]
        for file in files:
            model = load_model(file)
            if model.code in models:
                raise ConfigError(f"{file}: meter model code {model.code!r} is defined twice")
            models[model.code] = model
    return models


@functools.cache
def _builtin() -> tuple[MeterModel, ...]:
    folder = resources.files(__package__).joinpath("data", "models")
    models = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        try:
            model = validate_model(MeterModel.from_json(entry.read_text(encoding="utf-8")))
        except ConfigError as exc:
            raise ConfigError(f"built-in model file {entry.name}: {exc}") from exc
        if entry.name != f"{model.code}.json":
            raise ConfigError(f"built-in model file {entry.name} holds model {model.code!r}")
        models.append(model)
    return tuple(models)


def builtin_models() -> dict[str, MeterModel]:
    """Every model shipped with the engine, by code (a new dict each call; the models are frozen)."""
    return {model.code: model for model in _builtin()}


def get_model(code: str, models: Mapping[str, MeterModel] | None = None) -> MeterModel:
    """The model ``code`` from ``models`` (default: the built-ins); :class:`ConfigError` if unknown."""
    catalogue = builtin_models() if models is None else models
    try:
        return catalogue[code]
    except KeyError:
        raise ConfigError(f"unknown meter model {code!r}; known: {', '.join(sorted(catalogue))}") from None
