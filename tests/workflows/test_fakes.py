"""Each fake stands in for a real activity: same name, same input and result types.

A renamed activity, or a contract changed on one side only, fails here rather than leaving a
workflow test that passes against an activity that no longer exists.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any, get_type_hints

from temporalio import activity

import activities
from tests.workflows.fakes import Fakes


def _real() -> dict[str, Any]:
    """Every activity defined in the `activities` package, by name (the methods, unbound)."""
    found: dict[str, Any] = {}
    for info in pkgutil.iter_modules(activities.__path__):
        module = importlib.import_module(f"activities.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            for _, fn in inspect.getmembers(cls, inspect.isfunction):
                defn = activity._Definition.from_callable(fn)
                if defn is not None and cls.__module__ == module.__name__:
                    found[defn.name or fn.__name__] = fn
    return found


def _signature(fn: Any) -> tuple[list[Any], Any]:
    hints = get_type_hints(fn)
    params = [hints.get(p) for p in inspect.signature(fn).parameters if p != "self"]
    return params, hints.get("return")


def check_fakes(fakes: Fakes) -> None:
    """Every fake `fakes` registers is the real activity of its name, with the same signature."""
    real = _real()
    for fake in fakes.activities():
        name = activity._Definition.must_from_callable(fake).name
        assert name in real, f"fake {name} has no real activity"
        assert _signature(fake) == _signature(real[name]), name


def test_every_fake_is_a_real_activity_with_its_contract() -> None:
    check_fakes(Fakes())
