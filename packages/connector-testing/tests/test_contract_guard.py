"""The guard that keeps contract tests from being replaced silently."""

import pytest

from connector_testing import ConnectorContractTests


def test_overriding_a_contract_test_is_refused() -> None:
    with pytest.raises(TypeError, match="overrides a contract test"):

        class Sneaky(ConnectorContractTests):
            def test_check_reports_ok(self) -> None:  # type: ignore[override]
                pass


def test_override_marked_xfail_with_reason_is_allowed() -> None:
    class Honest(ConnectorContractTests):
        @pytest.mark.xfail(reason="this connector has no network round trip")
        def test_check_reports_ok(self) -> None:  # type: ignore[override]
            pass

    assert "test_check_reports_ok" in vars(Honest)


def test_xfail_without_reason_is_refused() -> None:
    with pytest.raises(TypeError):

        class Vague(ConnectorContractTests):
            @pytest.mark.xfail
            def test_check_reports_ok(self) -> None:  # type: ignore[override]
                pass


def test_new_tests_in_subclass_are_fine() -> None:
    class Extra(ConnectorContractTests):
        def test_something_else(self) -> None:
            pass

    assert "test_something_else" in vars(Extra)


def test_override_through_a_mixin_is_refused() -> None:
    class Mixin:
        def test_check_reports_ok(self) -> None:
            pass

    with pytest.raises(TypeError, match="overrides a contract test"):

        class ViaMixin(Mixin, ConnectorContractTests):
            pass


def test_overriding_a_capability_suite_test_is_refused() -> None:
    from connector_testing import ReadableContractTests, RoadContractTests

    with pytest.raises(TypeError, match="of ReadableContractTests"):

        class Sneaky(RoadContractTests, ReadableContractTests):
            async def test_limit_stops_after_that_many_records(self) -> None:  # type: ignore[override]
                pass
