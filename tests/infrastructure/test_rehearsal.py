"""The deploy rehearsal (make check-template runs it on the built layer too): every documented parameter
set passes, and each check catches the defect it is there for, on a copy of the template with that defect."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from couponcore.config import Settings
from localdev.rehearsal import TEMPLATE, cold_paths, finishes_by, rehearse
from localdev.template import PARAMETER_SETS, Template, parameter_set

SETS = sorted(path.stem for path in PARAMETER_SETS.glob("*.json"))


def with_defect(tmp_path: Path, old: str, new: str) -> Path:
    text = TEMPLATE.read_text()
    assert text.count(old) >= 1, old
    copy = tmp_path / "template.yaml"
    copy.write_text(text.replace(old, new))
    return copy


def test_every_documented_parameter_set_would_deploy() -> None:
    assert rehearse(SETS, built=None) == []


def test_the_readme_documents_exactly_these_sets() -> None:
    readme = (TEMPLATE.parent / "README.md").read_text()
    documented = set(re.findall(r"deploy/parameter-sets/([a-z0-9-]+)\.json", readme))
    assert documented == set(SETS)


def test_reserving_concurrency_on_a_new_account_is_refused(tmp_path: Path) -> None:
    defect = with_defect(
        tmp_path,
        "ReservedConcurrentExecutions: !If [UseReservedConcurrency, 40, !Ref AWS::NoValue]",
        "ReservedConcurrentExecutions: 40",
    )
    problems = rehearse(["new-account", "account-1000"], None, defect)
    assert problems and all(p.startswith("new-account: reserved concurrency 40") for p in problems)


def test_a_valkey_group_with_a_passwordless_default_user_is_refused(tmp_path: Path) -> None:
    defect = with_defect(tmp_path, "    Condition: CacheNeedsDefaultUser\n", "    Condition: UseServerlessCache\n")
    defect.write_text(
        defect.read_text().replace(
            "UserIds: !If\n        - CacheNeedsDefaultUser\n        - [!Ref CacheDefaultUser, !Ref CacheServiceUser]\n"
            "        - [!Ref CacheServiceUser]",
            "UserIds: [!Ref CacheDefaultUser, !Ref CacheServiceUser]",
        )
    )
    problems = rehearse(["new-account", "serverless-redis"], None, defect)
    assert problems == ["new-account: CacheUserGroup: Valkey users must authenticate (password or IAM)"]


def test_a_redis_group_without_a_default_user_is_refused(tmp_path: Path) -> None:
    defect = with_defect(
        tmp_path, "        - [!Ref CacheDefaultUser, !Ref CacheServiceUser]\n", "        - [!Ref CacheServiceUser]\n"
    )
    problems = rehearse(["serverless-redis"], None, defect)
    assert problems == ["serverless-redis: CacheUserGroup: a Redis OSS user group must hold a user named default"]


def test_a_cache_secret_no_role_may_read_is_found(tmp_path: Path) -> None:
    defect = with_defect(
        tmp_path,
        "SecretArn: !If [UseServerlessCache, !Ref CacheUserSecret, !Ref RedisSecretArn]",
        "SecretArn: !Ref CacheUserSecret",
    )
    problems = rehearse(["own-cache-acl"], None, defect)
    assert problems and all("may not read REDIS_SECRET_ARN" in p for p in problems)


def test_a_queue_policy_that_shuts_the_service_out_is_found(tmp_path: Path) -> None:
    defect = with_defect(tmp_path, "                  - !GetAtt IssueAsyncFunctionRole.Arn\n", "")
    problems = rehearse(["account-1000"], None, defect)
    assert problems == [
        "account-1000: IssueAsyncFunction: its role may not sqs:SendMessage on ISSUE_QUEUE_URL "
        "(arn:aws:sqs:us-east-1:000000000000:coupon-dev-IssueQueue)"
    ]


def test_a_queue_anyone_may_send_to_is_found(tmp_path: Path) -> None:
    defect = with_defect(
        tmp_path,
        "          - Sid: OnlyTheServiceSends\n            Effect: Deny",
        "          - Sid: OnlyTheServiceSends\n            Effect: Allow",
    )
    problems = rehearse(["account-1000"], None, defect)
    assert any("a role outside the service may send to it" in p for p in problems)


@pytest.mark.parametrize(
    "function", ["IssueSyncFunction", "IssueAsyncFunction", "CouponsFunction", "WalletFunction", "OpsFunction"]
)
def test_the_cold_path_that_did_not_fit_now_ends_inside_the_timeout(function: str) -> None:
    """The deploy review's case: secret read (4 s) + connect (3 s) + statement (5 s) + a second secret read
    after a refusal, each checked alone. Now every wait is at its worst, the guards applied, summed."""
    config = Template(TEMPLATE, parameter_set("account-1000")["parameters"]).functions[function]
    settings = Settings.from_env({k: v for k, v in config.environment.items() if v and not k.endswith("_CA")})
    assert finishes_by(cold_paths(settings)[function], config.timeout_s) <= config.timeout_s
    before = Settings.from_env({"SECRETS_TIMEOUT_S": "1", "DB_CONNECT_TIMEOUT_S": "3", "DB_LOCK_WAIT_TIMEOUT_S": "4"})
    unguarded = [step.seconds for step in cold_paths(before)[function]]
    if function == "IssueSyncFunction":
        assert sum(unguarded) > config.timeout_s  # what the review found
