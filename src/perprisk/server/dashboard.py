"""The web dashboard: one self-contained page (inline CSS and vanilla JavaScript, nothing fetched from
elsewhere), live through the WebSocket ``/v1/ws``, acting through the REST API with the user's key."""

DASHBOARD_HTML = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>perprisk — paper exchange</title>
<style>
:root { --bg:#0f1419; --card:#171e26; --line:#263241; --text:#d7dee7; --dim:#8593a3; --up:#2fbf71;
        --down:#f0514f; --warn:#f5a524; --accent:#4aa3ff; --mark:#f3c24b; }
* { box-sizing: border-box; }
[hidden] { display:none !important; }
body { margin:0; background:var(--bg); color:var(--text); font:13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
header { display:flex; align-items:center; gap:18px; padding:8px 16px; border-bottom:1px solid var(--line); flex-wrap:wrap; }
header h1 { font-size:16px; margin:0; letter-spacing:.5px; }
header h1 span { color:var(--accent); }
.tabs button { background:none; border:1px solid var(--line); color:var(--dim); padding:4px 10px; border-radius:4px; cursor:pointer; }
.tabs button.active { color:var(--text); border-color:var(--accent); }
.ticker { display:flex; gap:14px; }
.ticker div { display:flex; flex-direction:column; }
.ticker small, label small, .dim { color:var(--dim); }
.ticker b { font-variant-numeric:tabular-nums; }
.grow { flex:1; }
.status { font-size:12px; color:var(--dim); }
.status .dot { display:inline-block; width:8px; height:8px; border-radius:50%; background:var(--down); margin-right:4px; }
.status .dot.on { background:var(--up); }
input, select { background:#0c1116; color:var(--text); border:1px solid var(--line); border-radius:4px; padding:5px 7px; font:inherit; }
input:focus, select:focus { outline:1px solid var(--accent); }
button.primary, button.act { background:var(--accent); color:#06121f; border:0; border-radius:4px; padding:6px 12px; font-weight:600; cursor:pointer; }
button.act { background:#243243; color:var(--text); font-weight:500; padding:3px 8px; }
button.buy { background:var(--up); } button.sell { background:var(--down); color:#fff; }
main { display:grid; grid-template-columns: minmax(0,2.3fr) minmax(250px,1fr) minmax(250px,1fr); gap:12px; padding:12px 16px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:10px 12px; min-width:0; }
.card h2 { font-size:12px; text-transform:uppercase; letter-spacing:.8px; color:var(--dim); margin:0 0 8px; display:flex; justify-content:space-between; }
.col { display:flex; flex-direction:column; gap:12px; min-width:0; }
canvas { width:100%; display:block; }
table { width:100%; border-collapse:collapse; font-variant-numeric:tabular-nums; }
th { text-align:right; color:var(--dim); font-weight:500; padding:3px 6px; border-bottom:1px solid var(--line); white-space:nowrap; }
td { text-align:right; padding:4px 6px; border-bottom:1px solid #1d2631; white-space:nowrap; }
th:first-child, td:first-child { text-align:left; }
.long { color:var(--up); } .short { color:var(--down); }
.empty { color:var(--dim); text-align:center; padding:10px; }
.bar { position:relative; height:8px; width:64px; background:#0c1116; border-radius:4px; overflow:hidden; display:inline-block; vertical-align:middle; }
.bar i { position:absolute; left:0; top:0; bottom:0; border-radius:4px; }
.lights { display:inline-flex; gap:3px; vertical-align:middle; }
.lights i { width:9px; height:9px; border-radius:50%; background:#2a3543; display:inline-block; }
.form { display:grid; grid-template-columns: 1fr 1fr; gap:6px 8px; align-items:end; }
.form label { display:flex; flex-direction:column; gap:2px; font-size:12px; }
.form .full { grid-column: 1 / -1; }
.sides { display:flex; gap:6px; } .sides button { flex:1; padding:7px; opacity:.45; }
.sides button.on { opacity:1; }
.msg { min-height:18px; font-size:12px; word-break:break-word; }
.msg.err { color:var(--down); } .msg.ok { color:var(--up); }
.book td { padding:1px 6px; } .book .ask { color:var(--down); } .book .bid { color:var(--up); }
ul.feed { list-style:none; margin:0; padding:0; max-height:190px; overflow:auto; font-size:12px; }
ul.feed li { padding:4px 2px; border-bottom:1px solid #1d2631; }
ul.feed li.own { background:#3a1719; }
.gauge { display:flex; align-items:center; gap:10px; }
.kv { display:grid; grid-template-columns:auto 1fr; gap:2px 10px; font-variant-numeric:tabular-nums; }
.kv span:nth-child(odd) { color:var(--dim); } .kv span:nth-child(even) { text-align:right; }
.calc { grid-column: 1 / -1; display:grid; grid-template-columns: 1fr 1fr; gap:12px; }
.presets { display:flex; gap:6px; flex-wrap:wrap; margin-bottom:6px; }
.result { font-variant-numeric:tabular-nums; margin-top:6px; }
.result b { color:var(--mark); }
#positions td, #positions th { padding:4px 4px; font-size:12px; }
#login-area { display:flex; gap:6px; align-items:center; }
</style>
</head>
<body>
<header>
  <h1><span>perprisk</span> paper exchange</h1>
  <div class="tabs" id="tabs"></div>
  <div class="ticker">
    <div><small>Mark</small><b id="t-mark">–</b></div>
    <div><small>Index</small><b id="t-index">–</b></div>
    <div><small>Last</small><b id="t-last">–</b></div>
    <div><small>Funding</small><b id="t-funding">–</b></div>
  </div>
  <div class="grow"></div>
  <div class="status"><span class="dot" id="ws-dot"></span><span id="ws-status">connecting…</span> · feed <span id="feed-status">–</span></div>
  <div id="login-area">
    <input id="api-key" data-testid="api-key" type="password" placeholder="API key (prk_…)" size="28" autocomplete="off">
    <button class="primary" id="login" data-testid="login">Log in</button>
  </div>
  <div id="who" class="status" hidden>account <b id="account-id" data-testid="account-id"></b> <button class="act" id="logout">Log out</button></div>
</header>
<main>
  <div class="col">
    <div class="card"><h2>Mark &amp; index <span id="chart-legend" class="dim"></span></h2><canvas id="chart" height="260"></canvas></div>
    <div class="card" style="overflow-x:auto"><h2>Positions <span class="dim" id="positions-note"></span></h2>
      <table id="positions" data-testid="positions"><thead><tr><th>Symbol</th><th>Side</th><th>Size</th><th>Entry</th><th>Mark</th><th>PnL</th>
      <th>Liq. price</th><th>Bankr.</th><th>Distance</th><th>Margin ratio</th><th>ADL</th><th></th></tr></thead><tbody></tbody></table>
    </div>
    <div class="card"><h2>Open orders</h2>
      <table id="orders"><thead><tr><th>Id</th><th>Symbol</th><th>Side</th><th>Type</th><th>Price</th><th>Remaining</th><th></th></tr></thead><tbody></tbody></table>
    </div>
  </div>
  <div class="col">
    <div class="card"><h2>Order entry</h2>
      <div class="form" id="order-form">
        <div class="sides full"><button class="primary buy on" id="side-buy" data-testid="side-buy">Buy / Long</button>
          <button class="primary sell" id="side-sell" data-testid="side-sell">Sell / Short</button></div>
        <label>Type<select id="order-type" data-testid="order-type"><option value="limit">Limit</option><option value="market">Market</option></select></label>
        <label>Price<input id="order-price" data-testid="order-price" inputmode="decimal"></label>
        <label>Quantity<input id="order-qty" data-testid="order-qty" inputmode="decimal" value="0.01"></label>
        <label>Leverage<input id="order-leverage" data-testid="order-leverage" inputmode="decimal" value="20"></label>
        <label>Margin<select id="order-margin-mode" data-testid="order-margin-mode"><option value="cross">Cross</option><option value="isolated">Isolated</option></select></label>
        <label><small>&nbsp;</small><label style="flex-direction:row;gap:6px;align-items:center"><input type="checkbox" id="order-reduce"> reduce-only</label></label>
        <button class="primary full" id="order-submit" data-testid="order-submit">Place order</button>
        <div class="msg full" id="order-msg" data-testid="order-msg"></div>
      </div>
    </div>
    <div class="card"><h2>Order book</h2><table class="book" id="book"><tbody></tbody></table></div>
    <div class="card"><h2>Alerts</h2>
      <div class="form"><label>Kind<select id="alert-kind"><option value="margin_ratio">margin ratio %</option><option value="price">price</option><option value="adl_quintile">ADL quintile</option></select></label>
      <label>Threshold<input id="alert-threshold" value="80"></label>
      <label>Direction<select id="alert-direction"><option>above</option><option>below</option></select></label>
      <button class="act" id="alert-add">Add alert</button></div>
      <ul class="feed" id="alerts"></ul>
    </div>
  </div>
  <div class="col">
    <div class="card"><h2>Account</h2>
      <div class="gauge"><svg id="gauge" width="120" height="70" viewBox="0 0 120 70"></svg>
        <div class="kv grow" id="account"><span>not logged in</span><span></span></div></div>
    </div>
    <div class="card"><h2>Insurance fund <b id="fund-balance" data-testid="fund-balance"></b></h2><canvas id="fund-chart" height="120"></canvas></div>
    <div class="card"><h2>Liquidations</h2><ul class="feed" id="liquidations" data-testid="liquidations"><li class="dim">none yet</li></ul></div>
  </div>
  <div class="card calc">
    <div><h2>Calculator — liquidation price</h2>
      <div class="presets" id="presets"></div>
      <div class="form" id="calc-form">
        <label>Family<select id="c-family"></select></label>
        <label>Margin mode<select id="c-mode"><option>isolated</option><option>cross</option></select></label>
        <label>Side<select id="c-side"><option>long</option><option>short</option></select></label>
        <label>Size<input id="c-size" value="1"></label>
        <label>Entry<input id="c-entry" value="20000"></label>
        <label>Mark<input id="c-mark" value="20000"></label>
        <label>Margin / wallet<input id="c-wallet" value="400"></label>
        <label>Leverage<input id="c-leverage" value="50"></label>
        <label>Tiers<select id="c-tiers"><option value="">one MMR →</option></select></label>
        <label>MMR<input id="c-mmr" value="0.005"></label>
        <label>Taker fee<input id="c-fee" value="0"></label>
        <button class="primary" id="c-go" data-testid="calc-go">Compute</button>
        <div class="result full" id="c-result" data-testid="calc-result"></div>
      </div>
    </div>
    <div><h2>Reverse sizing — the largest position that survives a worst price</h2>
      <div class="form">
        <label>Family<select id="r-family"></select></label>
        <label>Symbol (tiers)<select id="r-symbol"></select></label>
        <label>Side<select id="r-side"><option>long</option><option>short</option></select></label>
        <label>Entry<input id="r-entry" value="100000"></label>
        <label>Worst price to survive<input id="r-worst" value="90000"></label>
        <label>Margin allotted<input id="r-margin" value="1000"></label>
        <button class="primary" id="r-go" data-testid="size-go">Size it</button>
        <div class="result full" id="r-result" data-testid="size-result"></div>
      </div>
    </div>
  </div>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const S = { symbol: "BTCUSDT", markets: {}, marks: {}, books: {}, positions: [], orders: [], account: null,
            fund: [], fundBalance: null, liquidations: [], alerts: [], key: sessionStorage.getItem("perprisk.key") || "",
            accountId: null, side: "buy", ws: null, wsReady: false };
const MAXPOINTS = 1500;

function num(x) { return x === null || x === undefined ? NaN : Number(x); }
function fmt(x, dp) {
  const v = num(x); if (!isFinite(v)) return "–";
  if (dp === undefined) dp = Math.abs(v) >= 1000 ? 1 : Math.abs(v) >= 1 ? 3 : 6;
  return v.toLocaleString("en-US", { minimumFractionDigits: dp, maximumFractionDigits: dp });
}
function esc(s) { return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c])); }
function time(ms) { return new Date(ms).toISOString().substring(11, 19); }

async function api(method, path, body, auth) {
  const headers = { "Content-Type": "application/json" };
  if (auth !== false && S.key) headers["X-API-Key"] = S.key;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null; try { data = await res.json(); } catch (e) { data = null; }
  if (!res.ok) {
    let msg = res.status + " ";
    const d = data && data.detail;
    if (Array.isArray(d)) msg += d.map((e) => (e.field ? e.field + ": " : "") + e.message).join("; ");
    else msg += d || res.statusText;
    const err = new Error(msg); err.status = res.status; throw err;
  }
  return data;
}

// ------------------------------------------------------------------------------------ markets & tabs
async function loadMarkets() {
  const list = await api("GET", "/v1/markets", undefined, false);
  const tabs = $("tabs"); tabs.innerHTML = "";
  for (const m of list) {
    S.markets[m.symbol] = m;
    const b = document.createElement("button"); b.textContent = m.symbol; b.dataset.symbol = m.symbol;
    b.onclick = () => { S.symbol = m.symbol; renderAll(); };
    tabs.appendChild(b);
    for (const id of ["c-tiers", "r-symbol"]) { const o = document.createElement("option"); o.value = o.textContent = m.symbol; $(id).appendChild(o); }
    if (!S.marks[m.symbol]) S.marks[m.symbol] = [];
  }
  const fam = await api("GET", "/v1/calc/families", undefined, false);
  for (const id of ["c-family", "r-family"]) for (const f of fam.families) { const o = document.createElement("option"); o.value = o.textContent = f; $(id).appendChild(o); }
  $("c-family").value = "bybit"; $("r-family").value = "binance";
  const feed = await api("GET", "/v1/feed", undefined, false); renderFeed(feed);
}
function renderFeed(f) { $("feed-status").textContent = f.kind === "none" ? "none" : f.kind + (f.running ? " ▶" : " ❚❚"); }

// ------------------------------------------------------------------------------------ WebSocket
function connect() {
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/v1/ws");
  S.ws = ws;
  ws.onopen = () => {
    S.wsReady = true; $("ws-dot").classList.add("on"); $("ws-status").textContent = "live";
    ws.send(JSON.stringify({ op: "subscribe", channels: ["mark", "book", "trades", "liquidations", "insurance", "funding"] }));
    if (S.key) ws.send(JSON.stringify({ op: "auth", api_key: S.key }));
  };
  ws.onclose = () => { S.wsReady = false; $("ws-dot").classList.remove("on"); $("ws-status").textContent = "reconnecting…"; setTimeout(connect, 1000); };
  ws.onmessage = (e) => { try { onMessage(JSON.parse(e.data)); } catch (err) { console.error(err); } };
}
function onMessage(m) {
  if (m.type === "auth") { S.ws.send(JSON.stringify({ op: "subscribe", channels: ["positions", "orders", "account", "alerts"] })); return; }
  if (m.type === "error") { if (m.code === 401) logout("key refused"); return; }
  if (!m.channel) return;
  switch (m.channel) {
    case "mark": {
      const d = m.data, arr = S.marks[m.symbol] || (S.marks[m.symbol] = []);
      if (m.snapshot) {
        arr.length = 0;
        for (const p of d.history || []) arr.push([p[0], num(p[1]), num(p[2])]);
        if (!arr.length && d.mark_price) arr.push([d.timestamp_ms, num(d.mark_price), num(d.index_price)]);
        Object.assign(S.markets[m.symbol] || {}, d);
      } else {
        arr.push([d.timestamp_ms, num(d.mark_price), num(d.index_price)]);
        if (arr.length > MAXPOINTS) arr.splice(0, arr.length - MAXPOINTS);
        const mk = S.markets[m.symbol]; if (mk) { mk.mark_price = d.mark_price; mk.index_price = d.index_price; }
      }
      if (m.symbol === S.symbol) { scheduleChart(); renderTicker(); renderBook(); }
      break; }
    case "book": S.books[m.symbol] = m.data; if (m.symbol === S.symbol) renderBook(); break;
    case "trades": {
      if (m.snapshot) { const t = m.data[m.data.length - 1]; if (t && S.markets[m.symbol]) S.markets[m.symbol].last_price = t.price; }
      else if (S.markets[m.symbol]) S.markets[m.symbol].last_price = m.data.price;
      if (m.symbol === S.symbol) renderTicker(); break; }
    case "funding": if (S.markets[m.symbol] && m.snapshot) S.markets[m.symbol].funding_rate = m.data.current_rate;
      else if (S.markets[m.symbol]) S.markets[m.symbol].funding_rate = m.data.rate; renderTicker(); break;
    case "insurance":
      if (m.snapshot) { S.fund = m.data.history.map((r) => r); S.fundBalance = m.data.balances; }
      else { S.fund.push(m.data); if (S.fundBalance) S.fundBalance[m.data.asset] = m.data.balance; }
      renderFund(); break;
    case "liquidations":
      if (m.snapshot) S.liquidations = m.data.slice();
      else S.liquidations.push(Object.assign({}, m.data, m.own ? { own: true } : {}));
      if (S.liquidations.length > 200) S.liquidations.splice(0, S.liquidations.length - 200);
      renderLiquidations(); break;
    case "positions": S.positions = m.data; renderPositions(); scheduleChart(); break;
    case "account": S.account = m.data; renderAccount(); break;
    case "orders": if (m.data && m.data.event === "OpenOrders") { S.orders = m.data.orders; renderOrders(); } break;
    case "alerts": if (m.snapshot) S.alerts = m.data.slice(); else S.alerts.push(m.data); renderAlerts(); break;
  }
}

// ------------------------------------------------------------------------------------ login
async function login(key) {
  S.key = key.trim();
  try {
    const acct = await api("GET", "/v1/account");
    sessionStorage.setItem("perprisk.key", S.key);
    S.accountId = acct.account_id; S.account = acct;
    $("login-area").hidden = true; $("who").hidden = false; $("account-id").textContent = acct.account_id;
    renderAccount(); refreshPrivate();
    if (S.wsReady) S.ws.send(JSON.stringify({ op: "auth", api_key: S.key }));
    loadAlerts();
  } catch (e) { S.key = ""; $("order-msg").className = "msg err"; $("order-msg").textContent = "login failed: " + e.message; }
}
function logout(reason) {
  S.key = ""; S.accountId = null; S.account = null; S.positions = []; S.orders = []; S.alerts = [];
  sessionStorage.removeItem("perprisk.key"); $("login-area").hidden = false; $("who").hidden = true;
  if (reason) { $("order-msg").className = "msg err"; $("order-msg").textContent = reason; }
  if (S.ws && S.wsReady) { S.ws.close(); }
  renderAll();
}
async function refreshPrivate() {
  if (!S.key) return;
  try {
    const [pos, ord, acct] = await Promise.all([api("GET", "/v1/positions"), api("GET", "/v1/orders"), api("GET", "/v1/account")]);
    S.positions = pos; S.orders = ord; S.account = acct; renderPositions(); renderOrders(); renderAccount(); scheduleChart();
  } catch (e) { if (e.status === 401) logout("key refused"); }
}

// ------------------------------------------------------------------------------------ orders
function setSide(side) { S.side = side; $("side-buy").classList.toggle("on", side === "buy"); $("side-sell").classList.toggle("on", side === "sell"); }
async function placeOrder() {
  const msg = $("order-msg"); msg.className = "msg"; msg.textContent = "…";
  if (!S.key) { msg.className = "msg err"; msg.textContent = "log in with an API key first"; return; }
  const type = $("order-type").value, symbol = S.symbol;
  try {
    const settings = (S.account && S.account.settings && S.account.settings[symbol]) || {};
    const mode = $("order-margin-mode").value, lev = $("order-leverage").value.trim();
    const hasExposure = S.positions.some((p) => p.symbol === symbol) || S.orders.some((o) => o.symbol === symbol);
    if ((settings.margin_mode || "cross") !== mode && !hasExposure) await api("POST", "/v1/margin-mode", { symbol, margin_mode: mode });
    if (lev && num(settings.leverage || 20) !== num(lev)) await api("POST", "/v1/leverage", { symbol, leverage: lev });
    const body = { symbol, side: S.side, quantity: $("order-qty").value.trim(), order_type: type, reduce_only: $("order-reduce").checked };
    if (type === "limit") body.price = $("order-price").value.trim();
    const r = await api("POST", "/v1/orders", body);
    msg.className = "msg ok";
    msg.textContent = `order ${r.order_id} ${r.status}` + (num(r.filled_quantity) > 0 ? ` · filled ${r.filled_quantity} @ ${fmt(r.average_price)}` : "");
    refreshPrivate();
  } catch (e) { msg.className = "msg err"; msg.textContent = e.message; }
}
async function cancelOrder(id) { try { await api("DELETE", "/v1/orders/" + id); refreshPrivate(); } catch (e) { $("order-msg").className = "msg err"; $("order-msg").textContent = e.message; } }
async function addMargin(symbol, side) {
  const amount = prompt("Margin to add to the isolated " + symbol + " position (negative removes):", "100");
  if (!amount) return;
  try { await api("POST", "/v1/positions/" + symbol + "/margin", { amount, position_side: side === "both" ? null : side }); refreshPrivate(); }
  catch (e) { $("order-msg").className = "msg err"; $("order-msg").textContent = e.message; }
}

// ------------------------------------------------------------------------------------ alerts
async function loadAlerts() { if (!S.key) return; try { const a = await api("GET", "/v1/alerts"); S.alertRules = a.rules; S.alerts = a.alerts; renderAlerts(); } catch (e) {} }
async function addAlert() {
  try { await api("POST", "/v1/alerts", { kind: $("alert-kind").value, symbol: S.symbol, threshold: $("alert-threshold").value.trim(), direction: $("alert-direction").value }); loadAlerts(); }
  catch (e) { $("order-msg").className = "msg err"; $("order-msg").textContent = e.message; }
}
async function removeAlert(id) { try { await api("DELETE", "/v1/alerts/" + id); loadAlerts(); } catch (e) {} }

// ------------------------------------------------------------------------------------ rendering
function renderAll() {
  for (const b of $("tabs").children) b.classList.toggle("active", b.dataset.symbol === S.symbol);
  renderTicker(); renderBook(); renderPositions(); renderOrders(); renderAccount(); renderFund(); renderLiquidations(); renderAlerts(); scheduleChart();
}
function renderTicker() {
  const m = S.markets[S.symbol] || {};
  $("t-mark").textContent = fmt(m.mark_price); $("t-index").textContent = fmt(m.index_price); $("t-last").textContent = fmt(m.last_price);
  $("t-funding").textContent = m.funding_rate !== undefined && m.funding_rate !== null ? (num(m.funding_rate) * 100).toFixed(4) + " %" : "–";
  if (!$("order-price").value && m.mark_price) $("order-price").value = m.mark_price;
}
function renderBook() {
  const b = S.books[S.symbol], body = $("book").tBodies[0];
  if (!b) { body.innerHTML = '<tr><td class="empty">no book yet</td></tr>'; return; }
  const asks = b.asks.slice(0, 8).reverse(), bids = b.bids.slice(0, 8);
  let h = "<tr><th>Price</th><th>Quantity</th><th>Orders</th></tr>";
  for (const a of asks) h += `<tr><td class="ask">${fmt(a[0])}</td><td>${fmt(a[1], 3)}</td><td>${a[2]}</td></tr>`;
  h += `<tr><td colspan="3" class="dim" style="text-align:center">mark ${fmt((S.markets[S.symbol] || {}).mark_price)}</td></tr>`;
  for (const x of bids) h += `<tr><td class="bid">${fmt(x[0])}</td><td>${fmt(x[1], 3)}</td><td>${x[2]}</td></tr>`;
  if (!asks.length && !bids.length) h += '<tr><td colspan="3" class="empty">empty book</td></tr>';
  body.innerHTML = h;
}
function distanceColor(d) { return d < 2 ? "var(--down)" : d < 5 ? "var(--warn)" : "var(--up)"; }
function ratioColor(r) { return r >= 80 ? "var(--down)" : r >= 50 ? "var(--warn)" : "var(--up)"; }
function lights(q) {
  const colors = ["#2fbf71", "#9bd14b", "#f5d13b", "#f5a524", "#f0514f"]; let h = '<span class="lights" title="ADL quintile ' + (q || "–") + '">';
  for (let i = 1; i <= 5; i++) h += `<i style="background:${q && i <= q ? colors[i - 1] : "#2a3543"}"></i>`;
  return h + "</span>";
}
function renderPositions() {
  const body = $("positions").tBodies[0];
  if (!S.key) { body.innerHTML = '<tr><td colspan="12" class="empty">log in to see your positions</td></tr>'; return; }
  if (!S.positions.length) { body.innerHTML = '<tr><td colspan="12" class="empty" data-testid="no-positions">no open positions</td></tr>'; return; }
  let h = "";
  for (const p of S.positions) {
    const d = num(p.distance_pct), r = num(p.margin_ratio_pct);
    const bar = isFinite(d) ? `<span class="bar" title="${fmt(d, 2)} % to liquidation"><i style="width:${Math.min(100, d / 20 * 100)}%;background:${distanceColor(d)}"></i></span> ${fmt(d, 2)} %` : "–";
    const pnl = num(p.unrealized_pnl);
    h += `<tr data-testid="position-row" data-symbol="${esc(p.symbol)}"><td>${esc(p.symbol)} <span class="dim">${esc(p.margin_mode)} ${fmt(p.leverage, 0)}×</span></td>
      <td class="${esc(p.side)}">${esc(p.side)}</td><td>${fmt(p.size, 3)}</td><td>${fmt(p.entry_price)}</td><td>${fmt(p.mark_price)}</td>
      <td class="${pnl >= 0 ? "long" : "short"}">${fmt(pnl, 2)}</td>
      <td class="liq-price" data-testid="liq-price" style="color:var(--down)">${fmt(p.liquidation_price)}</td><td>${fmt(p.bankruptcy_price)}</td>
      <td>${bar}</td><td style="color:${ratioColor(r)}">${fmt(r, 2)} %</td><td>${lights(p.adl_quintile)}</td>
      <td>${p.margin_mode === "isolated" ? `<button class="act" data-margin="${esc(p.symbol)}|${esc(p.position_side)}">± margin</button>` : ""}</td></tr>`;
  }
  body.innerHTML = h;
  for (const b of body.querySelectorAll("button[data-margin]")) { const [s, side] = b.dataset.margin.split("|"); b.onclick = () => addMargin(s, side); }
  $("positions-note").textContent = S.positions.length + " open";
}
function renderOrders() {
  const body = $("orders").tBodies[0];
  if (!S.orders.length) { body.innerHTML = '<tr><td colspan="7" class="empty">no open orders</td></tr>'; return; }
  let h = "";
  for (const o of S.orders) h += `<tr><td>${o.order_id}</td><td>${esc(o.symbol)}</td><td class="${o.side === "buy" ? "long" : "short"}">${esc(o.side)}</td><td>${esc(o.order_type)}</td>
    <td>${fmt(o.price)}</td><td>${fmt(o.remaining_quantity, 3)}</td><td><button class="act" data-cancel="${o.order_id}">cancel</button></td></tr>`;
  body.innerHTML = h;
  for (const b of body.querySelectorAll("button[data-cancel]")) b.onclick = () => cancelOrder(b.dataset.cancel);
}
function gauge(pctValue) {
  const v = isFinite(pctValue) ? Math.max(0, Math.min(100, pctValue)) : 0, a = Math.PI * (1 - v / 100);
  const x = 60 + 48 * Math.cos(a), y = 62 - 48 * Math.sin(a), color = ratioColor(v);
  $("gauge").innerHTML = `<path d="M12 62 A48 48 0 0 1 108 62" stroke="#2a3543" stroke-width="10" fill="none"/>` +
    (v > 0 ? `<path d="M12 62 A48 48 0 0 1 ${x.toFixed(2)} ${y.toFixed(2)}" stroke="${color}" stroke-width="10" fill="none"/>` : "") +
    `<text x="60" y="58" text-anchor="middle" fill="#d7dee7" font-size="15" font-weight="600">${isFinite(pctValue) ? pctValue.toFixed(1) + "%" : "–"}</text>` +
    `<text x="60" y="69" text-anchor="middle" fill="#8593a3" font-size="8">margin ratio</text>`;
}
function renderAccount() {
  const a = S.account, el = $("account");
  if (!a) { el.innerHTML = "<span>not logged in</span><span></span>"; gauge(NaN); return; }
  let h = "";
  for (const [asset, v] of Object.entries(a.balances)) h += `<span>${esc(asset)}</span><span>${fmt(v, 2)}</span>`;
  h += `<span>wallet</span><span>${fmt(a.wallet_balance, 2)}</span><span>available</span><span data-testid="available">${fmt(a.available_balance, 2)}</span>`;
  el.innerHTML = h;
  const iso = S.positions.filter((p) => p.margin_mode === "isolated" && p.symbol === S.symbol);
  gauge(iso.length ? num(iso[0].margin_ratio_pct) : num(a.cross_margin_ratio_pct));
}
function renderFund() {
  const bal = S.fundBalance ? (S.fundBalance.USDT !== undefined ? S.fundBalance.USDT : Object.values(S.fundBalance)[0]) : null;
  $("fund-balance").textContent = bal !== null && bal !== undefined ? fmt(bal, 2) + " USDT" : "";
  const pts = S.fund.filter((r) => r.asset === "USDT").map((r, i) => [i, num(r.balance)]);
  drawLines($("fund-chart"), [{ pts, color: "#4aa3ff", fill: true, step: true }], []);
}
function renderLiquidations() {
  const ul = $("liquidations");
  if (!S.liquidations.length) { ul.innerHTML = '<li class="dim">none yet</li>'; return; }
  let h = "";
  for (const e of S.liquidations.slice().reverse().slice(0, 60)) {
    let what;
    if (e.event === "LiquidationStep") what = `<b>${esc(e.step)}</b> ${esc(e.symbol || "")} ${fmt(e.quantity, 3)} @ ${fmt(e.price)} <span class="dim">${esc(e.reason)}</span>`;
    else if (e.event === "Disposal") what = `<b>disposal</b> ${esc(e.symbol)} ${fmt(e.filled, 3)}/${fmt(e.quantity, 3)} bankr. ${fmt(e.bankruptcy_price)} · ${num(e.pnl) >= 0 ? "fund +" : "fund "}${fmt(e.pnl, 2)}`;
    else if (e.event === "AdlExecuted") what = `<b>ADL</b> ${esc(e.symbol)} ${fmt(e.quantity, 3)} @ ${fmt(e.price)} <span class="dim">${esc(e.reason)}</span>`;
    else what = `<b>${esc(e.event)}</b> ${fmt(e.amount, 2)}`;
    h += `<li class="${e.own ? "own" : ""}" data-testid="liquidation"><span class="dim">${e.timestamp_ms ? time(e.timestamp_ms) : ""}</span> ${e.own ? "<b>YOU</b> " : ""}${what}</li>`;
  }
  ul.innerHTML = h;
}
function renderAlerts() {
  const ul = $("alerts"); let h = "";
  for (const r of S.alertRules || []) h += `<li>rule ${r.alert_id}: ${esc(r.kind)} ${esc(r.symbol)} ${esc(r.direction)} ${fmt(r.threshold, 2)} <button class="act" data-alert="${r.alert_id}">×</button></li>`;
  for (const a of S.alerts.slice().reverse().slice(0, 30)) h += `<li style="color:var(--warn)">${a.timestamp_ms ? time(a.timestamp_ms) : ""} ${esc(a.symbol || "")} ${esc(a.message)}</li>`;
  ul.innerHTML = h || '<li class="dim">no alerts</li>';
  for (const b of ul.querySelectorAll("button[data-alert]")) b.onclick = () => removeAlert(b.dataset.alert);
}

// ------------------------------------------------------------------------------------ charts (canvas)
let chartQueued = false;
function scheduleChart() { if (!chartQueued) { chartQueued = true; requestAnimationFrame(() => { chartQueued = false; drawChart(); }); } }
function drawChart() {
  const pts = S.marks[S.symbol] || [];
  const mark = pts.map((p) => [p[0], p[1]]), index = pts.map((p) => [p[0], p[2]]);
  const levels = [];
  for (const p of S.positions) if (p.symbol === S.symbol) {
    if (p.liquidation_price) levels.push({ y: num(p.liquidation_price), color: "#f0514f", label: "liq " + fmt(p.liquidation_price) });
    levels.push({ y: num(p.entry_price), color: "#8593a3", label: "entry " + fmt(p.entry_price) });
  }
  $("chart-legend").innerHTML = `<span style="color:var(--mark)">— mark</span> <span style="color:#4aa3ff">-- index</span> <span style="color:#f0514f">-- liquidation</span>`;
  drawLines($("chart"), [{ pts: index, color: "#4aa3ff", dash: [4, 3] }, { pts: mark, color: "#f3c24b" }], levels, true);
}
function drawLines(canvas, series, levels, timeAxis) {
  const dpr = window.devicePixelRatio || 1, w = canvas.clientWidth || 600;
  if (!canvas._h) canvas._h = canvas.height;
  const H = canvas._h; canvas.width = w * dpr; canvas.height = H * dpr; canvas._dpr = dpr; canvas.style.height = H + "px";
  const g = canvas.getContext("2d"); g.setTransform(dpr, 0, 0, dpr, 0, 0); g.clearRect(0, 0, w, H);
  const all = series.flatMap((s) => s.pts).filter((p) => isFinite(p[1]));
  if (!all.length) { g.fillStyle = "#8593a3"; g.font = "12px system-ui"; g.fillText("waiting for data…", 10, 20); return; }
  let x0 = Math.min(...all.map((p) => p[0])), x1 = Math.max(...all.map((p) => p[0]));
  let y0 = Math.min(...all.map((p) => p[1])), y1 = Math.max(...all.map((p) => p[1]));
  const mid = (y0 + y1) / 2;
  for (const l of levels) if (isFinite(l.y) && Math.abs(l.y - mid) / mid < 0.3) { y0 = Math.min(y0, l.y); y1 = Math.max(y1, l.y); }
  if (y1 === y0) { y1 += Math.abs(y1) * 0.001 + 1; y0 -= Math.abs(y0) * 0.001 + 1; }
  if (x1 === x0) x1 = x0 + 1;
  const pad = (y1 - y0) * 0.08; y0 -= pad; y1 += pad;
  const L = 8, R = timeAxis ? 78 : 64, T = 8, B = timeAxis ? 18 : 6;
  const X = (x) => L + (x - x0) / (x1 - x0) * (w - L - R), Y = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  g.font = "11px system-ui"; g.strokeStyle = "#263241"; g.fillStyle = "#8593a3"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) { const y = y0 + (y1 - y0) * i / 4; g.beginPath(); g.moveTo(L, Y(y)); g.lineTo(w - R, Y(y)); g.stroke(); g.fillText(fmt(y), w - R + 4, Y(y) + 4); }
  if (timeAxis) for (let i = 0; i <= 3; i++) { const x = x0 + (x1 - x0) * i / 3; g.fillText(time(x), Math.min(X(x), w - R - 50), H - 4); }
  for (const s of series) {
    const pts = s.pts.filter((p) => isFinite(p[1])); if (!pts.length) continue;
    g.beginPath(); g.strokeStyle = s.color; g.lineWidth = 1.6; g.setLineDash(s.dash || []);
    pts.forEach((p, i) => { if (i === 0) g.moveTo(X(p[0]), Y(p[1])); else { if (s.step) g.lineTo(X(p[0]), Y(pts[i - 1][1])); g.lineTo(X(p[0]), Y(p[1])); } });
    if (pts.length === 1) g.lineTo(w - R, Y(pts[0][1]));
    g.stroke(); g.setLineDash([]);
    if (s.fill) { g.lineTo(X(pts[pts.length - 1][0]), H - B); g.lineTo(X(pts[0][0]), H - B); g.closePath(); g.fillStyle = s.color + "22"; g.fill(); }
  }
  for (const l of levels) {
    if (!isFinite(l.y) || l.y < y0 || l.y > y1) continue;
    g.strokeStyle = l.color; g.setLineDash([6, 4]); g.beginPath(); g.moveTo(L, Y(l.y)); g.lineTo(w - R, Y(l.y)); g.stroke(); g.setLineDash([]);
    g.fillStyle = l.color; g.fillText(l.label, L + 4, Y(l.y) - 4);
  }
}

// ------------------------------------------------------------------------------------ calculator
const PRESETS = {
  "Bybit 50× (SPEC)": { family: "bybit", mode: "isolated", side: "long", size: "1", entry: "20000", mark: "20000", wallet: "400", leverage: "50", tiers: "", mmr: "0.005", fee: "0" },
  "MEXC 25× (seed 004)": { family: "mexc", mode: "isolated", side: "long", size: "0.1", entry: "50000", mark: "50000", wallet: "200", leverage: "25", tiers: "", mmr: "0.004", fee: "0" },
  "Binance BTCUSDT tiers": { family: "binance", mode: "isolated", side: "long", size: "1", entry: "100000", mark: "100000", wallet: "1000", leverage: "", tiers: "BTCUSDT", mmr: "", fee: "0" },
  "OKX short 10×": { family: "okx", mode: "isolated", side: "short", size: "2", entry: "3000", mark: "3000", wallet: "600", leverage: "10", tiers: "", mmr: "0.01", fee: "0.0005" },
};
function fillPreset(p) {
  $("c-family").value = p.family; $("c-mode").value = p.mode; $("c-side").value = p.side; $("c-size").value = p.size; $("c-entry").value = p.entry;
  $("c-mark").value = p.mark; $("c-wallet").value = p.wallet; $("c-leverage").value = p.leverage; $("c-tiers").value = p.tiers; $("c-mmr").value = p.mmr; $("c-fee").value = p.fee;
}
async function calc() {
  const pos = { symbol: $("c-tiers").value || "BTCUSDT", side: $("c-side").value, size: $("c-size").value.trim(), entry_price: $("c-entry").value.trim(), mark_price: $("c-mark").value.trim() };
  if ($("c-leverage").value.trim()) pos.leverage = $("c-leverage").value.trim();
  if ($("c-tiers").value) pos.tiers_symbol = $("c-tiers").value; else pos.mmr = $("c-mmr").value.trim();
  const req = { family: $("c-family").value, margin_mode: $("c-mode").value, wallet_balance: $("c-wallet").value.trim(), taker_fee: $("c-fee").value.trim() || "0", positions: [pos] };
  const out = $("c-result");
  try {
    const r = await api("POST", "/v1/calc/liquidation", req, false);
    out.innerHTML = `liquidation <b>${fmt(r.liquidation_price, 2)}</b> · bankruptcy ${fmt(r.bankruptcy_price, 2)} · distance ${fmt(r.distance_pct, 2)} % · tier ${r.tier} (mmr ${r.mmr})` +
      (r.notes && r.notes.length ? `<div class="dim">${r.notes.map(esc).join("<br>")}</div>` : "");
  } catch (e) { out.innerHTML = `<span style="color:var(--down)">${esc(e.message)}</span>`; }
}
async function reverseSize() {
  const out = $("r-result");
  try {
    const r = await api("POST", "/v1/calc/reverse-size", { family: $("r-family").value, symbol: $("r-symbol").value, side: $("r-side").value,
      entry: $("r-entry").value.trim(), worst: $("r-worst").value.trim(), margin: $("r-margin").value.trim() }, false);
    const lp = r.liquidation ? r.liquidation.liquidation_price : null;
    out.innerHTML = `largest size <b>${r.size}</b> (${fmt(r.leverage, 2)}×, notional ${fmt(r.notional, 2)}) · liquidation ${fmt(lp, 2)} · limited by ${esc(r.limited_by)}` +
      (r.notes && r.notes.length ? `<div class="dim">${r.notes.map(esc).join("<br>")}</div>` : "");
  } catch (e) { out.innerHTML = `<span style="color:var(--down)">${esc(e.message)}</span>`; }
}

// ------------------------------------------------------------------------------------ wiring
window.addEventListener("load", async () => {
  $("login").onclick = () => login($("api-key").value);
  $("api-key").addEventListener("keydown", (e) => { if (e.key === "Enter") login($("api-key").value); });
  $("logout").onclick = () => logout();
  $("side-buy").onclick = () => setSide("buy"); $("side-sell").onclick = () => setSide("sell");
  $("order-type").onchange = () => { $("order-price").disabled = $("order-type").value === "market"; };
  $("order-submit").onclick = placeOrder;
  $("alert-add").onclick = addAlert;
  $("c-go").onclick = calc; $("r-go").onclick = reverseSize;
  for (const [name, p] of Object.entries(PRESETS)) { const b = document.createElement("button"); b.className = "act"; b.textContent = name; b.onclick = () => { fillPreset(p); calc(); }; $("presets").appendChild(b); }
  window.addEventListener("resize", () => { scheduleChart(); renderFund(); });
  try { await loadMarkets(); } catch (e) { console.error(e); }
  renderAll(); connect();
  if (S.key) login(S.key);
  setInterval(async () => { try { renderFeed(await api("GET", "/v1/feed", undefined, false)); } catch (e) {} }, 3000);
  setInterval(refreshPrivate, 5000);
});
</script>
</body>
</html>
"""
