// k8s_schema.ts: a kubectl-free check of the Kubernetes objects kiln writes (kiln launch --emit k8s, kiln
// serve --emit k8s): Service (v1), Job (batch/v1, Indexed), Deployment (apps/v1) and what they hold (pod
// template, containers, probes, resources, volumes). Each object type is a table of its fields: the type
// of each, which are required, which strings are enums; a field the table does not know is an error,
// as the API server's strict field validation (kubectl apply's default since 1.27) makes it. Then the
// rules the API server checks beyond the schema that kiln's manifests could break: names (DNS labels),
// a Deployment's selector matching its template, a Job's restart policy, a probe's named port, mounts
// naming volumes, quantities, GPU requests equal to limits.
//
// Provenance: the field names, types and required fields are those of the Kubernetes API reference
// (kubernetes.io/docs/reference/kubernetes-api, v1.30: Service, Job, Deployment, PodSpec, Container,
// Probe, ResourceRequirements, Volume), restricted to the fields listed here; the validation rules are
// those of k8s.io/kubernetes pkg/apis/{core,batch,apps}/validation. A field kiln does not write and that
// is missing here is reported as unknown: add it to the table (with the reference's type) when needed.
// Cross-checked once (2026-12-07, not part of the tests) by validating the same emitted manifests with the
// JSON-schema validators the npm package kubernetes-models 5.1.0 (MIT) generates from the official OpenAPI
// spec: they accept all of them. Its schemas do not reject unknown fields, hence these tables.

type Obj = Record<string, unknown>;

/** A field's type: a scalar, an object of a table, a list or a string-keyed map of a type, or an enum of strings. */
type FieldType =
  | "string" | "integer" | "boolean" | "int-or-string" | "quantity"
  | { readonly obj: string } | { readonly list: FieldType } | { readonly map: FieldType } | { readonly oneOf: readonly string[] };

interface Table {
  readonly fields: Readonly<Record<string, FieldType>>;
  readonly required?: readonly string[];
}

const o = (name: string) => ({ obj: name });
const list = (t: FieldType) => ({ list: t });
const map = (t: FieldType) => ({ map: t });
const oneOf = (...values: string[]) => ({ oneOf: values });
const strings = map("string");
const PROTOCOL = oneOf("TCP", "UDP", "SCTP");

