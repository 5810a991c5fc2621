// Drives the `weir serve` dashboard in headless Debian chromium, as a person would.
//
//   node tests/browser/dashboard.mjs PHASE
//
// PHASE is one of: inbox, models, operate, confirm, view, label, review, pipeline, shots.
// Env: BASE (http://127.0.0.1:PORT), USER, PASSWORD, ALERT (an alert id; for review, the one
//      to label true positive from the queue),
//      PIPELINE (for pipeline: whose page), SHOTS (screenshot directory, created if missing), CHROMIUM (optional binary path).
// Every phase logs in first. On success it prints one JSON line with what it saw and
// exits 0; on failure it prints the error (stderr, plus a {"error": ...} line on stdout),
// saves SHOTS/failure-PHASE.png when it can, and exits 1. The browser is always closed.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const OVERALL_MS = 120_000;
const STEP_MS = 20_000;

const phase = process.argv[2];
const BASE = (process.env.BASE || '').replace(/\/+$/, '');
const USER = process.env.USER || '';
const PASSWORD = process.env.PASSWORD || '';
const ALERT = process.env.ALERT || '';
const SHOTS = process.env.SHOTS || '.';

let browser = null;
let page = null;
let finished = false;

async function finish(code, line) {
  if (finished) return;
  finished = true;
  if (line !== undefined) process.stdout.write(line + '\n');
  if (browser) {
    await Promise.race([browser.close().catch(() => {}), sleep(5000)]);
  }
  process.exit(code);
}

