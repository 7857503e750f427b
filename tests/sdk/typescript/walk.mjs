// The official TypeScript SDK's everyday calls against a Daytona API (daytonaflow serve in the tests).
// Each step's outcome is printed as one JSON line {"step", "ok", "value" | "error"}; the Python test
// (tests/sdk/test_sdk_typescript.py) asserts on the values. Configuration comes from the SDK's own
// environment variables (DAYTONA_API_URL, DAYTONA_API_KEY) plus ORIGIN_REPO, a git URL to clone.
import { Daytona } from '@daytonaio/sdk'

const began = Date.now()
const report = (step, ok, payload) =>
  process.stdout.write(JSON.stringify({ step, ok, seconds: (Date.now() - began) / 1000, ...payload }) + '\n')

async function step(name, work) {
  try {
    const value = await work()
    report(name, true, { value: value ?? null })
    return value
  } catch (error) {
    report(name, false, { error: String(error?.message ?? error) })
    return undefined
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const daytona = new Daytona()
let sandbox
await step('create', async () => {
  sandbox = await daytona.create({ labels: { suite: 'typescript' }, envVars: { GREETING: 'hello' } })
  return { id: sandbox.id, state: sandbox.state, labels: sandbox.labels }
})
if (sandbox) {
  await step('exec', async () => {
    const response = await sandbox.process.executeCommand('echo "$GREETING from $(pwd)"', '/tmp')
    return { exitCode: response.exitCode, result: response.result }
  })
  await step('codeRun', async () => {
    const response = await sandbox.process.codeRun('import sys\nprint(sum(range(10)), sys.argv[1:])')
    return { exitCode: response.exitCode, result: response.result }
  })
  const bytes = Buffer.from(Array.from({ length: 70000 }, (_, i) => i % 251))
  await step('upload', async () => {
    await sandbox.fs.uploadFile(bytes, 'data/blob.bin')
    const check = await sandbox.process.executeCommand('sha256sum data/blob.bin | cut -d" " -f1')
    return { sha256: check.result.trim() }
  })
  await step('download', async () => {
    const back = await sandbox.fs.downloadFile('data/blob.bin')
    return { size: back.length, equal: Buffer.compare(back, bytes) === 0 }
  })
  await step('gitClone', async () => {
    await sandbox.git.clone(process.env.ORIGIN_REPO, 'repo')
    const log = await sandbox.process.executeCommand('git -C repo log -1 --format=%s')
    return { subject: log.result.trim() }
  })
  await step('previewLink', async () => {
    await sandbox.process.executeCommand('mkdir -p site && echo "preview works" > site/index.html')
    await sandbox.process.createSession('web')
    await sandbox.process.executeSessionCommand('web', {
      command: 'cd site && exec python3 -m http.server 3000 --bind 127.0.0.1',
      runAsync: true,
    })
    const link = await sandbox.getPreviewLink(3000)
    let body = ''
    let status = 0
    for (let attempt = 0; attempt < 100; attempt++) {
      try {
        const response = await fetch(link.url, { headers: { 'x-daytona-preview-token': link.token } })
        status = response.status
        body = await response.text()
        if (status === 200) break
      } catch (error) {
        body = String(error?.cause?.code ?? error)
      }
      await sleep(100)
    }
    return { url: link.url, status, body }
  })
  await step('delete', async () => {
    await daytona.delete(sandbox)
    try {
      const after = await daytona.get(sandbox.id)
      return { goneAfterDelete: after.state === 'destroyed' || after.state === 'destroying', state: after.state }
    } catch (error) {
      return { goneAfterDelete: /not found/i.test(String(error?.message)), state: null }
    }
  })
}
// The SDK keeps sockets and timers open for reuse: the walk is over, so end the process now.
process.exit(0)
