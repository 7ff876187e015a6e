"""The configuration: defaults, parsing, and a clear error that names the variable for a bad value."""

from __future__ import annotations

import pytest

from couponcore.config import ConfigError, Settings
from couponcore.services.async_issue import LOCKED_SEAT_CALLS, lock_lease_s


def test_defaults_need_no_environment() -> None:
    settings = Settings.from_env({})
    assert (settings.db_pool_size, settings.redis_timeout_s, settings.require_identity) == (2, 1.0, False)
    assert settings.lock_lease_s is None  # derived from the critical section it guards
    assert lock_lease_s(None, settings.redis_timeout_s) == LOCKED_SEAT_CALLS * settings.redis_timeout_s + 1.0


@pytest.mark.parametrize(("word", "value"), [("true", True), ("ON", True), ("1", True), ("no", False), ("0", False)])
def test_one_idea_of_true(word: str, value: bool) -> None:
    assert Settings.from_env({"REQUIRE_IDENTITY": word}).require_identity is value


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"REQUIRE_IDENTITY": "maybe"}, "REQUIRE_IDENTITY"),
        ({"DB_POOL_SIZE": "two"}, "DB_POOL_SIZE"),
        ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE"),
        ({"REDIS_TIMEOUT_S": "-1"}, "REDIS_TIMEOUT_S"),
        ({"SQS_TIMEOUT_S": "fast"}, "SQS_TIMEOUT_S"),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)


def test_a_lease_shorter_than_the_critical_section_is_refused() -> None:
    settings = Settings.from_env({"LOCK_LEASE_S": "2", "REDIS_TIMEOUT_S": "1"})
    with pytest.raises(ConfigError, match="LOCK_LEASE_S"):
        lock_lease_s(settings.lock_lease_s, settings.redis_timeout_s)