const TABLES: Readonly<Record<string, Table>> = {
  ObjectMeta: { fields: { name: "string", generateName: "string", namespace: "string", labels: strings, annotations: strings } },
  LabelSelector: { fields: { matchLabels: strings, matchExpressions: list(o("LabelSelectorRequirement")) } },
  LabelSelectorRequirement: { fields: { key: "string", operator: oneOf("In", "NotIn", "Exists", "DoesNotExist"), values: list("string") }, required: ["key", "operator"] },

  Service: { fields: { apiVersion: "string", kind: "string", metadata: o("ObjectMeta"), spec: o("ServiceSpec") } },
  ServiceSpec: {
    fields: {
      type: oneOf("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"), clusterIP: "string", selector: strings,
      ports: list(o("ServicePort")), publishNotReadyAddresses: "boolean", sessionAffinity: oneOf("ClientIP", "None"),
      externalTrafficPolicy: oneOf("Cluster", "Local"), internalTrafficPolicy: oneOf("Cluster", "Local"),
    },
  },
  ServicePort: { fields: { name: "string", port: "integer", targetPort: "int-or-string", protocol: PROTOCOL, nodePort: "integer", appProtocol: "string" }, required: ["port"] },

  Job: { fields: { apiVersion: "string", kind: "string", metadata: o("ObjectMeta"), spec: o("JobSpec") } },
  JobSpec: {
    fields: {
      parallelism: "integer", completions: "integer", completionMode: oneOf("NonIndexed", "Indexed"), backoffLimit: "integer",
      backoffLimitPerIndex: "integer", activeDeadlineSeconds: "integer", ttlSecondsAfterFinished: "integer", suspend: "boolean",
      selector: o("LabelSelector"), manualSelector: "boolean", template: o("PodTemplateSpec"),
    },
    required: ["template"],
  },

  Deployment: { fields: { apiVersion: "string", kind: "string", metadata: o("ObjectMeta"), spec: o("DeploymentSpec") } },
  DeploymentSpec: {
    fields: {
      replicas: "integer", selector: o("LabelSelector"), template: o("PodTemplateSpec"), strategy: o("DeploymentStrategy"),
      minReadySeconds: "integer", revisionHistoryLimit: "integer", progressDeadlineSeconds: "integer", paused: "boolean",
    },
    required: ["selector", "template"],
  },
  DeploymentStrategy: { fields: { type: oneOf("Recreate", "RollingUpdate"), rollingUpdate: o("RollingUpdateDeployment") } },
  RollingUpdateDeployment: { fields: { maxUnavailable: "int-or-string", maxSurge: "int-or-string" } },

  PodTemplateSpec: { fields: { metadata: o("ObjectMeta"), spec: o("PodSpec") } },
  PodSpec: {
    fields: {
      containers: list(o("Container")), initContainers: list(o("Container")), restartPolicy: oneOf("Always", "OnFailure", "Never"),
      hostname: "string", subdomain: "string", volumes: list(o("Volume")), terminationGracePeriodSeconds: "integer",
      nodeSelector: strings, serviceAccountName: "string", tolerations: list(o("Toleration")), priorityClassName: "string",
    },
    required: ["containers"],
  },
  Toleration: { fields: { key: "string", operator: oneOf("Exists", "Equal"), value: "string", effect: oneOf("NoSchedule", "PreferNoSchedule", "NoExecute"), tolerationSeconds: "integer" } },
  Container: {
    fields: {
      name: "string", image: "string", command: list("string"), args: list("string"), workingDir: "string", env: list(o("EnvVar")),
      ports: list(o("ContainerPort")), resources: o("ResourceRequirements"), volumeMounts: list(o("VolumeMount")),
      livenessProbe: o("Probe"), readinessProbe: o("Probe"), startupProbe: o("Probe"), imagePullPolicy: oneOf("Always", "Never", "IfNotPresent"),
    },
    required: ["name"],
  },
  EnvVar: { fields: { name: "string", value: "string", valueFrom: o("EnvVarSource") }, required: ["name"] },
  EnvVarSource: { fields: { fieldRef: o("ObjectFieldSelector"), secretKeyRef: o("KeySelector"), configMapKeyRef: o("KeySelector") } },
  ObjectFieldSelector: { fields: { apiVersion: "string", fieldPath: "string" }, required: ["fieldPath"] },
  KeySelector: { fields: { name: "string", key: "string", optional: "boolean" }, required: ["key"] },
  ContainerPort: { fields: { name: "string", containerPort: "integer", hostPort: "integer", hostIP: "string", protocol: PROTOCOL }, required: ["containerPort"] },
  ResourceRequirements: { fields: { limits: map("quantity"), requests: map("quantity") } },
  VolumeMount: { fields: { name: "string", mountPath: "string", readOnly: "boolean", subPath: "string" }, required: ["name", "mountPath"] },
  Volume: { fields: { name: "string", emptyDir: o("EmptyDirVolumeSource"), persistentVolumeClaim: o("PVCSource"), hostPath: o("HostPathSource") }, required: ["name"] },
  EmptyDirVolumeSource: { fields: { medium: "string", sizeLimit: "quantity" } },
  PVCSource: { fields: { claimName: "string", readOnly: "boolean" }, required: ["claimName"] },
  HostPathSource: { fields: { path: "string", type: "string" }, required: ["path"] },
  Probe: {
    fields: {
      httpGet: o("HTTPGetAction"), tcpSocket: o("TCPSocketAction"), exec: o("ExecAction"), initialDelaySeconds: "integer", periodSeconds: "integer",
      timeoutSeconds: "integer", successThreshold: "integer", failureThreshold: "integer", terminationGracePeriodSeconds: "integer",
    },
  },
  HTTPGetAction: { fields: { path: "string", port: "int-or-string", host: "string", scheme: oneOf("HTTP", "HTTPS") }, required: ["port"] },
  TCPSocketAction: { fields: { port: "int-or-string", host: "string" }, required: ["port"] },
  ExecAction: { fields: { command: list("string") } },
};

/** Which table each top-level object is, by apiVersion and kind. */
const KINDS: Readonly<Record<string, string>> = { "v1/Service": "Service", "batch/v1/Job": "Job", "apps/v1/Deployment": "Deployment" };

/** Kubernetes' resource.Quantity: an integer or decimal with an optional SI / binary suffix or exponent. */
const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "list";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

