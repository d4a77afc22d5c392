"""Every gateway package runs the gateway contract: `tests/gateways/<name>/test_contract.py` subclasses
`ContractSuite` (tests/gateways/contract.py) with the harness for that gateway's fake."""

from __future__ import annotations

import importlib
import inspect

from gateways import catalog
from tests.gateways.contract import ContractSuite


def test_every_gateway_package_runs_the_contract() -> None:
    """A new package in gateways/ fails here until its test folder has a TestContract(ContractSuite)."""
    missing = []
    for name in catalog.available():
        try:
            module = importlib.import_module(f"tests.gateways.{name}.test_contract")
        except ModuleNotFoundError:
            missing.append(name)
            continue
        suite = getattr(module, "TestContract", None)
        if not (inspect.isclass(suite) and issubclass(suite, ContractSuite)):
            missing.append(name)
    assert missing == []
