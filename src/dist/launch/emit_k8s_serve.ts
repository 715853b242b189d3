// emit_k8s_serve.ts: `kiln serve` as Kubernetes manifests, so that many replicas sit behind an ordinary
// load balancer: a Deployment (apps/v1) whose pods run `kiln serve` on all interfaces, probed on the
// server's /health (startup, readiness, liveness) and scraped by Prometheus on its /metrics (the
// prometheus.io/* pod annotations), and a Service (v1) that spreads connections over the ready pods.
// It only writes YAML; kubectl applies it. The server's routes are src/serve/openai/server.ts's.

import { LaunchSpecError } from "./errors.js";
import { checkK8sName, k8sLiteral, yamlStream } from "./k8s_yaml.js";

export const SERVICE_TYPES = ["ClusterIP", "NodePort", "LoadBalancer"] as const;
export type ServiceType = (typeof SERVICE_TYPES)[number];

export interface ServeDeployment {
  /** The Deployment's and the Service's name. */
  readonly name: string;
  /** A container image with `kiln` (and the models the serve arguments name) in it. */
  readonly image: string;
  readonly replicas: number;
  /** The port kiln serve listens on in the container (the probes' and the scrape's). */
  readonly port: number;
  /** The Service's port (what clients of the load balancer connect to). */
  readonly servicePort: number;
  readonly serviceType: ServiceType;
  /** GPUs per replica (nvidia.com/gpu). */
  readonly gpus?: number;
  /** kiln serve's own flags (--model, --backend, ...), except --host and --port, which the manifest sets. */
  readonly serveArgs: readonly string[];
}

/** Flags the manifest sets itself (where and how the server listens), or that make no sense in a pod. */
const OWNED = ["--host", "--port", "--emit", "--help", "-h"];

export const SERVE_PROBE_PATH = "/health";
export const SERVE_METRICS_PATH = "/metrics";

export function checkServeDeployment(d: ServeDeployment): ServeDeployment {
  // NOTE: pods are <name>-<10-character hash>-<5 characters>: 46 keeps them within a DNS label.
  checkK8sName(d.name, 46);
  if (d.image.trim() === "") throw new LaunchSpecError("serve --emit k8s needs --image IMAGE (a container image with kiln and its models in it)");
  if (!Number.isInteger(d.replicas) || d.replicas < 1) throw new LaunchSpecError(`--replicas ${d.replicas} is not an integer >= 1`);
  for (const [flag, port] of [["--port", d.port], ["--service-port", d.servicePort]] as const) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new LaunchSpecError(`${flag} ${port} is not a TCP port (1-65535)`);
  }
  if (!SERVICE_TYPES.includes(d.serviceType)) throw new LaunchSpecError(`--service-type ${JSON.stringify(d.serviceType)} is not one of ${SERVICE_TYPES.join(", ")}`);
  if (d.gpus !== undefined && (!Number.isInteger(d.gpus) || d.gpus < 1)) throw new LaunchSpecError(`--gpus ${d.gpus} is not an integer >= 1`);
  const owned = d.serveArgs.find((a) => OWNED.includes(a.split("=")[0]!));
  if (owned !== undefined) {
    throw new LaunchSpecError(`${owned} after -- : the manifest sets where kiln serve listens (--host 0.0.0.0 --port ${d.port}); give --port before -- to change the port`);
  }
  return d;
}

/** The Deployment and the Service, as objects (what the YAML says). */
export function serveManifests(deployment: ServeDeployment): [Record<string, unknown>, Record<string, unknown>] {
  const d = checkServeDeployment(deployment);
  const selector = { "app.kubernetes.io/name": "kiln", "app.kubernetes.io/instance": d.name };
  const labels = { ...selector, "app.kubernetes.io/component": "serve" };
  const probe = (periodSeconds: number, timeoutSeconds: number, failureThreshold: number) => ({
    httpGet: { path: SERVE_PROBE_PATH, port: "http" }, periodSeconds, timeoutSeconds, failureThreshold,
  });
  const container: Record<string, unknown> = {
    name: "kiln",
    image: d.image,
    // NOTE: 0.0.0.0, not kiln serve's default 127.0.0.1: the kubelet's probes and the Service reach the pod's IP.
    command: ["kiln", "serve", "--host", "0.0.0.0", "--port", String(d.port), ...d.serveArgs.map(k8sLiteral)],
    ports: [{ name: "http", containerPort: d.port, protocol: "TCP" }],
    // NOTE: kiln serve listens only once its models are loaded and the engine warmed up, which can take
    // minutes for a large model: the startup probe gives it 10 minutes before liveness may restart it.
    startupProbe: probe(5, 3, 120),
    // /health is 503 while the engine is not ready or has failed, and while it drains after SIGTERM: the
    // pod leaves the Service's endpoints after two misses (one slow answer under load is not enough).
    readinessProbe: probe(5, 3, 2),
    // A failed engine (a model's worker died) answers 503 for good: three misses restart the container.
    livenessProbe: probe(10, 5, 3),
  };
  if (d.gpus !== undefined) container.resources = { limits: { "nvidia.com/gpu": d.gpus }, requests: { "nvidia.com/gpu": d.gpus } };
  const deploymentManifest = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: d.name, labels },
    spec: {
      replicas: d.replicas,
      selector: { matchLabels: selector },
      // NOTE: a new pod must be ready before an old one goes: serving capacity never drops in a rollout.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          labels,
          // The convention Prometheus' kubernetes_sd "kubernetes-pods" scrape job reads.
          annotations: { "prometheus.io/scrape": "true", "prometheus.io/port": String(d.port), "prometheus.io/path": SERVE_METRICS_PATH },
        },
        spec: {
          // NOTE: kiln serve drains the requests in flight for up to 30 s after SIGTERM; 45 leaves it room.
          terminationGracePeriodSeconds: 45,
          containers: [container],
        },
      },
    },
  };
  const service = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: d.name, labels },
    spec: {
      type: d.serviceType,
      selector,
      ports: [{ name: "http", port: d.servicePort, targetPort: "http", protocol: "TCP" }],
    },
  };
  return [deploymentManifest, service];
}

/** The manifests as one YAML stream, ready for `kubectl apply -f -`. */
export function emitK8sServe(d: ServeDeployment): string {
  const docs = serveManifests(d);
  return yamlStream(`kiln serve --emit k8s: ${d.replicas} replica(s) of kiln serve behind Service ${d.name} (${d.serviceType}, port ${d.servicePort})`, docs);
}
