"""The environment's readers, shared by the Django settings and gunicorn's config."""

from __future__ import annotations

import builtins
import math
from typing import Any, NoReturn

import environ
from django.core.exceptions import ImproperlyConfigured


class CheckedEnv(environ.Env):
    """The environment's readers, each stopping start-up with ImproperlyConfigured naming the setting, what
    it takes and what it got (not a ValueError's traceback, nor a value read as something else: environ
    reads DEBUG=maybe as false). An empty value means unset, as .env.example has it."""

    BOOLEANS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}

    def _raw(self, var: str) -> str:
        return str(self.ENVIRON.get(var, "")).strip()

    @staticmethod
    def refuse(var: str, got: object, takes: str, default: object) -> NoReturn:
        raise ImproperlyConfigured(f"{var}={got!r}: it takes {takes}; unset, it is {default}.") from None

    def bool(self, var: str, default: Any) -> builtins.bool:  # type: ignore[override]
        raw = self._raw(var)
        if not raw:
            return builtins.bool(default)
        if raw.lower() not in self.BOOLEANS:
            self.refuse(var, raw, "true or false (or 1/0, yes/no, on/off)", str(default).lower())
        return self.BOOLEANS[raw.lower()]

    def int(  # type: ignore[override]
        self, var: str, default: Any, *, at_least: builtins.float | None = None, note: str = ""
    ) -> builtins.int:
        return builtins.int(self._number(var, default, builtins.int, at_least, note))

    def float(  # type: ignore[override]
        self, var: str, default: Any, *, at_least: builtins.float | None = None, note: str = ""
    ) -> builtins.float:
        return builtins.float(self._number(var, default, builtins.float, at_least, note))

    def _number(self, var: str, default: Any, kind: type, at_least: builtins.float | None, note: str) -> builtins.float:
        takes = "a whole number" if kind is builtins.int else "a number"
        if at_least is not None:
            takes += f", {at_least:g} or more"
        if note:
            takes += f" ({note})"
        raw = self._raw(var)
        try:
            value = kind(raw) if raw else default
        except ValueError:
            self.refuse(var, raw, takes, default)
        if not math.isfinite(value) or (at_least is not None and value < at_least):
            self.refuse(var, raw, takes, default)
        return value

    def choice(self, var: str, choices: tuple[str, ...], default: str) -> str:
        """One of ``choices``, in any case, answered as ``choices`` spell it."""
        raw = self._raw(var)
        if not raw:
            return default
        for choice in choices:
            if raw.lower() == choice.lower():
                return choice
        self.refuse(var, raw, " or ".join(choices) if len(choices) == 2 else f"one of {', '.join(choices)}", default)