/** The schema's problems with `v` at `path`, against type `t`. */
function checkType(v: unknown, t: FieldType, path: string, out: string[]): void {
  const want = (what: string): void => void out.push(`${path}: expected ${what}, got ${typeName(v)} ${JSON.stringify(v)}`);
  if (t === "string") return void (typeof v !== "string" && want("string"));
  if (t === "boolean") return void (typeof v !== "boolean" && want("boolean"));
  if (t === "integer") return void (!Number.isInteger(v) && want("integer"));
  if (t === "int-or-string") return void (!Number.isInteger(v) && typeof v !== "string" && want("integer or string"));
  if (t === "quantity") {
    const ok = (typeof v === "number" && Number.isFinite(v)) || (typeof v === "string" && QUANTITY.test(v));
    return void (!ok && want("a quantity (e.g. 1, 500m, 2Gi)"));
  }
  if ("oneOf" in t) return void (!(typeof v === "string" && t.oneOf.includes(v)) && want(`one of ${t.oneOf.join(", ")}`));
  if ("list" in t) {
    if (!Array.isArray(v)) return want("list");
    v.forEach((x, i) => checkType(x, t.list, `${path}[${i}]`, out));
    return;
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return want("object");
  if ("map" in t) {
    for (const [k, x] of Object.entries(v)) checkType(x, t.map, `${path}.${k}`, out);
    return;
  }
  const table = TABLES[t.obj]!;
  for (const [k, x] of Object.entries(v)) {
    const ft = table.fields[k];
    if (ft === undefined) out.push(`${path}: unknown field "${k}" in ${t.obj}`);
    else checkType(x, ft, path ? `${path}.${k}` : k, out);
  }
  for (const r of table.required ?? []) if ((v as Obj)[r] === undefined) out.push(`${path ? `${path}.` : ""}${r}: required in ${t.obj}`);
}

const at = (x: unknown, path: string): unknown => path.split(".").reduce<unknown>((v, k) => (v as Obj | undefined)?.[k], x);
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A port name: an IANA service name (at most 15 characters, at least one letter, no '--'). */
const PORT_NAME = (s: string) => s.length <= 15 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(s) && /[a-z]/.test(s) && !s.includes("--");
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** The API server's checks beyond the schema, for a pod template. */
function podProblems(spec: Obj, path: string, kind: string, out: string[]): void {
  const containers = (spec.containers ?? []) as Obj[];
  if (containers.length === 0) out.push(`${path}.containers: must have at least one container`);
  const volumes = new Set(((spec.volumes ?? []) as Obj[]).map((v) => v.name));
  const policy = spec.restartPolicy ?? "Always";
  if (kind === "Job" && policy === "Always") out.push(`${path}.restartPolicy: a Job's pods need Never or OnFailure, got ${String(policy)}`);
  if (kind === "Deployment" && policy !== "Always") out.push(`${path}.restartPolicy: a Deployment's pods need Always, got ${String(policy)}`);
  if (typeof spec.subdomain === "string" && !DNS_LABEL.test(spec.subdomain)) out.push(`${path}.subdomain: not a DNS label: ${spec.subdomain}`);
  containers.forEach((c, i) => {
    const cp = `${path}.containers[${i}]`;
    if (typeof c.name === "string" && !(DNS_LABEL.test(c.name) && c.name.length <= 63)) out.push(`${cp}.name: not a DNS label: ${c.name}`);
    if (typeof c.image !== "string" || c.image.trim() === "") out.push(`${cp}.image: required`);
    const ports = (c.ports ?? []) as Obj[];
    ports.forEach((p, j) => {
      if (typeof p.name === "string" && !PORT_NAME(p.name)) out.push(`${cp}.ports[${j}].name: not an IANA service name (<= 15 characters, a letter, no '--'): ${p.name}`);
      if (Number.isInteger(p.containerPort) && !((p.containerPort as number) >= 1 && (p.containerPort as number) <= 65535)) out.push(`${cp}.ports[${j}].containerPort: not 1-65535: ${String(p.containerPort)}`);
    });
    const portNames = new Set(ports.map((p) => p.name));
    for (const m of (c.volumeMounts ?? []) as Obj[]) if (!volumes.has(m.name)) out.push(`${cp}.volumeMounts: "${String(m.name)}" names no volume of the pod`);
    for (const e of (c.env ?? []) as Obj[]) if ((e.value === undefined) === (e.valueFrom === undefined)) out.push(`${cp}.env ${String(e.name)}: needs exactly one of value, valueFrom`);
    for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"] as const) {
      const pr = c[probe] as Obj | undefined;
      if (pr === undefined) continue;
      const handlers = ["httpGet", "tcpSocket", "exec"].filter((h) => pr[h] !== undefined);
      if (handlers.length !== 1) out.push(`${cp}.${probe}: needs exactly one handler (httpGet, tcpSocket, exec), has ${handlers.length}`);
      const port = (pr.httpGet as Obj | undefined)?.port ?? (pr.tcpSocket as Obj | undefined)?.port;
      if (typeof port === "string" && !portNames.has(port)) out.push(`${cp}.${probe}: port "${port}" is no port name of the container`);
      if (probe !== "readinessProbe" && pr.successThreshold !== undefined && pr.successThreshold !== 1) out.push(`${cp}.${probe}.successThreshold: must be 1`);
      for (const k of ["periodSeconds", "timeoutSeconds", "failureThreshold", "successThreshold"]) {
        if (typeof pr[k] === "number" && (pr[k] as number) < 1) out.push(`${cp}.${probe}.${k}: must be >= 1`);
      }
    }
    const res = c.resources as { limits?: Obj; requests?: Obj } | undefined;
    for (const [name, req] of Object.entries(res?.requests ?? {})) {
      // NOTE: extended resources (a '/' in the name, such as nvidia.com/gpu) cannot be overcommitted.
      if (name.includes("/") && res?.limits?.[name] !== undefined && String(res.limits[name]) !== String(req)) {
        out.push(`${cp}.resources.requests.${name}: must equal the limit for an extended resource (${String(req)} vs ${String(res.limits[name])})`);
      }
      if (name.includes("/") && !(Number.isInteger(Number(req)) && Number(req) >= 0)) out.push(`${cp}.resources.requests.${name}: an extended resource must be a whole number`);
    }
  });
}

