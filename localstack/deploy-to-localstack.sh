#!/usr/bin/env bash
# Deploys the stack into the LocalStack of docker-compose.yml (its Lambda runs functions in Docker).
# Needs: pip install aws-sam-cli-local awscli-local, and a LocalStack plan that runs API Gateway v2 (the
# HTTP API): see README.md here. Uses the `localstack` environment of samconfig.toml.
# What differs from AWS is what LocalStack has no counterpart for: no VPC endpoints, proxy, serverless cache
# or SnapStart; the compose MariaDB and Valkey stand in, with TLS from localstack/certs.sh's own CA.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v samlocal >/dev/null || { echo "samlocal missing: pip install aws-sam-cli-local" >&2; exit 1; }
command -v awslocal >/dev/null || { echo "awslocal missing: pip install awscli-local" >&2; exit 1; }
localstack/certs.sh
# The local CA ships in the layer, where DbCaBundle and RedisCaBundle point.
cp localstack/certs/ca.pem layers/couponcore/couponcore/certs/local-ca.pem
ca=/opt/python/couponcore/certs/local-ca.pem
secret_arn=$(awslocal secretsmanager create-secret --name coupon-db \
  --secret-string '{"username":"root","password":""}' --query ARN --output text 2>/dev/null \
  || awslocal secretsmanager describe-secret --secret-id coupon-db --query ARN --output text)
vpc=$(awslocal ec2 describe-vpcs --query 'Vpcs[0].VpcId' --output text)
subnet=$(awslocal ec2 describe-subnets --query 'Subnets[0].SubnetId' --output text)
group=$(awslocal ec2 describe-security-groups --query 'SecurityGroups[0].GroupId' --output text)
PATH="$PWD/.venv/bin:$PATH" samlocal build
samlocal deploy --config-env localstack --parameter-overrides \
  "DbAdminSecretArn=${secret_arn}" "DbHost=host.docker.internal" "DbCaBundle=${ca}" \
  "RedisHost=host.docker.internal" "RedisPort=6380" "RedisCaBundle=${ca}" "RedisClusterMode=false" \
  "VpcId=${vpc}" "SubnetIds=${subnet}" "SecurityGroupIds=${group}" "CreateVpcEndpoints=No" \
  "IssueColdStarts=None" "CorsAllowOrigins=http://localhost:3000" \
  "JwtIssuer=https://local.coupon.test/" "JwtAudience=coupon-local"
