/**
 * Galata/Playwright configuration for the af-lab UI tests.
 *
 * Runs the Debian chromium (/usr/bin/chromium, or $CHROMIUM_PATH): Playwright's
 * own browsers and ffmpeg cannot be downloaded here, so video and traces are
 * off. Everything a run produces lands in ui-tests/test-results/.
 */
const path = require('path');
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const PORT = process.env.AF_LAB_UI_PORT || '8899';
const BASE_URL = `http://127.0.0.1:${PORT}`;
const RESULTS = path.join(__dirname, 'test-results');

module.exports = {
  ...baseConfig,
  testDir: './tests',
  outputDir: path.join(RESULTS, 'artifacts'),
  reporter: [
    ['list'],
    ['html', { open: 'never', outputFolder: path.join(RESULTS, 'html-report') }]
  ],
  workers: 1,
  retries: 0,
  use: {
    ...baseConfig.use,
    baseURL: BASE_URL,
    video: 'off',
    trace: 'off',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      // Chromium writes crash-report settings and dconf state under XDG dirs:
      // keep them in test-results/ rather than in $HOME.
      env: {
        ...process.env,
        XDG_CONFIG_HOME: path.join(RESULTS, 'browser', 'config'),
        XDG_CACHE_HOME: path.join(RESULTS, 'browser', 'cache')
      },
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run'
      ]
    }
  },
  webServer: {
    command: 'jlpm start',
    url: `${BASE_URL}/lab`,
    timeout: 120 * 1000,
    reuseExistingServer: !process.env.CI,
    stdout: 'pipe',
    stderr: 'pipe'
  }
};
