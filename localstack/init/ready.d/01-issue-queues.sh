#!/bin/bash
# LocalStack ready hook: the issue queue and its dead-letter queue, with the template's settings
# (visibility 180 s, 5 receives before the DLQ). `make run` creates the same pair when it is missing.
set -euo pipefail
awslocal sqs create-queue --queue-name coupon-issue-dlq >/dev/null
dlq_arn=$(awslocal sqs get-queue-attributes --queue-url "$(awslocal sqs get-queue-url --queue-name coupon-issue-dlq --query QueueUrl --output text)" \
  --attribute-names QueueArn --query Attributes.QueueArn --output text)
awslocal sqs create-queue --queue-name coupon-issue --attributes \
  "{\"VisibilityTimeout\":\"180\",\"RedrivePolicy\":\"{\\\"deadLetterTargetArn\\\":\\\"${dlq_arn}\\\",\\\"maxReceiveCount\\\":\\\"5\\\"}\"}" >/dev/null
echo "coupon-issue queues ready"