async function fail(err) {
  if (finished) return;
  const msg = err && err.message ? err.message : String(err);
  process.stderr.write(`dashboard.mjs ${phase}: ${err && err.stack ? err.stack : msg}\n`);
  if (page) {
    try {
      process.stderr.write(`  at url: ${page.url()}\n`);
      await Promise.race([page.screenshot({ path: join(SHOTS, `failure-${phase}.png`), fullPage: true }), sleep(3000)]);
    } catch (_) { /* best effort */ }
  }
  await finish(1, JSON.stringify({ error: msg }));
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Polls `fn(arg)` in the page until it returns a truthy value; survives navigations
// (a full-page form post) as well as htmx swaps. Throws after `ms` with `what`.
async function poll(fn, arg, what, ms = STEP_MS) {
  const deadline = Date.now() + ms;
  let lastErr = null;
  for (;;) {
    try {
      const v = await page.evaluate(fn, arg);
      if (v) return v;
      lastErr = null;
    } catch (e) {
      // Execution context destroyed / navigation in progress: try again.
      lastErr = e;
    }
    if (Date.now() > deadline) {
      let seen = '';
      try {
        seen = await page.evaluate(() => {
          const st = document.querySelector('#state');
          const fl = document.querySelector('#flash');
          return `state=${st ? JSON.stringify(st.textContent.trim()) : 'none'} flash=${fl ? JSON.stringify(fl.textContent.trim()) : 'none'}`;
        });
      } catch (_) { /* ignore */ }
      throw new Error(`timed out after ${ms} ms waiting for ${what} (${seen}${lastErr ? '; ' + lastErr.message : ''})`);
    }
    await sleep(100);
  }
}

async function goto(path) {
  const resp = await page.goto(BASE + path, { waitUntil: 'load', timeout: STEP_MS });
  if (!resp) throw new Error(`no response for ${path}`);
  if (resp.status() >= 400) throw new Error(`GET ${path} answered ${resp.status()}`);
  return resp;
}

async function shot(name) {
  await page.screenshot({ path: join(SHOTS, name), fullPage: true });
}

async function login() {
  await goto('/ui/login');
  const form = page.locator('form#login');
  await form.waitFor({ timeout: STEP_MS });
  await form.locator('input[name="user"]').fill(USER);
  await form.locator('input[name="password"]').fill(PASSWORD);
  await form.locator('button[type="submit"]').click();
  const r = await poll(() => {
    const fl = document.querySelector('#flash.error');
    if (fl && fl.textContent.trim()) return { error: fl.textContent.trim() };
    if (location.pathname === '/ui/alerts' && document.readyState === 'complete') return { ok: true };
    return null;
  }, null, 'the login to redirect to /ui/alerts');
  if (r.error) throw new Error(`login as ${JSON.stringify(USER)} refused: ${r.error}`);
}

async function openAlert() {
  if (!ALERT) throw new Error('ALERT is not set');
  await goto(`/ui/alerts/${encodeURIComponent(ALERT)}`);
  await page.locator('#state').waitFor({ timeout: STEP_MS });
  // The evidence chart is drawn by uPlot after load; give it a moment before screenshots.
  let chart = true;
  try {
    await page.locator('#evidence canvas').first().waitFor({ state: 'attached', timeout: 5000 });
  } catch (_) {
    chart = false;
    process.stderr.write('dashboard.mjs: no canvas in #evidence after 5 s\n');
  }
  return chart;
}

const readState = () => page.locator('#state').first().textContent().then((t) => t.trim());
const readEvents = () => page.$$eval('#events li', (lis) => lis.map((li) => li.dataset.kind));
const readForms = () => page.$$eval('form.action', (fs) => fs.map((f) => f.dataset.action));

// Fills and submits the action form, then waits for a fresh render that shows
// state `want` (or a new element matching `sel`). A new #flash.error fails the step.
async function act(action, { fill = {}, select = {}, want = null, sel = null } = {}) {
  const form = page.locator(`form.action[data-action="${action}"]`);
  if ((await form.count()) === 0) {
    throw new Error(`no form.action[data-action="${action}"] on the page (forms: ${JSON.stringify(await readForms())})`);
  }
  for (const [name, value] of Object.entries(select)) {
    await form.locator(`select[name="${name}"]`).selectOption(value);
  }
  for (const [name, value] of Object.entries(fill)) {
    await form.locator(`[name="${name}"]`).fill(value);
  }
  // Mark what is on the page now so only a re-render can satisfy the wait.
  await page.evaluate((s) => {
    for (const el of document.querySelectorAll('#state, #flash')) el.__weirStale = true;
    if (s) for (const el of document.querySelectorAll(s)) el.__weirStale = true;
  }, sel);
  await form.locator('button[type="submit"]').click();
  const r = await poll(({ want, sel }) => {
    const fl = document.querySelector('#flash');
    if (fl && !fl.__weirStale && fl.classList.contains('error') && fl.textContent.trim()) {
      return { error: fl.textContent.trim() };
    }
    const st = document.querySelector('#state');
    if (want !== null && st && !st.__weirStale && st.textContent.trim() === want) return { ok: true };
    if (sel !== null && [...document.querySelectorAll(sel)].some((el) => !el.__weirStale)) return { ok: true };
    return null;
  }, { want, sel }, want !== null ? `state ${JSON.stringify(want)} after ${action}` : `${sel} after ${action}`);
  if (r.error) throw new Error(`action ${action} refused: ${r.error}`);
}

const phases = {
  async inbox() {
    await login();
    await goto('/ui/alerts');
    await page.locator('table#alerts').waitFor({ timeout: STEP_MS });
    await shot('inbox.png');
    const rows = await page.$$eval('table#alerts tr.alert', (trs) =>
      trs.map((tr) => ({ id: tr.dataset.id, state: tr.dataset.state, severity: tr.dataset.severity })));
    return { rows };
  },

  async models() {
    await login();
    await goto('/ui/models');
    await page.locator('table#versions').waitFor({ timeout: STEP_MS });
    const read = () => page.$$eval('table#versions tr.version', (trs) => trs.map((tr) => ({
      model: tr.dataset.model, version: tr.dataset.version, current: Number(tr.dataset.current),
      switchable: !!tr.querySelector('form.switch'),
    })));
    const before = await read();
    const form = page.locator('table#versions tr.version[data-model="risk"][data-version="v2"] form.switch');
    if ((await form.count()) === 0) throw new Error(`no switch to risk v2 (${JSON.stringify(before)})`);
    await page.evaluate(() => { for (const el of document.querySelectorAll('#flash')) el.__weirStale = true; });
    await form.locator('button[type="submit"]').click();
    const r = await poll(() => {
      const fl = document.querySelector('#flash');
      if (fl && !fl.__weirStale && fl.classList.contains('error') && fl.textContent.trim()) {
        return { ok: false, text: fl.textContent.trim() };
      }
      const v2 = document.querySelector('table#versions tr.version[data-model="risk"][data-version="v2"]');
      if (v2 && v2.dataset.current === '1') return { ok: true, text: fl ? fl.textContent.trim() : '' };
      return null;
    }, null, 'the switch to be taken');
    if (!r.ok) throw new Error(`switch refused: ${r.text}`);
    return { before, after: await read(), flash: r.text };
  },

  async operate() {
    await login();
    const chart = await openAlert();
    await shot('alert-open.png');
    const states = [await readState()];
    await act('ack', { want: 'acknowledged' });
    states.push(await readState());
    await act('dispatch', {
      fill: { assignee: 'tech-anna', due: '2026-12-04 08:00', instructions: 'replace bearing' },
      want: 'dispatched',
    });
    states.push(await readState());
    await act('fixed', { want: 'fixed' });
    states.push(await readState());
    await shot('alert-fixed.png');
    // The ack form is gone now; post it by hand to see the server refuse it by state.
    const late_ack_status = await page.evaluate(async (url) => {
      const r = await fetch(url, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: 'note=x',
      });
      return r.status;
    }, `/ui/alerts/${encodeURIComponent(ALERT)}/ack`);
    await openAlert();
    return { states, late_ack_status, events: await readEvents(), chart };
  },

  async confirm() {
    await login();
    const chart = await openAlert();
    await act('confirm', { want: 'closed' });
    await shot('alert-closed.png');
    return { state: await readState(), events: await readEvents(), chart };
  },

  async view() {
    await login();
    const chart = await openAlert();
    await shot('alert-viewer.png');
    const inputs = await page.$$eval('#inputs details.traced pre', (ps) => ps.map((p) => p.textContent.trim()));
    return { state: await readState(), forms: await readForms(), events: await readEvents(), chart, inputs };
  },

  async label() {
    await login();
    await openAlert();
    await act('label', {
      select: { label: 'false_positive' },
      fill: { note: 'sensor was being calibrated' },
      sel: '#events li[data-kind="labelled"]',
    });
    return { events: await readEvents() };
  },

  async review() {
    await login();
    await goto('/ui/review');
    await page.locator('table#queue').waitFor({ timeout: STEP_MS });
    const queued = await page.$$eval('table#queue tr.alert', (trs) => trs.map((tr) => tr.dataset.id));
    await shot('review.png');
    const form = page.locator(`table#queue tr.alert[data-id="${ALERT}"] form.label`);
    if ((await form.count()) === 0) throw new Error(`alert ${ALERT} has no label form in the queue (${JSON.stringify(queued)})`);
    await form.locator('select[name="label"]').selectOption('true_positive');
    await form.locator('input[name="note"]').fill('bearing was worn');
    await page.evaluate(() => { for (const el of document.querySelectorAll('#flash')) el.__weirStale = true; });
    await form.locator('button[type="submit"]').click();
    // Done when a fresh render lists the alert as labelled (a live refresh may replace the
    // answer's flash right away); refused when a fresh render shows an error.
    const r = await poll((id) => {
      const fl = document.querySelector('#flash');
      if (fl && !fl.__weirStale && fl.classList.contains('error') && fl.textContent.trim()) {
        return { ok: false, text: fl.textContent.trim() };
      }
      if (document.querySelector(`table#labelled tr.alert[data-id="${id}"]`)) {
        return { ok: true, text: fl ? fl.textContent.trim() : '' };
      }
      return null;
    }, ALERT, 'the label to be taken');
    if (!r.ok) throw new Error(`label refused: ${r.text}`);
    const after = await page.$$eval('table#queue tr.alert', (trs) => trs.map((tr) => tr.dataset.id));
    const labelled = await page.$$eval('table#labelled tr.alert', (trs) =>
      trs.map((tr) => ({ id: tr.dataset.id, label: tr.querySelector('.label').textContent.trim() })));
    await goto('/ui/models');
    await page.locator('table#reviews').waitFor({ timeout: STEP_MS });
    await shot('models.png');
    const reviews = await page.$$eval('table#reviews tr.review', (trs) => trs.map((tr) => ({
      kind: tr.dataset.kind,
      version: tr.dataset.version,
      alerts: Number(tr.querySelector('.alerts').textContent),
      labelled: Number(tr.querySelector('.labelled').textContent),
      tp: Number(tr.querySelector('.tp').textContent),
      fp: Number(tr.querySelector('.fp').textContent),
      precision: tr.querySelector('.precision').textContent.trim(),
    })));
    return { queued, after, labelled, flash: r.text, reviews };
  },

  async pipeline() {
    await login();
    const name = process.env.PIPELINE || '';
    await goto(`/ui/pipelines/${encodeURIComponent(name)}`);
    await page.locator('ol.graph li.operator').first().waitFor({ timeout: STEP_MS });
    // The live output: rows arrive over server-sent events while the test publishes.
    await page.locator('#output tbody tr.row').first().waitFor({ timeout: STEP_MS });
    await shot('pipeline.png');
    return await page.evaluate(() => ({
      state: document.querySelector('#state').textContent.trim(),
      operators: [...document.querySelectorAll('ol.graph li.operator')].map((li) => li.dataset.kind),
      rows_in: Number(document.querySelector('.rows-in').textContent),
      columns: [...document.querySelectorAll('#output thead th')].map((th) => th.textContent),
      row: [...document.querySelector('#output tbody tr.row').cells].map((td) => td.textContent),
      sql: document.querySelector('#sql').textContent,
    }));
  },

  async shots() {
    await login();
    await goto('/ui');
    await page.locator('.kpi').first().waitFor({ timeout: STEP_MS });
    await shot('overview.png');
    await goto('/ui/pipelines');
    await page.locator('main').first().waitFor({ timeout: STEP_MS });
    await shot('pipelines.png');
    return {};
  },
};

async function main() {
  if (!phases[phase]) throw new Error(`unknown phase ${JSON.stringify(phase)}; one of ${Object.keys(phases).join(', ')}`);
  if (!BASE) throw new Error('BASE is not set');
  mkdirSync(SHOTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 30_000,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  page = await context.newPage();
  page.setDefaultTimeout(STEP_MS);
  page.on('pageerror', (e) => process.stderr.write(`dashboard.mjs: page error: ${e.message}\n`));
  page.on('console', (m) => {
    if (m.type() === 'error') process.stderr.write(`dashboard.mjs: console error: ${m.text()}\n`);
  });
  const out = await phases[phase]();
  await finish(0, JSON.stringify(out));
}

setTimeout(() => fail(new Error(`overall timeout of ${OVERALL_MS / 1000} s`)), OVERALL_MS).unref();
main().catch(fail);
