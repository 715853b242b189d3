// serve_emit.ts: `kiln serve --emit k8s [...] -- <serve args>`: prints kiln serve as a Kubernetes
// Deployment and Service instead of serving here. It owns the emit flags and the `--` that separates
// the serve arguments; the manifests are src/dist's (emit_k8s_serve.ts).

import type { ServeDeployment, ServiceType } from "../dist/index.js";
import { LaunchSpecError, emitK8sServe, parseCount } from "../dist/index.js";
import type { Command } from "./command.js";
import { UsageError, parseCommandArgs } from "./command.js";

export const SERVE_EMIT_USAGE = `       kiln serve --emit k8s --image IMAGE [--name NAME] [--replicas N] [--gpus G] [--port P]
                  [--service-port P] [--service-type ClusterIP|NodePort|LoadBalancer] -- [SERVE OPTIONS...]`;

export const SERVE_EMIT_HELP = `--emit k8s prints a Deployment of N replicas of kiln serve (with SERVE OPTIONS, listening on 0.0.0.0:P,
default 8080), probed on /health (startup, readiness, liveness) and scraped by Prometheus on /metrics
(prometheus.io/* annotations), and a Service (port 80 by default) in front of them; pipe it to
kubectl apply -f -. NAME defaults to kiln-serve; G adds nvidia.com/gpu requests per replica.
See docs/distributed.md ("Serving behind a load balancer").`;

const OPTIONS = {
  emit: { type: "string" }, image: { type: "string" }, name: { type: "string" }, replicas: { type: "string" },
  gpus: { type: "string" }, port: { type: "string" }, "service-port": { type: "string" }, "service-type": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Whether `argv` asks for --emit (before any `--`): then runServeEmit handles it. */
export function asksForEmit(argv: readonly string[]): boolean {
  const cut = argv.indexOf("--");
  return (cut < 0 ? argv : argv.slice(0, cut)).some((a) => a === "--emit" || a.startsWith("--emit="));
}

export function runServeEmit(cmd: Command, argv: readonly string[]): number {
  const cut = argv.indexOf("--");
  const flags = cut < 0 ? argv : argv.slice(0, cut);
  const serveArgs = cut < 0 ? [] : argv.slice(cut + 1);
  // NOTE: kiln serve's own options before -- are the likely mistake: say where they go.
  const stray = flags.find((a) => /^--[a-z]/.test(a) && !(a.slice(2).split("=")[0]! in OPTIONS));
  if (stray !== undefined) throw new UsageError(`serve: ${stray} is not an --emit k8s option; kiln serve's own options go after -- (kiln serve --emit k8s --image IMAGE -- ${stray} ...)`, cmd);
  const { values: v } = parseCommandArgs(cmd, flags, OPTIONS);
  if (v.help) {
    console.log(cmd.help);
    return 0;
  }
  try {
    if (v.emit !== "k8s") throw new LaunchSpecError(`--emit ${JSON.stringify(v.emit)} is not k8s (the only cluster kiln serve is written out for)`);
    if (v.image === undefined) throw new LaunchSpecError("serve --emit k8s needs --image IMAGE (a container image with kiln and its models in it)");
    const d: ServeDeployment = {
      name: v.name ?? "kiln-serve",
      image: v.image,
      replicas: v.replicas === undefined ? 1 : parseCount("--replicas", v.replicas),
      port: v.port === undefined ? 8080 : parseCount("--port", v.port),
      servicePort: v["service-port"] === undefined ? 80 : parseCount("--service-port", v["service-port"]),
      serviceType: (v["service-type"] ?? "ClusterIP") as ServiceType,
      ...(v.gpus === undefined ? {} : { gpus: parseCount("--gpus", v.gpus) }),
      serveArgs,
    };
    process.stdout.write(emitK8sServe(d));
    return 0;
  } catch (err) {
    if (err instanceof LaunchSpecError) throw new UsageError(`serve: ${err.message}`, cmd);
    throw err;
  }
}
