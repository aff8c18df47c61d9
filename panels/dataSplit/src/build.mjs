// Builds the Data Split panel into panels/dataSplit/ (index.html + assets/), the static files
// the app serves; they are committed so no build is needed to run or test the app.
//
//   cd panels/dataSplit/src && npm ci && npm run build
//
// The shared JSON Schema (nodes/schemas/data_split_config.json) is compiled here into a
// standalone validator (Ajv, draft 2020-12) and bundled, so the panel validates exactly what
// the Python node validates. build-info.json records a hash of every input; a test compares
// it with the sources so a stale build (or a schema edited without a rebuild) is caught.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import Ajv2020 from "ajv/dist/2020.js";
import standaloneCode from "ajv/dist/standalone/index.js";
import { build } from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const outDir = join(here, "..");
const repoRoot = join(here, "..", "..", "..");
const schemaPath = join(repoRoot, "nodes", "schemas", "data_split_config.json");
const inputs = [
  "index.html",
  "build.mjs",
  "package.json",
  "package-lock.json",
  "src/config.js",
  "src/main.js",
  "src/styles.css",
].map((p) => join(here, p));

function compileValidator() {
  const schema = JSON.parse(readFileSync(schemaPath, "utf8"));
  const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, code: { source: true, esm: true } });
  const validate = ajv.compile(schema);
  return standaloneCode(ajv, validate);
}

const validatorPlugin = {
  name: "config-validator",
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^virtual:config-validator$/ }, () => ({
      path: "config-validator",
      namespace: "virtual",
    }));
    pluginBuild.onLoad({ filter: /.*/, namespace: "virtual" }, () => ({
      contents: compileValidator(),
      loader: "js",
      resolveDir: here, // lets the generated code import ajv's small runtime helpers
    }));
  },
};

mkdirSync(join(outDir, "assets"), { recursive: true });
await build({
  entryPoints: [join(here, "src", "main.js")],
  outfile: join(outDir, "assets", "panel.js"),
  bundle: true,
  format: "iife",
  platform: "browser",
  target: ["es2020"],
  minify: true,
  legalComments: "none",
  plugins: [validatorPlugin],
  logLevel: "warning",
});
await build({
  entryPoints: [join(here, "src", "styles.css")],
  outfile: join(outDir, "assets", "panel.css"),
  bundle: true,
  minify: true,
  logLevel: "warning",
});
copyFileSync(join(here, "index.html"), join(outDir, "index.html"));

// The SDK's own host side (XFrameManager, what the pipeline editor embeds panels with), bundled for
// tests/panel_host so the browser tests can drive the panel with it as well as with the
// hand-written host.
await build({
  stdin: {
    contents:
      'import { XFrameManager } from "@dataloop-ai/jssdk/dist/appLib/xFrame/manager/FrameManager.js";\n' +
      "window.XFrameManager = XFrameManager;\n",
    resolveDir: here,
    sourcefile: "sdk-host-entry.js",
  },
  outfile: join(repoRoot, "tests", "panel_host", "sdk_host.js"),
  bundle: true,
  format: "iife",
  platform: "browser",
  target: ["es2020"],
  minify: true,
  legalComments: "none",
  logLevel: "warning",
});

const sha256 = (path) => createHash("sha256").update(readFileSync(path)).digest("hex");
const info = { note: "written by src/build.mjs; hashes of the build inputs", inputs: {} };
for (const path of [...inputs, schemaPath]) info.inputs[relative(outDir, path)] = sha256(path);
writeFileSync(join(outDir, "build-info.json"), `${JSON.stringify(info, null, 2)}\n`);
console.log(`built ${relative(repoRoot, outDir)}/index.html, assets/panel.js, assets/panel.css, tests/panel_host/sdk_host.js`);
