// Builds web/static/vendor/modeler/ and web/static/vendor/chartjs/ from the npm packages
// pinned in package-lock.json. The modeler:
// modeler.js (one minified IIFE), modeler.css (the packages' stylesheets with their
// fonts), VERSIONS.json and the licences of every package the bundle contains.
// Run through `make frontend` (npm ci first); the output is committed so that the app
// itself needs nothing but Python and works offline.
import { createRequire } from 'node:module';
import { mkdir, readFile, rm, writeFile, copyFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import esbuild from 'esbuild';

const require = createRequire(import.meta.url);
const compileConfig = require('bpmnlint/lib/support/compile-config');

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.join(root, 'frontend', 'src', 'modeler');
const out = path.join(root, 'web', 'static', 'vendor', 'modeler');

const manifest = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8'));
const lock = JSON.parse(await readFile(path.join(root, 'package-lock.json'), 'utf8'));

function lockedVersion(name) {
  const entry = lock.packages[`node_modules/${name}`];
  if (!entry) {
    throw new Error(`${name} is not in package-lock.json: run npm install`);
  }
  return entry.version;
}

// The packages the page is built from, at the versions npm ci installed.
// Chart.js is copied on its own (below), not bundled into the modeler.
const separate = new Set([ 'chart.js' ]);
const direct = Object.keys(manifest.dependencies)
  .filter((name) => !name.startsWith('bpmnlint-plugin-') && !separate.has(name));
const versions = Object.fromEntries(direct.map((name) => [ name, lockedVersion(name) ]));

// bpmnlint reads its configuration in Node; the browser gets it compiled to a module
// that imports exactly the enabled rules.
const lintrc = JSON.parse(await readFile(path.join(source, '.bpmnlintrc'), 'utf8'));
const compiledLintConfig = await compileConfig(lintrc);

const lintConfigPlugin = {
  name: 'csi-bpmnlint-config',
  setup(build) {
    build.onResolve({ filter: /^csi-bpmnlint-config$/ }, () => ({
      path: 'csi-bpmnlint-config', namespace: 'csi-bpmnlint-config'
    }));
    build.onLoad({ filter: /.*/, namespace: 'csi-bpmnlint-config' }, () => ({
      contents: compiledLintConfig, loader: 'js', resolveDir: root
    }));
  }
};

// The properties panel writes two style attributes into its markup, which the app's
// Content-Security-Policy (style-src 'self') refuses: drop them here, and
// web/static/css/modeler.css gives the same rules. The build fails if they move.
const INLINE_STYLES = [ ' style="height: 100%"', ' style="flex: none; height: auto"' ];
const noInlineStylePlugin = {
  name: 'csi-no-inline-style',
  setup(build) {
    build.onLoad({ filter: /bpmn-js-properties-panel[\\/]dist[\\/]index\.esm\.js$/ }, async (args) => {
      let contents = await readFile(args.path, 'utf8');
      for (const attribute of INLINE_STYLES) {
        if (!contents.includes(attribute)) {
          throw new Error(`${args.path} no longer contains ${attribute}: check the CSP workaround`);
        }
        contents = contents.split(attribute).join('');
      }
      return { contents, loader: 'js' };
    });
  }
};

const banner = '/*! CSI Workflow modeler bundle: '
  + Object.entries(versions).map(([ name, version ]) => `${name}@${version}`).join(', ')
  + '. Licences in LICENSES/. */';

await rm(out, { recursive: true, force: true });
await mkdir(path.join(out, 'LICENSES'), { recursive: true });

const script = await esbuild.build({
  entryPoints: { modeler: path.join(source, 'index.js') },
  outdir: out,
  bundle: true,
  minify: true,
  format: 'iife',
  target: [ 'es2020' ],
  platform: 'browser',
  jsx: 'automatic',
  jsxImportSource: '@bpmn-io/properties-panel/preact',
  define: {
    __CSI_MODELER_VERSIONS__: JSON.stringify(versions),
    'process.env.NODE_ENV': '"production"'
  },
  banner: { js: banner },
  legalComments: 'none',
  metafile: true,
  plugins: [ lintConfigPlugin, noInlineStylePlugin ],
  logLevel: 'warning'
});

const style = await esbuild.build({
  entryPoints: { modeler: path.join(source, 'vendor.css') },
  outdir: out,
  bundle: true,
  minify: true,
  loader: { '.woff': 'file', '.woff2': 'file', '.ttf': 'file', '.eot': 'file', '.svg': 'file' },
  assetNames: 'fonts/[name]-[hash]',
  banner: { css: banner },
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning'
});

// Every package with code or style in the output, by the node_modules folder it came from.
function packageOf(input) {
  const parts = input.split('/');
  const at = parts.lastIndexOf('node_modules');
  if (at === -1) {
    return null;
  }
  const scoped = parts[at + 1].startsWith('@');
  return parts.slice(at + 1, at + (scoped ? 3 : 2)).join('/');
}

const bundled = new Map();
for (const input of [ ...Object.keys(script.metafile.inputs), ...Object.keys(style.metafile.inputs) ]) {
  const name = packageOf(input);
  if (name) {
    const folder = input.slice(0, input.indexOf(`node_modules/${name}`)) + `node_modules/${name}`;
    bundled.set(name, path.resolve(root, folder));
  }
}

const licences = {};
for (const [ name, folder ] of [ ...bundled.entries() ].sort()) {
  const pkg = JSON.parse(await readFile(path.join(folder, 'package.json'), 'utf8'));
  const file = (await readdir(folder)).find((f) => /^(licen[sc]e|copying)(\.(md|txt))?$/i.test(f));
  const target = `${name.replace('/', '__')}.txt`;
  if (file) {
    await copyFile(path.join(folder, file), path.join(out, 'LICENSES', target));
  } else {
    await writeFile(path.join(out, 'LICENSES', target),
      `${name}@${pkg.version} is published under ${pkg.license} (no licence file in the package).\n`);
  }
  licences[name] = { version: pkg.version, license: pkg.license };
}

await writeFile(path.join(out, 'VERSIONS.json'), JSON.stringify({
  built_from: versions,
  bundled: licences
}, null, 2) + '\n');

console.log(`built ${path.relative(root, out)}: ${bundled.size} packages`);

// Chart.js for the metric and dashboard charts: its own UMD build, copied as published
// (it already contains @kurkle/color), with both licences and the versions.
const chartOut = path.join(root, 'web', 'static', 'vendor', 'chartjs');
const chartPackages = [ 'chart.js', '@kurkle/color' ];
await rm(chartOut, { recursive: true, force: true });
await mkdir(path.join(chartOut, 'LICENSES'), { recursive: true });
const chartDist = path.join(root, 'node_modules', 'chart.js', 'dist', 'chart.umd.min.js');
const chartScript = (await readFile(chartDist, 'utf8')).replace(/\n\/\/# sourceMappingURL=.*\n?$/, '\n');
await writeFile(path.join(chartOut, 'chart.umd.min.js'), chartScript);
const chartLicences = {};
for (const name of chartPackages) {
  const folder = path.join(root, 'node_modules', name);
  const pkg = JSON.parse(await readFile(path.join(folder, 'package.json'), 'utf8'));
  const file = (await readdir(folder)).find((f) => /^(licen[sc]e|copying)(\.(md|txt))?$/i.test(f));
  if (!file) {
    throw new Error(`${name} has no licence file`);
  }
  await copyFile(path.join(folder, file), path.join(chartOut, 'LICENSES', `${name.replace('/', '__')}.txt`));
  chartLicences[name] = { version: pkg.version, license: pkg.license };
}
await writeFile(path.join(chartOut, 'VERSIONS.json'), JSON.stringify({
  built_from: { 'chart.js': lockedVersion('chart.js') },
  bundled: chartLicences
}, null, 2) + '\n');
console.log(`built ${path.relative(root, chartOut)}: chart.js@${lockedVersion('chart.js')}`);
