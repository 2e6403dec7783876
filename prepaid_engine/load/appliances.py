"""The appliance catalogue: load signatures of common appliances, as shipped data.

``prepaid_engine/data/appliances.json`` holds ``{"version": 1, "appliances": [...]}``; each entry is
:meth:`Appliance.to_dict`::

    {"code": "kettle", "name": "Electric kettle", "name_zh": "电热水壶", "power_w": [1500, 2200],
     "power_factor": ["0.99", "1.00"], "resistive": true, "surge_ratio": "1.0", "category": "forbidden"}

* ``power_w``: the steady active power range in whole watts (after the start surge), ``min <= max``.
* ``power_factor``: the range of the appliance's own power factor (0 < min <= max <= 1), decimal text.
* ``resistive``: a heating element (kettle, heater): power factor about 1, no start surge. A resistive entry
  must have a power-factor range reaching 1.00 and at least 0.95.
* ``surge_ratio``: the typical first-second power over the steady power (>= 1: motors and compressors
  start higher); informative, the classifier reports what it saw beside it.
* ``category``: ``allowed`` or ``forbidden``, what a dormitory usually decides (the default of a profile's
  whitelist, which staff change per property).

:func:`load_appliances` reads a file or a decoded document and says which entry is wrong and why
(:class:`ConfigError` with ``kind``), so staff can ship their own catalogue; :func:`builtin_appliances` is
the shipped one.
"""

from __future__ import annotations

import enum
import functools
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path

from ..errors import ConfigError

CATALOGUE_VERSION = 1
_CODE = re.compile(r"[a-z0-9][a-z0-9_]*")
_ONE = Decimal(1)
_FIELDS = {"code", "name", "name_zh", "power_w", "power_factor", "resistive", "surge_ratio", "category"}


class Category(enum.StrEnum):
    ALLOWED = "allowed"
    FORBIDDEN = "forbidden"


