// k8s_yaml.ts: what every Kubernetes manifest kiln writes shares: how an argument reaches a container's
// command unchanged (the kubelet's $(VAR) expansion), which names Kubernetes accepts, and the YAML
// stream `kubectl apply -f -` reads. The manifests themselves are emit_k8s.ts's and emit_k8s_serve.ts's.

import { stringify } from "yaml";
import { LaunchSpecError } from "./errors.js";

/** NOTE: the kubelet expands $(VAR) in a container's command, and reads $$ as $: arguments must reach kiln unchanged. */
export const k8sLiteral = (arg: string): string => arg.replaceAll("$", () => "$$");

/**
 * `name` as a Kubernetes object name usable for a Service too: an RFC 1035 label (lower-case letters,
 * digits and '-', starting with a letter, ending with a letter or digit) of at most `max` characters.
 * NOTE: a Service's name must start with a letter (a Job's or Deployment's may start with a digit), and
 * pods are named <name>-<suffix>, so callers leave room for the suffix under the 63 of a label.
 */
export function checkK8sName(name: string, max: number): string {
  const label = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
  if (!label.test(name) || name.length > max) {
    throw new LaunchSpecError(`--name ${JSON.stringify(name)} is not a DNS label of at most ${max} characters (lower-case letters, digits and '-', starting with a letter and ending with a letter or digit)`);
  }
  return name;
}

/** The manifests as one YAML stream under a comment line. NOTE: no anchors/aliases for shared labels: plainer to read and patch by hand. */
export function yamlStream(comment: string, docs: readonly unknown[]): string {
  return `# ${comment}\n${docs.map((d) => stringify(d, { aliasDuplicateObjects: false })).join("---\n")}`;
}
