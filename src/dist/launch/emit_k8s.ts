// emit_k8s.ts: a ClusterJob as Kubernetes manifests: a headless Service (clusterIP None) that gives
// every pod a DNS name, and an Indexed Job (batch/v1, completionMode Indexed) with one pod per node.
// Each pod runs `kiln launch` for its node: its node rank is the pod's completion index, its master
// is pod 0, <name>-0.<name>, where rank 0 serves the rendezvous. It only writes YAML; kubectl applies it.

import type { ClusterJob } from "./cluster_job.js";
import { checkClusterJob } from "./cluster_job.js";
import { LaunchSpecError } from "./errors.js";
import { k8sLiteral, yamlStream } from "./k8s_yaml.js";

/** The node-rank reference the kubelet fills in: the pod's index in the Indexed Job. */
const INDEX = "$(JOB_COMPLETION_INDEX)";

/** The Service and the Job, as objects (what the YAML says). */
export function k8sManifests(job: ClusterJob): [Record<string, unknown>, Record<string, unknown>] {
  const j = checkClusterJob(job);
  if (j.image === undefined || j.image.trim() === "") throw new LaunchSpecError("--emit k8s needs --image IMAGE (a container image with kiln on its PATH)");
  const labels = { "app.kubernetes.io/name": "kiln", "app.kubernetes.io/component": "train", "kiln.dev/job": j.name };
  const service = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: j.name, labels },
    spec: {
      clusterIP: "None",
      // NOTE: the pods must find each other while they start, before any readiness.
      publishNotReadyAddresses: true,
      // NOTE: the Job controller labels its pods job-name=<job name> (on every Kubernetes version).
      selector: { "job-name": j.name },
      ports: [{ name: "rendezvous", port: j.masterPort, targetPort: j.masterPort, protocol: "TCP" }],
    },
  };
  const command = [
    "kiln", "launch", "--nproc", String(j.nproc), "--nnodes", String(j.nnodes), "--node-rank", INDEX,
    "--master", `${j.name}-0.${j.name}:${j.masterPort}`, "--", ...j.command.map(k8sLiteral),
  ];
  const container: Record<string, unknown> = {
    name: "kiln",
    image: j.image,
    command,
    env: [{
      // NOTE: named here (not only injected by the Job controller) so that $(JOB_COMPLETION_INDEX) in
      // the command resolves on every version that has Indexed Jobs.
      name: "JOB_COMPLETION_INDEX",
      valueFrom: { fieldRef: { fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } },
    }],
    ports: [{ name: "rendezvous", containerPort: j.masterPort, protocol: "TCP" }],
    // NOTE: a container's /dev/shm is 64 MiB by default; NCCL and local communicators need more.
    volumeMounts: [{ name: "dshm", mountPath: "/dev/shm" }],
  };
  if (j.gpusPerNode !== undefined) {
    container.resources = { limits: { "nvidia.com/gpu": j.gpusPerNode }, requests: { "nvidia.com/gpu": j.gpusPerNode } };
  }
  const jobManifest = {
    apiVersion: "batch/v1",
    kind: "Job",
    metadata: { name: j.name, labels },
    spec: {
      completionMode: "Indexed",
      completions: j.nnodes,
      parallelism: j.nnodes,
      // NOTE: one failed pod fails the job: the other ranks cannot go on without it, and a restart
      // of a whole distributed job is the launcher's decision, not a pod's.
      backoffLimit: 0,
      template: {
        metadata: { labels },
        spec: {
          // NOTE: with the Service's name as subdomain, pod <name>-<i> is reachable as <name>-<i>.<name>.
          subdomain: j.name,
          restartPolicy: "Never",
          containers: [container],
          volumes: [{ name: "dshm", emptyDir: { medium: "Memory" } }],
        },
      },
    },
  };
  return [service, jobManifest];
}

/** The manifests as one YAML stream, ready for `kubectl apply -f -`. */
export function emitK8s(job: ClusterJob): string {
  const [service, jobManifest] = k8sManifests(job);
  return yamlStream(`kiln launch --emit k8s: ${job.nnodes} node(s) x ${job.nproc} process(es), rendezvous at ${job.name}-0.${job.name}:${job.masterPort}`, [service, jobManifest]);
}
