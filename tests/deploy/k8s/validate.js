#!/usr/bin/env node
// Validates Kubernetes manifests against the API's OpenAPI schemas as bundled (compiled for ajv) in the npm package
// kubernetes-models: types, required fields, enums and formats of every object, down to each container and probe.
// The bundled schemas allow unknown fields (as the API's OpenAPI does); kubectl's default --validate=strict rejects
// them, and so does this: every key must be a property of its type as the package's type declarations list them
// (inline object types and maps are not descended into).
//
//   node validate.js FILE...        one line per document; exit 1 when any document is invalid or of an unknown kind
//   node validate.js --json FILE... the parsed documents as a JSON array on stdout (for tests that check contents)
"use strict";
const fs = require("fs");
const YAML = require("yaml");

// apiVersion "apps/v1" -> module "kubernetes-models/apps/v1/Deployment"; the core group "v1" -> "kubernetes-models/v1/Pod"
function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string" || !/^[A-Za-z0-9.\/-]+$/.test(apiVersion + kind))
    return null;
  try {
    const mod = require("kubernetes-models/" + apiVersion + "/" + kind);
    return mod[kind] || null;
  } catch (e) {
    return null;
  }
}

const path = require("path");
const declCache = new Map();

// The packages' "exports" maps name only the .js files: find a .d.ts from the package's own directory.
function declFile(spec) {
  const parts = spec.split("/");
  const n = spec.startsWith("@") ? 2 : 1;
  const pkg = parts.slice(0, n).join("/");
  const dir = path.dirname(require.resolve(pkg + "/package.json", { paths: [__dirname] }));
  return path.join(dir, ...parts.slice(n)) + ".d.ts";
}

// The properties of the one interface a kubernetes-models .d.ts file declares, each with the .d.ts of its type when
// that type is (an array of) another interface, else null (a scalar, an enum of strings, a map, an inline object).
function declaration(file) {
  if (declCache.has(file))
    return declCache.get(file);
  const text = fs.readFileSync(file, "utf8");
  const imports = new Map();
  for (const m of text.matchAll(/^import \{ (\w+) \} from "([^"]+)";$/gm))
    imports.set(m[1], m[2]);
  const body = text.match(/^export interface \w+[^{]*\{\n([\s\S]*?)^\}/m);
  if (!body)
    throw new Error(`no interface in ${file}`);
  const props = new Map();
  for (const m of body[1].matchAll(/^ {4}"([^"]+)"\??: (.*)$/gm)) {
    const t = m[2].match(/^(?:Array<)?(\w+)>?;$/);
    let ref = null;
    if (t && imports.has(t[1])) {
      const spec = imports.get(t[1]);
      ref = spec.startsWith(".") ? path.resolve(path.dirname(file), spec + ".d.ts")
                                 : declFile(spec);
    }
    props.set(m[1], ref);
  }
  declCache.set(file, props);
  return props;
}

function unknownFields(value, file, where, out) {
  if (Array.isArray(value)) {
    value.forEach((v, i) => unknownFields(v, file, `${where}/${i}`, out));
    return out;
  }
  if (value === null || typeof value !== "object")
    return out;
  const props = declaration(file);
  for (const [k, v] of Object.entries(value)) {
    if (!props.has(k))
      out.push(`${where}/${k}: unknown field`);
    else if (props.get(k))
      unknownFields(v, props.get(k), `${where}/${k}`, out);
  }
  return out;
}

function main(argv) {
  const dump = argv[0] === "--json";
  const files = dump ? argv.slice(1) : argv;
  if (!files.length) {
    console.error("usage: validate.js [--json] FILE...");
    return 2;
  }
  let bad = 0;
  const docs = [];
  for (const file of files) {
    let parsed;
    try {
      parsed = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"));
    } catch (e) {
      console.error(`${file}: ${e.message}`);
      bad++;
      continue;
    }
    parsed.forEach((doc, i) => {
      const where = `${file}#${i + 1}`;
      if (doc.errors.length) {
        console.error(`${where}: YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
        bad++;
        return;
      }
      const obj = doc.toJS();
      if (obj === null || obj === undefined)
        return;  // an empty document (a trailing ---)
      const Model = modelFor(obj.apiVersion, obj.kind);
      if (!Model) {
        console.error(`${where}: unknown apiVersion/kind ${obj.apiVersion}/${obj.kind}`);
        bad++;
        return;
      }
      const name = `${obj.kind}/${obj.metadata && obj.metadata.name}`;
      try {
        new Model(obj).validate();
        const unknown = unknownFields(obj, declFile(`kubernetes-models/${obj.apiVersion}/${obj.kind}`), "", []);
        if (unknown.length)
          throw new Error(unknown.join(", "));
        if (!dump)
          console.log(`ok ${where} ${name} (${obj.apiVersion})`);
        docs.push({ file, index: i + 1, object: obj });
      } catch (e) {
        console.error(`INVALID ${where} ${name}: ${e.message}`);
        bad++;
      }
    });
  }
  if (dump)
    process.stdout.write(JSON.stringify(docs));
  return bad ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));
