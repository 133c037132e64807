// Counts results the way the suite does (test-engine/lib/results.mjs determineTestResult,
// dependencies honoured), for one run and for every published one in results/.
// Usage: node count.mjs <our-results.json>   (run from the suite's root)
// Prints one JSON object: { ours: {required, optimal, failures: [...]}, published: [...],
// totals: {required, optimal} }.
import fs from 'fs'
import tests from './tests/index.mjs'
import published from './results/index.mjs'
import { determineTestResult, resultTypes } from './test-engine/lib/results.mjs'

function count (results) {
  const out = { required: 0, optimal: 0, failures: [], optional_failures: [] }
  for (const suite of tests) {
    for (const test of suite.tests) {
      if (test.browser_only === true) continue
      const kind = test.kind || 'required'
      if (kind !== 'required' && kind !== 'optimal') continue
      const result = determineTestResult(tests, test.id, results)
      if (result === resultTypes.pass) {
        out[kind] += 1
      } else {
        const why = results[test.id] === undefined ? 'untested' : JSON.stringify(results[test.id])
        const entry = `${test.id} [${result[2]}] ${why}`
        if (kind === 'required') out.failures.push(entry)
        else out.optional_failures.push(entry)
      }
    }
  }
  return out
}

const totals = { required: 0, optimal: 0 }
for (const suite of tests) {
  for (const test of suite.tests) {
    if (test.browser_only === true) continue
    const kind = test.kind || 'required'
    if (kind in totals) totals[kind] += 1
  }
}
const ours = count(JSON.parse(fs.readFileSync(process.argv[2], 'utf8')))
const others = published
  .filter(p => p.type !== 'browser')
  .map(p => {
    const c = count(JSON.parse(fs.readFileSync(`results/${p.file}`, 'utf8')))
    return { name: `${p.name} ${p.version || ''}`.trim(), required: c.required, optimal: c.optimal }
  })
console.log(JSON.stringify({ totals, ours, published: others }, null, 1))
