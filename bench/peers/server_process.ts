// server_process.ts: starting and stopping the server processes of the serving side by side
// (bench/serve_peer.ts): spawn, wait until ready (a URL in a stdout line, or GET <url>/models answering),
// stop with SIGTERM then SIGKILL, and kill whatever is still running when the benchmark's process exits.

import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { createServer } from "node:net";

export interface Server {
  readonly url: string;
  readonly proc: ChildProcess;
}

const started = new Set<ChildProcess>();
process.on("exit", () => started.forEach((p) => p.kill("SIGKILL")));

/** Starts a server and resolves with its base URL: from a stdout line (`ready`'s group 1), or by polling GET /models at `pollUrl`. */
export function startServer(name: string, cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, ready: RegExp | { pollUrl: string }, timeoutMs = 180_000): Promise<Server> {
  const proc = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  started.add(proc);
  let log = "";
  return new Promise((resolve, reject) => {
    let done = false;
    const fail = (why: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(poll);
      proc.kill("SIGKILL");
      reject(new Error(`${name}: ${why}\n${log.slice(-2000)}`));
    };
    const timer = setTimeout(() => fail(`not ready after ${timeoutMs / 1000} s`), timeoutMs);
    const ok = (url: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearInterval(poll);
      resolve({ url, proc });
    };
    const onData = (d: Buffer) => {
      log = (log + d.toString()).slice(-20_000);
      if (ready instanceof RegExp) {
        const m = ready.exec(log);
        if (m) ok(m[1]!);
      }
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
    proc.on("error", (e) => fail(`cannot start ${cmd}: ${e.message}`));
    proc.on("exit", (code, sig) => fail(`exited (${code ?? sig}) before it was ready`));
    const poll = ready instanceof RegExp ? undefined : setInterval(() => {
      fetch(`${ready.pollUrl}/models`).then((r) => r.ok && ok(ready.pollUrl), () => {});
    }, 500);
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process has exited. */
export async function stopServer(s: Server, graceMs = 10_000): Promise<void> {
  if (s.proc.exitCode !== null || s.proc.signalCode !== null) {
    started.delete(s.proc);
    return;
  }
  const exited = new Promise<void>((r) => s.proc.once("exit", () => r()));
  s.proc.kill("SIGTERM");
  const t = setTimeout(() => s.proc.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(t);
  started.delete(s.proc);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    }).on("error", reject);
  });
}

/** One greedy, non-streamed completion's text from the server's first listed model (the sanity check that both servers continue a prompt alike). */
export async function greedyText(url: string, prompt: string, maxTokens: number): Promise<string> {
  const models = (await (await fetch(`${url}/models`, { signal: AbortSignal.timeout(30_000) })).json()) as { data?: { id?: string }[] };
  const model = models.data?.[0]?.id;
  if (typeof model !== "string") throw new Error(`${url}/models lists no model: ${JSON.stringify(models).slice(0, 300)}`);
  // NOTE: streamed: llama-server (3f545becc) parses a whole non-streamed completion for its chat format, and
  // a random-weight model's text (stray bytes) made it answer 500; the streamed pieces come through as they are.
  const r = await fetch(`${url}/completions`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, prompt, max_tokens: maxTokens, temperature: 0, stream: true }),
    signal: AbortSignal.timeout(120_000),
  });
  const raw = await r.text();
  if (!r.ok) throw new Error(`${url}/completions answered ${r.status}: ${raw.slice(0, 300)}`);
  let text = "";
  for (const line of raw.split("\n")) {
    if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
    const piece = (JSON.parse(line.slice(6)) as { choices?: { text?: string }[] }).choices?.[0]?.text;
    if (typeof piece !== "string") throw new Error(`${url}/completions streamed an event without choices[0].text: ${line.slice(0, 300)}`);
    text += piece;
  }
  return text;
}
