// Compiles the devnet contracts with the npm `solc` package and writes artifacts.json.
// Usage: node chains/contracts/compile.mjs [output-path]   (default: artifacts.json here)
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const solc = require('solc')

const here = dirname(fileURLToPath(import.meta.url))
const output = resolve(process.argv[2] ?? join(here, 'artifacts.json'))

const sources = {}
for (const file of readdirSync(here).filter((f) => f.endsWith('.sol')).sort()) {
  sources[file] = { content: readFileSync(join(here, file), 'utf8') }
}

const input = {
  language: 'Solidity',
  sources,
  settings: {
    evmVersion: 'cancun',
    optimizer: { enabled: true, runs: 200 },
    // No metadata hash: the bytecode then depends only on the code, not on comments or paths.
    metadata: { bytecodeHash: 'none', appendCBOR: false },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
  },
}

const result = JSON.parse(solc.compile(JSON.stringify(input)))
const diagnostics = result.errors ?? []
for (const d of diagnostics) console.error(d.formattedMessage)
if (diagnostics.some((d) => d.severity === 'error')) process.exit(1)
if (diagnostics.length > 0) {
  console.error('refusing to write artifacts while the compiler reports warnings')
  process.exit(1)
}

const contracts = {}
for (const file of Object.keys(result.contracts).sort()) {
  for (const name of Object.keys(result.contracts[file]).sort()) {
    const c = result.contracts[file][name]
    contracts[name] = { abi: c.abi, bytecode: '0x' + c.evm.bytecode.object, source: file }
  }
}

const { evmVersion, optimizer } = input.settings
const artifact = { compiler: solc.version(), evmVersion, optimizerRuns: optimizer.runs, contracts }
writeFileSync(output, JSON.stringify(artifact, null, 2) + '\n')
