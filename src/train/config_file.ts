// config_file.ts: a training config file's text to plain data: YAML for .yaml/.yml, JSON otherwise
// (the `yaml` package; YAML 1.2, so every JSON file would parse as YAML too, but a JSON file keeps
// JSON's stricter errors). The result then goes through parseTrainConfig (config.ts), so both forms
// get the same validation and the same messages naming the field path.

import { extname } from "node:path";
import { parse as parseYaml } from "yaml";

export function isYamlPath(path: string): boolean {
  return /^\.ya?ml$/i.test(extname(path));
}

/** The parsed document; a syntax error names the file and (for YAML) the line and column. */
export function parseConfigText(text: string, path: string): unknown {
  if (!isYamlPath(path)) return JSON.parse(text);
  // NOTE: uniqueKeys (the default) makes a repeated key an error: a typo'd duplicate must not silently win.
  return parseYaml(text, { prettyErrors: true, strict: true });
}