@dataclass(frozen=True, slots=True)
class Appliance:
    """One appliance's load signature (see the module doc for the fields' meaning)."""

    code: str
    name: str
    power_min: int  # W
    power_max: int  # W
    pf_min: Decimal
    pf_max: Decimal
    resistive: bool = False
    surge_ratio: Decimal = _ONE
    category: Category = Category.ALLOWED
    name_zh: str = ""

    def __post_init__(self) -> None:
        where = f"appliance {self.code!r}"
        if not isinstance(self.code, str) or not _CODE.fullmatch(self.code):
            raise ConfigError(
                f"{where}: a code is lower-case letters, digits and underscores", kind="appliance.code"
            )
        for name in ("power_min", "power_max"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(
                    f"{where}: {name} is whole watts >= 0, not {value!r}", kind="appliance.power"
                )
        if self.power_min > self.power_max or self.power_max == 0:
            raise ConfigError(
                f"{where}: the power range {self.power_min}..{self.power_max} W is empty",
                kind="appliance.power",
                min=self.power_min,
                max=self.power_max,
            )
        for name in ("pf_min", "pf_max", "surge_ratio"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise ConfigError(
                    f"{where}: {name} is a finite Decimal, not {value!r}", kind="appliance.number"
                )
        if not 0 < self.pf_min <= self.pf_max <= 1:
            raise ConfigError(
                f"{where}: the power factor range {self.pf_min}..{self.pf_max} is not within"
                " 0 < min <= max <= 1",
                kind="appliance.power_factor",
            )
        if self.resistive and (self.pf_max < 1 or self.pf_min < Decimal("0.95")):
            raise ConfigError(
                f"{where}: a resistive appliance has a power factor of about 1 (range up to 1.00,"
                " from >= 0.95)",
                kind="appliance.resistive",
            )
        if self.surge_ratio < 1:
            raise ConfigError(f"{where}: surge_ratio is >= 1, not {self.surge_ratio}", kind="appliance.surge")
        if not isinstance(self.category, Category):
            object.__setattr__(self, "category", _category(self.category, where))

    def matches(
        self,
        power_w: Decimal,
        power_factor: Decimal | None,
        *,
        tolerance: Decimal = Decimal(0),
        pf_tolerance: Decimal = Decimal(0),
    ) -> bool:
        """Whether a step of ``power_w`` watts with ``power_factor`` fits this signature, the power range
        widened by ``tolerance`` (a fraction: 0.1 = 10 % each side) and the power factor range by
        ``pf_tolerance`` (absolute). A step whose power factor is unknown (``None``) matches on power."""
        low = self.power_min * (1 - tolerance)
        high = self.power_max * (1 + tolerance)
        if not low <= power_w <= high:
            return False
        if power_factor is None:
            return True
        return self.pf_min - pf_tolerance <= power_factor <= self.pf_max + pf_tolerance

    @property
    def power_span(self) -> int:
        return self.power_max - self.power_min

    def to_dict(self) -> dict:
        return {
            "code": self.code,
            "name": self.name,
            "name_zh": self.name_zh,
            "power_w": [self.power_min, self.power_max],
            "power_factor": [str(self.pf_min), str(self.pf_max)],
            "resistive": self.resistive,
            "surge_ratio": str(self.surge_ratio),
            "category": str(self.category),
        }

    @classmethod
    def from_dict(cls, data: Mapping, where: str = "appliance") -> Appliance:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: an appliance is an object, not {data!r}", kind="appliance.shape")
        code = data.get("code")
        where = f"{where} {code!r}" if code is not None else where
        unknown = set(data) - _FIELDS
        if unknown:
            raise ConfigError(f"{where}: unknown fields {sorted(unknown)}", kind="appliance.shape")
        missing = {"code", "name", "power_w", "power_factor"} - set(data)
        if missing:
            raise ConfigError(f"{where}: missing {sorted(missing)}", kind="appliance.shape")
        power = _pair(data["power_w"], f"{where}: power_w")
        factor = _pair(data["power_factor"], f"{where}: power_factor")
        if any(isinstance(v, bool) or not isinstance(v, int) for v in power):
            raise ConfigError(f"{where}: power_w is two whole numbers of watts", kind="appliance.power")
        resistive = data.get("resistive", False)
        if not isinstance(resistive, bool):
            raise ConfigError(f"{where}: resistive is true or false", kind="appliance.shape")
        for name in ("name", "name_zh"):
            if not isinstance(data.get(name, ""), str):
                raise ConfigError(f"{where}: {name} is text", kind="appliance.shape")
        return cls(
            code=code if isinstance(code, str) else repr(code),
            name=data["name"],
            name_zh=data.get("name_zh", ""),
            power_min=power[0],
            power_max=power[1],
            pf_min=_decimal(factor[0], f"{where}: power_factor"),
            pf_max=_decimal(factor[1], f"{where}: power_factor"),
            resistive=resistive,
            surge_ratio=_decimal(data.get("surge_ratio", "1"), f"{where}: surge_ratio"),
            category=_category(data.get("category", "allowed"), where),
        )


def _pair(value: object, where: str) -> tuple:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ConfigError(f"{where} is [min, max], not {value!r}", kind="appliance.shape")
    return tuple(value)


def _decimal(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConfigError(f"{where}: a number as text, not {value!r}", kind="appliance.number")
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{where}: not a number: {value!r}", kind="appliance.number") from None
    if not result.is_finite():
        raise ConfigError(f"{where}: not a finite number: {value!r}", kind="appliance.number")
    return result


def _category(value: object, where: str) -> Category:
    try:
        return Category(value)
    except ValueError:
        raise ConfigError(
            f"{where}: category is 'allowed' or 'forbidden', not {value!r}", kind="appliance.category"
        ) from None


def parse_appliances(data: object, where: str = "appliance catalogue") -> dict[str, Appliance]:
    """The appliances of a decoded catalogue document, by code, validated (a code seen twice is an error)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("appliances"), list):
        raise ConfigError(f"{where}: expected {{'version': 1, 'appliances': [...]}}", kind="appliance.shape")
    if data.get("version") != CATALOGUE_VERSION:
        raise ConfigError(
            f"{where}: version {data.get('version')!r}; this engine reads version {CATALOGUE_VERSION}",
            kind="appliance.version",
        )
    found: dict[str, Appliance] = {}
    for index, entry in enumerate(data["appliances"]):
        appliance = Appliance.from_dict(entry, f"{where}: entry {index}")
        if appliance.code in found:
            raise ConfigError(
                f"{where}: appliance code {appliance.code!r} is defined twice", kind="appliance.duplicate"
            )
        found[appliance.code] = appliance
    return found


def load_appliances(source: str | os.PathLike | Mapping) -> dict[str, Appliance]:
    """A catalogue from a JSON file or a decoded document (see the module doc), by code."""
    if isinstance(source, Mapping):
        return parse_appliances(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read appliance catalogue {path}: {exc}", kind="appliance.file") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: not JSON: {exc}", kind="appliance.file") from exc
    return parse_appliances(data, str(path))


def catalogue_document(appliances: Iterable[Appliance]) -> dict:
    """The JSON document of ``appliances`` (:func:`load_appliances` reads it back)."""
    return {"version": CATALOGUE_VERSION, "appliances": [a.to_dict() for a in appliances]}


@functools.cache
def _builtin() -> tuple[Appliance, ...]:
    entry = resources.files("prepaid_engine").joinpath("data", "appliances.json")
    data = json.loads(entry.read_text(encoding="utf-8"))
    return tuple(parse_appliances(data, "built-in appliances.json").values())


def builtin_appliances() -> dict[str, Appliance]:
    """The shipped catalogue, by code (a new dict each call; the appliances are frozen)."""
    return {a.code: a for a in _builtin()}


def get_appliance(code: str, appliances: Mapping[str, Appliance] | None = None) -> Appliance:
    """The appliance ``code`` of ``appliances`` (default: the shipped catalogue); :class:`ConfigError` if
    unknown."""
    catalogue = builtin_appliances() if appliances is None else appliances
    try:
        return catalogue[code]
    except KeyError:
        raise ConfigError(f"unknown appliance {code!r}", kind="appliance.unknown", code=code) from None


def default_whitelist(appliances: Mapping[str, Appliance] | None = None) -> tuple[Appliance, ...]:
    """The catalogue's ``allowed`` appliances: the whitelist a profile starts with."""
    catalogue = builtin_appliances() if appliances is None else appliances
    return tuple(a for a in catalogue.values() if a.category is Category.ALLOWED)
