#!/usr/bin/env bash
# Deploys the whole stack to a LocalStack started with docker-compose.yml (Lambda there needs Docker).
# Needs: pip install aws-sam-cli-local awscli-local. Uses the `localstack` environment of samconfig.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v samlocal >/dev/null || { echo "samlocal missing: pip install aws-sam-cli-local" >&2; exit 1; }
command -v awslocal >/dev/null || { echo "awslocal missing: pip install awscli-local" >&2; exit 1; }
secret_arn=$(awslocal secretsmanager create-secret --name coupon-db \
  --secret-string '{"username":"root","password":""}' --query ARN --output text 2>/dev/null \
  || awslocal secretsmanager describe-secret --secret-id coupon-db --query ARN --output text)
samlocal build
samlocal deploy --config-env localstack --parameter-overrides \
  "DbSecretArn=${secret_arn}" "DbHost=host.docker.internal" "RedisHost=host.docker.internal" \
  "SubnetIds=subnet-00000000" "SecurityGroupIds=sg-00000000" \
  "JwtIssuer=https://local.coupon.test/" "JwtAudience=coupon-local"
