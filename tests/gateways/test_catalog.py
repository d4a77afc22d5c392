"""The catalog's naming rule: a gateway is a package's own name, or `<package>_<suffix>` for a package that
allows instances, whose settings then come from `PAYQL_<INSTANCE>_*`."""

from __future__ import annotations

import pytest

from gateways import catalog
from gateways.package import GatewaySettings


def test_a_package_name_is_its_own_gateway() -> None:
    for name in catalog.available():
        assert catalog.package_of(name) is catalog.package(name)
        assert catalog.settings_type_of(name) is catalog.package(name).settings_type


def test_an_instance_runs_its_package_with_settings_of_its_own_prefix() -> None:
    [allowing] = [name for name in catalog.available() if catalog.package(name).allows_instances]
    instance = f"{allowing}_backup_2"
    assert catalog.package_of(instance) is catalog.package(allowing)
    settings_type = catalog.settings_type_of(instance)
    assert issubclass(settings_type, catalog.package(allowing).settings_type)
    assert settings_type.instance == instance
    assert settings_type.variable("webhook_secrets") == f"PAYQL_{instance.upper()}_WEBHOOK_SECRETS"
    assert catalog.package_of(instance).gateway_name(settings_type()) == instance


@pytest.mark.parametrize("name", ["nothing", "sandbox_", "sandbox-backup", "sandbox_Backup", "_sandbox", "sandboxb"])
def test_a_name_that_follows_no_rule_is_unknown(name: str) -> None:
    assert not catalog.is_gateway(name)
    with pytest.raises(catalog.UnknownGatewayPackage):
        catalog.package_of(name)


def test_a_package_that_runs_once_has_no_instances() -> None:
    once = [name for name in catalog.available() if not catalog.package(name).allows_instances]
    assert once
    for name in once:
        with pytest.raises(catalog.UnknownGatewayPackage, match="one instance only"):
            catalog.package_of(f"{name}_backup")


def test_settings_that_name_their_own_variables_cannot_serve_an_instance() -> None:
    aliased = [
        catalog.package(name).settings_type
        for name in catalog.available()
        if any(field.validation_alias for field in catalog.package(name).settings_type.model_fields.values())
    ]
    assert aliased
    for settings_type in aliased:
        with pytest.raises(TypeError, match="an instance cannot"):
            settings_type.for_instance("whatever_backup")


def test_every_package_that_allows_instances_can_build_their_settings() -> None:
    for name in catalog.available():
        if catalog.package(name).allows_instances:
            assert issubclass(catalog.package(name).settings_type.for_instance(f"{name}_x"), GatewaySettings)
