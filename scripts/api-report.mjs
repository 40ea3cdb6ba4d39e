// Checks the public API against the committed reports in api/ (one per package entry
// point), from the declarations tsc wrote to dist/. A change to the public API fails
// here until the report is updated with `npm run api` and committed, so every change
// of the API is a deliberate one. Usage: node scripts/api-report.mjs [--update]
import { Extractor, ExtractorConfig } from '@microsoft/api-extractor';

const update = process.argv.includes('--update');
const entries = ['nestjs-realtime', 'redis', 'client', 'testing'];
let changed = 0;
for (const entry of entries) {
  const config = ExtractorConfig.loadFileAndPrepare(`api/${entry}.api-extractor.json`);
  const result = Extractor.invoke(config, { localBuild: update, showVerboseMessages: false, messageCallback: quiet });
  if (result.apiReportChanged) {
    changed++;
    console.error(
      update
        ? `api/${entry}.api.md updated: commit it with the change`
        : `The public API of ${entry} changed (see dist/api/${entry}.api.md): run npm run api and commit api/${entry}.api.md`,
    );
  }
  if (!result.succeeded && !(update && result.apiReportChanged)) {
    process.exitCode = 1;
  }
}
if (!update && changed > 0) {
  process.exitCode = 1;
}
if (process.exitCode !== 1) {
  console.log(`public API: ${entries.length} reports ${update ? 'written' : 'unchanged'}`);
}

/** Keeps the routine lines (which TypeScript it uses, "completed successfully") out of the log. */
function quiet(message) {
  if (message.logLevel === 'info' || message.logLevel === 'verbose') {
    message.handled = true;
  }
}
