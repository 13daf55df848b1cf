// krakenbot's live dashboard: /api/status and /api/history, then /api/stream (Server-Sent
// Events) for every update. Everything it shows is written with textContent: no value from
// the daemon is ever parsed as HTML. Numbers arrive formatted by the daemon (the
// instrument's precision, the currency's places); ages are counted here from the daemon's
// clock. <body data-charts="drawn"> once the charts are drawn, data-updates counts the
// pushed updates applied: what the browser tests wait for.
'use strict';

const STREAM_URL = '/api/stream';
const TOKEN_KEY = 'krakenbot.control-token';
const CONFIG = {responsive: true, displaylogo: false};
const COLORS = {mid: '#57606a', bid: '#1a7f37', ask: '#cf222e', inv: '#8250df',
                pnl: '#0969da', today: '#bf8700', equity: '#57606a'};

const view = {
  offsetMs: 0,        // the daemon's clock minus ours
  seq: null,          // the last stream message applied
  epoch: null,        // the history's thinning count (a change: fetch it again)
  history: null,      // {t: [...], series: {name: [...]}, fills: {symbol: [...]}}
  charts: new Map(),  // div id -> true once drawn
  status: null,
  updates: 0,
};

// ----------------------------------------------------------------------------- helpers

function $(id) { return document.getElementById(id); }

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key.startsWith('data-')) node.setAttribute(key, String(value));
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function ageText(seconds) {
  if (seconds === null || seconds === undefined) return '';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

function nowMs() { return Date.now() + view.offsetMs; }

// An age that keeps counting: the daemon's timestamp in data-ts, refreshed every second.
function age(tsMs) {
  return el('span', {class: 'age', 'data-ts': tsMs}, ageText((nowMs() - tsMs) / 1000));
}

function signClass(text) {
  if (typeof text !== 'string') return null;
  if (text.startsWith('-')) return 'neg';
  if (text.startsWith('+')) return 'pos';
  return null;
}

// A table of rows; columns: [header, row => cell, {num: true, cls: row => class}]
function table(columns, rows, empty) {
  if (!rows || rows.length === 0) return el('p', {class: 'none'}, empty || 'none');
  const head = el('tr', {}, ...columns.map(([h]) => el('th', {}, h)));
  const body = rows.map((row) => el('tr', {}, ...columns.map(([, cell, opt]) => {
    const value = cell(row);
    const classes = [];
    if (opt && opt.num) classes.push('n');
    const extra = opt && opt.cls ? opt.cls(row, value) : null;
    if (extra) classes.push(extra);
    const td = el('td', {class: classes.join(' ') || null});
    if (value instanceof Node) td.append(value);
    else td.textContent = value === null || value === undefined ? '–' : String(value);
    return td;
  })));
  return el('table', {}, el('thead', {}, head), el('tbody', {}, ...body));
}

function put(id, node) { $(id).replaceChildren(node); }

function badge(id, text, kind) {
  const node = $(id);
  node.textContent = text;
  node.className = `badge ${kind}`;
}

const NUM = {num: true};
const SIGNED = {num: true, cls: (row, value) => signClass(value)};
const SIDE = {cls: (row) => row.side};
const YES = (ok) => (ok ? 'yes' : 'no');
const OKCLS = (key) => ({cls: (row) => (row[key] ? 'ok' : 'bad')});

// ----------------------------------------------------------------------------- status

function render(st) {
  view.status = st;
  view.offsetMs = st.now_ms - Date.now();
  badge('mode', st.mode || '?', st.mode === 'live' ? 'warn' : 'off');
  const risk = (st.risk || '').toUpperCase();
  badge('risk', risk || 'starting', risk === 'ACTIVE' ? 'ok' : risk === 'HALTED' ? 'bad' : 'warn');
  badge('ready', st.ready ? 'READY' : `NOT READY: ${st.failing.join(', ')}`,
        st.ready ? 'ok' : 'bad');
  $('venue').textContent = st.venue;
  $('clock').textContent = st.time;
  renderMoney(st.money);
  renderControls(st);
  put('positions', table([
    ['strategy', (r) => r.strategy], ['symbol', (r) => r.symbol],
    ['position', (r) => r.qty, SIGNED], ['avg price', (r) => r.avg_price, NUM],
    ['mark', (r) => r.mark, NUM], ['unrealised', (r) => r.unrealised, SIGNED],
    ['realised', (r) => r.realised, SIGNED], ['fees', (r) => r.fees, NUM],
    ['', (r) => r.quote],
  ], st.positions, 'no positions yet'));
  put('orders', table([
    ['strategy', (r) => r.strategy], ['symbol', (r) => r.symbol], ['side', (r) => r.side, SIDE],
    ['price', (r) => r.price, NUM], ['size', (r) => r.qty, NUM],
    ['filled', (r) => r.filled, NUM], ['to mid', (r) => r.distance, SIGNED],
    ['bps', (r) => r.distance_bps, SIGNED], ['age', (r) => age(st.now_ms - r.age_s * 1000)],
    ['state', (r) => r.state + (r.pending ? ` (${r.pending} pending)` : '')],
  ], st.orders, 'no open orders'));
  put('fills', table([
    ['time (UTC)', (r) => r.time], ['age', (r) => age(r.ts_ms)],
    ['strategy', (r) => r.strategy], ['symbol', (r) => r.symbol],
    ['side', (r) => r.side, SIDE], ['size', (r) => r.qty, NUM], ['price', (r) => r.price, NUM],
    ['fee', (r) => `${r.fee} ${r.fee_asset}`, NUM], ['', (r) => r.liquidity],
  ], st.fills, 'no fills yet'));
  const bal = st.balances;
  $('balances-age').textContent = bal.time ? `as of ${bal.time} UTC` : '';
  put('balances', table([
    ['asset', (r) => r.asset], ['total', (r) => r.total, NUM], ['held', (r) => r.held, NUM],
    ['free', (r) => r.free, NUM],
  ], bal.rows, 'not polled yet'));
  renderStrategies(st);
  renderRejections(st.rejections);
  renderHealth(st.health);
}

function renderMoney(rows) {
  const cards = rows.map((r) => el('div', {class: 'card', 'data-quote': r.quote},
    el('span', {class: 'quote'}, r.quote),
    el('dl', {},
      el('dt', {}, 'PnL today'), el('dd', {class: signClass(r.today)}, r.today ?? '–'),
      el('dt', {}, 'PnL total'), el('dd', {class: signClass(r.total)}, r.total ?? '–'),
      el('dt', {}, 'realised'), el('dd', {class: signClass(r.realised)}, r.realised ?? '–'),
      el('dt', {}, 'unrealised'), el('dd', {class: signClass(r.unrealised)}, r.unrealised ?? '–'),
      el('dt', {}, 'equity'), el('dd', {}, r.equity ?? '–'))));
  $('money').replaceChildren(...(cards.length ? cards
    : [el('p', {class: 'none'}, 'no PnL yet')]));
}

function renderStrategies(st) {
  const control = st.control.enabled;
  const columns = [
    ['strategy', (r) => r.name],
    ['state', (r) => r.state + (r.halt_reason ? `: ${r.halt_reason}` : ''),
     {cls: (r) => (r.state === 'running' ? 'ok' : 'bad')}],
    ['risk', (r) => r.risk, {cls: (r) => (r.risk === 'active' ? 'ok' : 'bad')}],
    ['open orders', (r) => r.open_orders, NUM], ['fills', (r) => r.fills, NUM],
    ['calls', (r) => r.calls, NUM], ['errors', (r) => r.errors, NUM],
    ['PnL', (r) => r.pnl.map((p) => `${p.realised} + ${p.unrealised} ${p.quote}`).join('; ')],
    ['today', (r) => r.pnl.map((p) => `${p.today} ${p.quote}`).join('; ')],
    ['own metrics', (r) => r.metrics.map((x) => `${x.name}${x.symbol ? `[${x.symbol}]` : ''}=${x.value}`).join(', ')],
  ];
  if (control) {
    columns.push(['', (r) => el('span', {},
      el('button', {class: 'small', 'data-action': `strategies/${r.name}/pause`,
                    onclick: onControl}, 'Pause'), ' ',
      el('button', {class: 'small', 'data-action': `strategies/${r.name}/resume`,
                    onclick: onControl}, 'Resume'))]);
  }
  put('strategies', table(columns, st.strategies, 'no strategies'));
}

function renderRejections(rej) {
  put('rejections', table([
    ['reason', (r) => r.reason], ['count', (r) => r.count, NUM], ['source', (r) => r.source],
    ['strategy', (r) => r.strategy], ['action', (r) => r.action],
  ], rej.rows, 'none refused'));
}

function renderHealth(h) {
  put('readiness', table([
    ['check', (r) => r.check], ['ok', (r) => YES(r.ok), OKCLS('ok')], ['detail', (r) => r.detail],
  ], h.readiness));
  const loop = h.loop;
  put('loop', table([
    ['responsive', (r) => YES(r.healthy), OKCLS('healthy')], ['lag s', (r) => r.lag_s, NUM],
    ['max lag s', (r) => r.max_lag_s, NUM], ['limit s', (r) => r.limit_s, NUM],
    ['uptime', (r) => ageText(r.uptime_s)],
  ], [loop]));
  put('switch', h.switch ? table([
    ['armed', (r) => YES(r.armed), OKCLS('armed')],
    ['s to trigger', (r) => r.seconds_to_trigger, NUM], ['refreshes', (r) => r.refreshes, NUM],
    ['failures', (r) => r.failures, NUM], ['lapses', (r) => r.lapses, NUM],
  ], [h.switch]) : el('p', {class: 'none'}, 'not running'));
  put('feeds', table([
    ['feed', (r) => r.feed], ['connected', (r) => YES(r.connected), OKCLS('connected')],
    ['last frame s', (r) => r.frame_age_s, NUM], ['frames', (r) => r.frames, NUM],
    ['reconnects', (r) => r.reconnects, NUM], ['unparsed', (r) => r.unparsed, NUM],
    ['ping s', (r) => r.ping_rtt_s, NUM],
  ], h.feeds));
  put('books', table([
    ['symbol', (r) => r.symbol], ['valid', (r) => YES(r.valid), OKCLS('valid')],
    ['mid', (r) => r.mid, NUM], ['spread', (r) => r.spread, NUM],
    ['checksum failures', (r) => r.checksum_failures, NUM],
  ], h.books));
  put('headroom', table([
    ['counter', (r) => r.counter], ['pair', (r) => r.pair], ['room', (r) => r.headroom, NUM],
  ], h.headroom));
  put('orders-by-state', table([
    ['state', (r) => r.state], ['now', (r) => r.now, NUM], ['finished', (r) => r.finished, NUM],
  ], h.orders_by_state));
  put('tasks', table([
    ['task', (r) => r.task],
    ['restarts', (r) => r.restarts, {num: true, cls: (r) => (r.restarts ? 'bad' : null)}],
  ], h.tasks, 'not running'));
  put('notify', table([
    ['notifier', (r) => r.notifier], ['sent', (r) => r.sent, NUM],
    ['dropped', (r) => r.dropped, {num: true, cls: (r) => (r.dropped ? 'bad' : null)}],
    ['waiting', (r) => r.queued, NUM],
  ], h.notify, 'no notifiers configured'));
}

function tickAges() {
  const now = nowMs();
  for (const node of document.querySelectorAll('span.age')) {
    node.textContent = ageText((now - Number(node.dataset.ts)) / 1000);
  }
}

// ----------------------------------------------------------------------------- charts

function seriesGroups(hist) {
  const quotes = new Set();
  const symbols = new Set();
  for (const name of Object.keys(hist.series)) {
    const [kind, key] = [name.slice(0, name.indexOf(':')), name.slice(name.indexOf(':') + 1)];
    if (['equity', 'pnl', 'today'].includes(kind)) quotes.add(key);
    else symbols.add(key);
  }
  for (const symbol of Object.keys(hist.fills)) symbols.add(symbol);
  return {quotes: [...quotes].sort(), symbols: [...symbols].sort()};
}

function chartId(kind, key) { return `chart-${kind}-${key.replace(/[^A-Za-z0-9]/g, '_')}`; }

function line(hist, name, label, color, extra) {
  return Object.assign({x: hist.t, y: hist.series[name] || [], name: label, type: 'scatter',
                        mode: 'lines', line: {color, width: 1.5}, connectgaps: false}, extra);
}

function moneyFigure(hist, quote) {
  return {
    data: [
      line(hist, `pnl:${quote}`, `PnL ${quote}`, COLORS.pnl),
      line(hist, `today:${quote}`, `today ${quote}`, COLORS.today, {line: {color: COLORS.today, width: 1, dash: 'dot'}}),
      line(hist, `equity:${quote}`, `equity ${quote}`, COLORS.equity, {yaxis: 'y2'}),
    ],
    layout: {
      title: {text: `PnL and equity (${quote})`, font: {size: 14}},
      margin: {l: 60, r: 70, t: 36, b: 36}, height: 320, legend: {orientation: 'h'},
      xaxis: {type: 'date'}, yaxis: {title: {text: `PnL ${quote}`}, zeroline: true},
      yaxis2: {title: {text: `equity ${quote}`}, overlaying: 'y', side: 'right', showgrid: false},
    },
  };
}

function symbolFigure(hist, symbol) {
  const fills = hist.fills[symbol] || [];
  const side = (s) => fills.filter((f) => f.side === s);
  const markers = (s, symbolName, color) => ({
    x: side(s).map((f) => f.t), y: side(s).map((f) => f.price), type: 'scatter', mode: 'markers',
    name: `${s} fills`, marker: {symbol: symbolName, size: 9, color},
    text: side(s).map((f) => `${f.strategy} ${s} ${f.qty} @ ${f.price}`), hoverinfo: 'text+x',
  });
  return {
    data: [
      line(hist, `mid:${symbol}`, 'mid', COLORS.mid),
      line(hist, `bid:${symbol}`, 'our bid', COLORS.bid, {line: {color: COLORS.bid, width: 1, dash: 'dot', shape: 'hv'}}),
      line(hist, `ask:${symbol}`, 'our ask', COLORS.ask, {line: {color: COLORS.ask, width: 1, dash: 'dot', shape: 'hv'}}),
      markers('buy', 'triangle-up', COLORS.bid),
      markers('sell', 'triangle-down', COLORS.ask),
      line(hist, `inv:${symbol}`, 'inventory', COLORS.inv, {yaxis: 'y2', line: {color: COLORS.inv, width: 1.5, shape: 'hv'}}),
    ],
    layout: {
      title: {text: `${symbol}: mid, our quotes and fills; inventory below`, font: {size: 14}},
      margin: {l: 70, r: 20, t: 36, b: 36}, height: 420, legend: {orientation: 'h'},
      xaxis: {type: 'date', anchor: 'y2'},
      yaxis: {domain: [0.32, 1], title: {text: 'price'}},
      yaxis2: {domain: [0, 0.24], title: {text: 'inventory'}, zeroline: true},
    },
  };
}

function drawCharts() {
  const hist = view.history;
  if (!hist || typeof Plotly === 'undefined') return Promise.resolve();
  const {quotes, symbols} = seriesGroups(hist);
  const wanted = [
    ...quotes.map((q) => [chartId('money', q), moneyFigure(hist, q)]),
    ...symbols.map((s) => [chartId('symbol', s), symbolFigure(hist, s)]),
  ];
  const box = $('charts');
  const draws = wanted.map(([id, fig]) => {
    let div = $(id);
    if (!div) {
      div = el('div', {class: 'chart', id});
      box.append(div);
    }
    view.charts.set(id, true);
    return Plotly.react(div, fig.data, fig.layout, CONFIG);
  });
  if (wanted.length === 0 && !box.firstChild) {
    box.append(el('p', {class: 'none', id: 'charts-waiting'}, 'waiting for the first samples'));
  } else if (wanted.length) {
    const waiting = $('charts-waiting');
    if (waiting) waiting.remove();
  }
  return Promise.all(draws).then(() => {
    if (wanted.length) document.body.dataset.charts = 'drawn';
  });
}

function appendPoint(point, fills) {
  const hist = view.history;
  if (!hist) return;
  if (point) {
    const n = hist.t.length;
    hist.t.push(point.t);
    for (const [name, value] of Object.entries(point.values)) {
      if (!hist.series[name]) hist.series[name] = new Array(n).fill(null);
      hist.series[name].push(value);
    }
    for (const [name, values] of Object.entries(hist.series)) {
      if (values.length < n + 1) values.push(null);
    }
  }
  for (const fill of fills || []) {
    (hist.fills[fill.symbol] = hist.fills[fill.symbol] || []).push(fill);
  }
}

async function fetchHistory() {
  const response = await fetch('/api/history', {cache: 'no-store'});
  if (!response.ok) throw new Error(`/api/history: HTTP ${response.status}`);
  view.history = await response.json();
  view.epoch = view.history.epoch;
}

// ----------------------------------------------------------------------------- stream

async function onMessage(event) {
  const msg = JSON.parse(event.data);
  const missed = view.seq !== null && msg.seq !== view.seq + 1;
  view.seq = msg.seq;
  render(msg.status);
  if (missed || msg.epoch !== view.epoch || !view.history) {
    await fetchHistory();
  } else {
    appendPoint(msg.point, msg.fills);
  }
  if (msg.point || (msg.fills && msg.fills.length) || missed) await drawCharts();
  view.updates += 1;
  document.body.dataset.updates = String(view.updates);
}

function connect() {
  const source = new EventSource(STREAM_URL);
  source.addEventListener('status', (event) => {
    onMessage(event).catch((err) => showLive(false, String(err)));
  });
  source.onopen = () => showLive(true);
  source.onerror = () => showLive(false, 'reconnecting');  // EventSource retries by itself
}

function showLive(on, why) {
  badge('live', on ? 'live' : (why || 'offline'), on ? 'ok' : 'off');
  document.body.dataset.live = on ? 'open' : 'closed';
}

// ----------------------------------------------------------------------------- control

let controlVisible = false;

function renderControls(st) {
  const enabled = st.control && st.control.enabled;
  $('controls').hidden = !enabled;
  if (enabled && !controlVisible) {
    for (const button of document.querySelectorAll('#controls button[data-action]')) {
      button.onclick = onControl;
    }
    $('btn-forget').onclick = () => {
      sessionStorage.removeItem(TOKEN_KEY);
      result('token forgotten', false);
    };
  }
  controlVisible = Boolean(enabled);
}

function result(text, bad) {
  const node = $('control-result');
  node.textContent = text;
  node.className = bad ? 'bad' : '';
}

function askToken() {
  return new Promise((resolve) => {
    const dialog = $('token-dialog');
    const input = $('token-input');
    input.value = '';
    dialog.onclose = () => {
      const token = dialog.returnValue === 'ok' ? input.value.trim() : '';
      input.value = '';
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      resolve(token || null);
    };
    dialog.showModal();
  });
}

function nonce() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const CONFIRM = {
  halt: 'Halt trading? Every open order is canceled and no new order may leave.',
  'cancel-all': 'Cancel every open order now? (Running strategies may place new ones.)',
};

async function onControl(event) {
  const action = event.currentTarget.dataset.action;
  if (CONFIRM[action] && !window.confirm(CONFIRM[action])) return;
  let token = sessionStorage.getItem(TOKEN_KEY) || await askToken();
  if (!token) { result('no token given: nothing sent', true); return; }
  const response = await fetch(`/api/${action}`, {
    method: 'POST',
    cache: 'no-store',
    headers: {
      Authorization: `Bearer ${token}`,
      'X-Krakenbot-Nonce': nonce(),
      'X-Krakenbot-Time': String(Math.round(nowMs())),
    },
  });
  token = null;
  let body = {};
  try { body = await response.json(); } catch (err) { body = {error: response.statusText}; }
  if (response.status === 401) sessionStorage.removeItem(TOKEN_KEY);
  if (response.ok) result(`${action}: ${body.result || 'done'}`, false);
  else result(`${action}: refused (HTTP ${response.status}): ${body.error || ''}`, true);
}

// ----------------------------------------------------------------------------- start

async function start() {
  try {
    const response = await fetch('/api/status', {cache: 'no-store'});
    render(await response.json());
    await fetchHistory();
    await drawCharts();
  } catch (err) {
    document.body.dataset.charts = 'failed';
    throw err;
  }
  connect();
  setInterval(tickAges, 1000);
}

document.addEventListener('DOMContentLoaded', () => { start(); });
