"""Balance levels of a prepaid account and what they ask for: the one home of the rule.

An account has three warning levels and a cut-off level (money amounts, ``Decimal``), plus an overdraft
allowance that moves the cut-off down. Its **level** is the most severe one whose threshold its balance is at
or below, compared at the currency's precision (the difference rounded half away from zero to the
currency's quantum, as Odoo's ``compare_amounts`` does):

=========== ==========================================
level       the balance is at or below
=========== ==========================================
cutoff      cut-off level - overdraft allowance
warning_3   warning level 3
warning_2   warning level 2
warning_1   warning level 1
normal      (above all of them)
=========== ==========================================

Levels must be ordered: warning 1 > warning 2 > warning 3 >= cut-off, and the overdraft allowance is not
negative (:meth:`Levels.check`).

What a level asks for is a rule on *states*, not on crossings (:func:`supervise`): an account is alerted of
each level once per descent (``alerted`` remembers the most severe level notified; a rise brings it back up,
so the next descent notifies again), its supply is cut while it is at the cut-off level (unless it keeps
power or nobody supervises it) and restored as soon as it is not. An account that is already at a level
(opened at the cut-off, levels changed by a manager, keep-power switched off) gets the same alert and the
same cut-off as one that just fell to it.

Pure functions and frozen data; the Odoo addons call them for one account or for thousands
(:func:`level_function` works the thresholds out once per set of levels).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache

from .errors import ConfigError

__all__ = [
    "SEVERITY",
    "USAGE_DAYS",
    "Level",
    "Levels",
    "Supervision",
    "days_left",
    "level_function",
    "level_of",
    "quantum_of",
    "supervise",
]


class Level(enum.StrEnum):
    NORMAL = "normal"
    WARNING_1 = "warning_1"
    WARNING_2 = "warning_2"
    WARNING_3 = "warning_3"
    CUTOFF = "cutoff"


# Harmless to severe: a level's rank.
SEVERITY = {level: rank for rank, level in enumerate(Level)}
# Most severe first, each with the attribute of Levels that holds its threshold.
_THRESHOLDS = (
    (Level.CUTOFF, "cutoff_threshold"),
    (Level.WARNING_3, "warn_level_3"),
    (Level.WARNING_2, "warn_level_2"),
    (Level.WARNING_1, "warn_level_1"),
)


def _decimal(value: object, what: str) -> Decimal:
    if isinstance(value, float):
        value = repr(value)
    try:
        number = Decimal(value if value is not None else 0)
    except (ArithmeticError, TypeError, ValueError) as exc:
        raise ConfigError(f"{what} is not a number: {value!r}") from exc
    if not number.is_finite():
        raise ConfigError(f"{what} is not a finite number: {value!r}")
    return number


def quantum_of(decimal_places: int) -> Decimal:
    """The smallest amount of a currency with ``decimal_places`` decimals (2 -> ``0.01``)."""
    return Decimal(1).scaleb(-int(decimal_places))


@dataclass(frozen=True, slots=True)
class Levels:
    """An account's warning and cut-off levels (money, in the account's currency)."""

    warn_level_1: Decimal
    warn_level_2: Decimal
    warn_level_3: Decimal
    cutoff_level: Decimal
    overdraft_limit: Decimal = Decimal(0)

    @classmethod
    def of(cls, warn_level_1, warn_level_2, warn_level_3, cutoff_level, overdraft_limit=0) -> Levels:
        """Levels from numbers of any kind (floats, texts of numeric columns, Decimals)."""
        return cls(
            _decimal(warn_level_1, "warning level 1"),
            _decimal(warn_level_2, "warning level 2"),
            _decimal(warn_level_3, "warning level 3"),
            _decimal(cutoff_level, "cut-off level"),
            _decimal(overdraft_limit, "overdraft allowance"),
        )

    @property
    def cutoff_threshold(self) -> Decimal:
        """The balance at or below which the supply is cut: cut-off level minus overdraft allowance."""
        return self.cutoff_level - self.overdraft_limit

    @property
    def ordered(self) -> bool:
        """Whether warning 1 > warning 2 > warning 3 >= cut-off."""
        return self.warn_level_1 > self.warn_level_2 > self.warn_level_3 >= self.cutoff_level

    def check(self) -> Levels:
        """Raise :class:`ConfigError` unless the levels are ordered and the overdraft is not negative."""
        if not self.ordered:
            raise ConfigError("levels must be ordered: warning 1 > warning 2 > warning 3 >= cut-off")
        if self.overdraft_limit < 0:
            raise ConfigError("the overdraft allowance cannot be negative")
        return self


# The days of usage the days-left estimate averages.
USAGE_DAYS = 30


def days_left(spendable, charged, history_days: int, window: int = USAGE_DAYS) -> int:
    """How many whole days ``spendable`` (the balance above the cut-off threshold) lasts at the average daily
    charge: ``charged`` (what was deducted for consumption in the last ``window`` days) over ``window``
    days, or over ``history_days`` (the days since the first charge, that day included) when the account
    has less history than that, so that a new tenant's first days are not diluted.

    Exact (fractions, then the floor): 10 spendable at 5 per 3 days is 6 days, not 5.999.... Nothing
    charged, or nothing spendable, says 0 (the estimate has nothing to tell)."""
    spendable = Fraction(_decimal(spendable, "spendable balance"))
    charged = Fraction(_decimal(charged, "charged amount"))
    if window < 1:
        raise ConfigError(f"the usage window must be at least one day, not {window!r}")
    days = min(window, max(1, int(history_days)))
    if charged <= 0 or spendable <= 0:
        return 0
    return int(spendable * days // charged)


def level_of(balance, levels: Levels, quantum: Decimal = Decimal("0.01")) -> Level:
    """The level of an account with ``balance`` and ``levels``, in a currency whose smallest amount is
    ``quantum``."""
    return level_function(levels, quantum)(_decimal(balance, "balance"))


@lru_cache(maxsize=4096)
def level_function(levels: Levels, quantum: Decimal = Decimal("0.01")) -> Callable[[Decimal], Level]:
    """:func:`level_of` as a function of the balance alone (a ``Decimal``), for the many accounts that share
    their levels (a company's defaults): the thresholds are worked out once.

    ``(balance - threshold)`` rounded half away from zero to ``quantum`` is ``<= 0`` exactly when
    ``balance - threshold < quantum / 2`` (half a quantum already rounds up, away from zero), so each level is
    one comparison with ``threshold + quantum / 2``."""
    half = quantum / 2
    cuts = tuple((level, getattr(levels, attribute) + half) for level, attribute in _THRESHOLDS)

    def level(balance: Decimal) -> Level:
        for name, cut in cuts:
            if balance < cut:
                return name
        return Level.NORMAL

    return level


@dataclass(frozen=True, slots=True)
class Supervision:
    """What an account's level asks for, given what was done already (:func:`supervise`).

    ``alerted``: the alerted level to store; ``notify``: the level to notify the tenant of now (None: no
    alert); ``cut``: True to cut the supply now, False to restore it now, None to leave it; ``supply_cut``:
    whether the platform holds the supply cut after this.
    """

    alerted: Level
    notify: Level | None
    cut: bool | None
    supply_cut: bool


def supervise(
    level: Level | str,
    alerted: Level | str | None,
    supply_cut: bool,
    *,
    keep_power: bool = False,
    supervised: bool = True,
) -> Supervision:
    """The state rule of alerts and supply for an account at ``level``.

    - ``alerted`` (the most severe level notified since the balance last rose) follows the level up at once;
      a level more severe than it is notified once (when ``supervised``: the platform bills at least one of
      the account's meters) and becomes the alerted level.
    - The supply is cut while the level is the cut-off, unless the account keeps power or nobody supervises
      it; it is restored as soon as that no longer holds (the balance rose, keep-power was switched on).
    """
    level = Level(level)
    alerted = Level(alerted or Level.NORMAL)
    notify = None
    if SEVERITY[level] < SEVERITY[alerted]:
        alerted = level
    elif SEVERITY[level] > SEVERITY[alerted] and supervised:
        notify = alerted = level
    should_cut = level == Level.CUTOFF and not keep_power and supervised
    cut = None
    if should_cut and not supply_cut:
        cut = True
    elif supply_cut and not should_cut:
        cut = False
    return Supervision(alerted, notify, cut, should_cut)
