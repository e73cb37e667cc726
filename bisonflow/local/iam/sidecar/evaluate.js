// The emulator's IAM policy evaluator: @cloud-copilot/iam-simulate behind JSON lines.
//
// One request per stdin line: {"id": n, "simulations": [Simulation, ...]} (the package's own
// Simulation shape). One answer per stdout line, in order: {"id": n, "results": [...]} with,
// per simulation, {"decision": "Allowed" | "ImplicitlyDenied" | "ExplicitlyDenied",
// "deniedBy": see deniedBy()} or {"error": "..."} when the package refused the input (an
// unknown action, a resource ARN of no type the action takes, a context key the action does
// not take, a malformed policy).
// Lines are answered one at a time, so an answer never interleaves with another.
'use strict'

const readline = require('node:readline')
const { runSimulation, runUnsafeSimulation } = require('@cloud-copilot/iam-simulate')

function describeErrors(errors) {
  const details = []
  for (const [key, value] of Object.entries(errors)) {
    if (key !== 'message' && value && Object.keys(value).length) {
      details.push(`${key}: ${JSON.stringify(value)}`)
    }
  }
  return details.length ? `${errors.message} (${details.join('; ')})` : errors.message
}

async function evaluate(request) {
  // `validateAs`: an ARN of the same type to validate with, where AWS's real ARN is one the
  // package's ARN patterns reject (AWS's public SSM parameters have no account); the
  // decision is then made on the real ARN, without validation.
  const { validateAs, ...simulation } = request
  if (validateAs) {
    const checked = await evaluate({
      ...simulation,
      request: { ...simulation.request, resource: { ...simulation.request.resource, resource: validateAs } }
    })
    if (checked.error) return checked
    return { decision: runUnsafeSimulation(simulation, { simulationMode: 'Strict' }) }
  }
  return await evaluateValidated(simulation)
}

// Which kind of policy refused, for AWS's wording of the refusal: "identity", "resource" or
// "boundary" (an explicit deny there, or, for an implicit deny, the boundary allowing nothing).
function deniedBy(analysis) {
  if (!analysis) return 'identity'
  const kinds = [
    ['identity', analysis.identityAnalysis],
    ['resource', analysis.resourceAnalysis],
    ['boundary', analysis.permissionBoundaryAnalysis]
  ]
  for (const [kind, part] of kinds) {
    if (part && part.result === 'ExplicitlyDenied') return kind
  }
  return (analysis.blockedBy || []).includes('pb') ? 'boundary' : 'identity'
}

async function evaluateValidated(simulation) {
  const outcome = await runSimulation(simulation, { simulationMode: 'Strict' })
  if (outcome.resultType === 'error') {
    return { error: describeErrors(outcome.errors) }
  }
  const results = outcome.resultType === 'single' ? [outcome.result] : outcome.results
  const ignored = [...new Set(results.flatMap((r) => r.ignoredContextKeys || []))]
  if (ignored.length) {
    return {
      error: `context keys ${ignored.join(', ')} do not apply to ${simulation.request.action} on ${simulation.request.resource.resource}`
    }
  }
  const refusing = results.find((r) => r.analysis && r.analysis.result !== 'Allowed')
  return { decision: outcome.overallResult, deniedBy: deniedBy(refusing && refusing.analysis) }
}

async function main() {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of lines) {
    if (!line.trim()) continue
    let id = null
    try {
      const message = JSON.parse(line)
      id = message.id
      const results = []
      for (const simulation of message.simulations) {
        results.push(await evaluate(simulation))
      }
      process.stdout.write(JSON.stringify({ id, results }) + '\n')
    } catch (exc) {
      process.stdout.write(JSON.stringify({ id, failure: String((exc && exc.stack) || exc) }) + '\n')
    }
  }
}

main()
