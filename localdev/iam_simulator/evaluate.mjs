// Answers, one JSON line per request line on stdin, whether AWS would allow a call: the principal's
// identity policies and the resource's policy, evaluated by @cloud-copilot/iam-simulate (AWS's documented
// evaluation logic: explicit deny, identity and resource policies, every condition operator).
//
// In:  {"principal": "arn:aws:iam::...:role/R", "action": "sqs:SendMessage", "resource": "arn:...",
//       "account": "000000000000", "identityPolicies": [{"name": "...", "policy": {...}}],
//       "resourcePolicy": {...} | null, "context": {"aws:SecureTransport": "true", ...}}
// Out: {"result": "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied", "allowedBy": ["policy name#index"],
//       "errors": null | {...}}
import { createInterface } from 'node:readline'
import { runSimulation } from '@cloud-copilot/iam-simulate'

function allowingStatements(result) {
  const identity = result?.result?.analysis?.identityAnalysis
  return (identity?.allowStatements ?? []).map((s) => `${s.policyId}#${s.explain?.identifier ?? '?'}`)
}

async function evaluate(request) {
  const simulation = {
    identityPolicies: request.identityPolicies,
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: request.resourcePolicy ?? undefined,
    request: {
      principal: request.principal,
      action: request.action,
      resource: { resource: request.resource, accountId: request.account },
      contextVariables: { 'aws:PrincipalArn': request.principal, ...(request.context ?? {}) }
    }
  }
  const outcome = await runSimulation(simulation, {})
  if (outcome.errors) {
    return { result: 'Invalid', allowedBy: [], errors: outcome.errors }
  }
  return { result: outcome.overallResult, allowedBy: allowingStatements(outcome), errors: null }
}

const lines = createInterface({ input: process.stdin })
for await (const line of lines) {
  let answer
  try {
    answer = await evaluate(JSON.parse(line))
  } catch (error) {
    answer = { result: 'Invalid', allowedBy: [], errors: { message: String(error) } }
  }
  process.stdout.write(JSON.stringify(answer) + '\n')
}
