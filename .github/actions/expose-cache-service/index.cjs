// Export the Actions cache service's variables to the job's later steps (see action.yml for why).
// Only the names the `gha` cache backend reads, and only when the runner set them: no other ACTIONS_*
// value (an OIDC request token, say) leaves this step. No dependencies, so nothing to install or pin.
"use strict";
const fs = require("node:fs");

const NAMES = ["ACTIONS_CACHE_URL", "ACTIONS_RESULTS_URL", "ACTIONS_RUNTIME_TOKEN", "ACTIONS_CACHE_SERVICE_V2"];

const envFile = process.env.GITHUB_ENV;
if (!envFile) {
  console.log("::error::GITHUB_ENV is not set: this runs as a step of a GitHub Actions job only");
  process.exit(1);
}
const lines = [];
for (const name of NAMES) {
  const value = process.env[name];
  if (!value) continue;
  // A line break would let the value define further variables in the env file.
  if (/[\r\n]/.test(value)) {
    console.log(`::error::${name} contains a line break; not exported`);
    process.exit(1);
  }
  lines.push(`${name}=${value}`);
}
// Without the token and a service URL the builds would fail later with BuildKit's less telling error.
const has = (name) => lines.some((line) => line.startsWith(`${name}=`));
if (!has("ACTIONS_RUNTIME_TOKEN") || !(has("ACTIONS_CACHE_URL") || has("ACTIONS_RESULTS_URL"))) {
  console.log("::error::the runner gave this action no cache service token or URL");
  console.log("hint: drop PERFCI_COMPOSE_OVERRIDES and this step to build without the Actions cache");
  process.exit(1);
}
fs.appendFileSync(envFile, lines.join("\n") + "\n");
console.log(`exported: ${lines.map((line) => line.split("=", 1)[0]).join(", ")}`);