function labelProblems(labels: unknown, path: string, out: string[]): void {
  for (const [k, v] of Object.entries((labels ?? {}) as Obj)) {
    if (typeof v === "string" && !(v.length <= 63 && LABEL_VALUE.test(v))) out.push(`${path}.${k}: not a label value: ${v}`);
  }
}

/**
 * The problems with one Kubernetes object, as "<path>: <what is wrong>" lines; [] when the API server
 * would accept it (within the object types and fields above).
 */
export function k8sProblems(doc: unknown): string[] {
  const out: string[] = [];
  if (typeof doc !== "object" || doc === null) return [`not an object: ${JSON.stringify(doc)}`];
  const d = doc as Obj;
  const kind = KINDS[`${String(d.apiVersion)}/${String(d.kind)}`];
  if (kind === undefined) return [`apiVersion/kind ${String(d.apiVersion)}/${String(d.kind)} is not one of ${Object.keys(KINDS).join(", ")}`];
  checkType(d, o(kind), "", out);
  const name = at(d, "metadata.name");
  if (typeof name !== "string") out.push("metadata.name: required");
  else if (kind === "Service" ? !(DNS_1035.test(name) && name.length <= 63) : !(DNS_SUBDOMAIN.test(name) && name.length <= 253)) {
    out.push(`metadata.name: not a valid ${kind} name (${kind === "Service" ? "an RFC 1035 label: starts with a letter" : "a DNS subdomain"}): ${name}`);
  }
  labelProblems(at(d, "metadata.labels"), "metadata.labels", out);
  if (out.some((p) => p.includes("expected") || p.includes("required in"))) return out;
  if (kind === "Service") {
    const ports = (at(d, "spec.ports") ?? []) as Obj[];
    if (ports.length === 0 && at(d, "spec.type") !== "ExternalName") out.push("spec.ports: a Service needs at least one port");
    ports.forEach((p, i) => {
      if (!((p.port as number) >= 1 && (p.port as number) <= 65535)) out.push(`spec.ports[${i}].port: not 1-65535: ${String(p.port)}`);
      if (ports.length > 1 && p.name === undefined) out.push(`spec.ports[${i}].name: required when a Service has several ports`);
    });
    return out;
  }
  const template = at(d, "spec.template") as Obj;
  labelProblems(at(template, "metadata.labels"), "spec.template.metadata.labels", out);
  podProblems((template.spec ?? {}) as Obj, "spec.template.spec", kind, out);
  if (kind === "Job") {
    const completions = at(d, "spec.completions");
    if (at(d, "spec.completionMode") === "Indexed" && !(Number.isInteger(completions) && (completions as number) >= 1)) {
      out.push("spec.completions: an Indexed Job needs completions >= 1");
    }
  }
  if (kind === "Deployment") {
    const match = (at(d, "spec.selector.matchLabels") ?? {}) as Obj;
    const labels = (at(template, "metadata.labels") ?? {}) as Obj;
    if (Object.keys(match).length === 0) out.push("spec.selector: empty (it would select every pod)");
    const miss = Object.entries(match).filter(([k, v]) => labels[k] !== v).map(([k]) => k);
    if (miss.length) out.push(`spec.selector.matchLabels: does not match spec.template.metadata.labels (${miss.join(", ")})`);
    if (typeof at(d, "spec.replicas") === "number" && (at(d, "spec.replicas") as number) < 0) out.push("spec.replicas: must be >= 0");
  }
  return out;
}
