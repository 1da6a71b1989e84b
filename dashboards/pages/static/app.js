// icewatch's built-in dashboard pages: renders the index, or one dashboard of dashboards/catalog.py
// from its model (GET api/dashboards/{uid}) and its panels' data (GET .../panels/{key}).
// Plain JS, no build step; charts by uPlot (static/uplot, installed by deploy/local/npm_assets.sh).
// Everything the page shows follows from its URL: ?from=now-6h&to=now&var-NAME=v&refresh=1m.
"use strict";

(() => {
  const ROOT = document.body.dataset.root || "./";
  const UID = document.body.dataset.uid || "";
  const KEY_STORE = "icewatch.apiKey";
  const ALL = "$__all";
  const PRESETS = [["now-15m", "Last 15 minutes"], ["now-1h", "Last 1 hour"], ["now-6h", "Last 6 hours"],
    ["now-24h", "Last 24 hours"], ["now-7d", "Last 7 days"]];
  const REFRESH = ["", "10s", "30s", "1m", "5m", "15m", "1h"];
  const COLORS = { green: "#1a7f37", yellow: "#9a6700", orange: "#bc4c00", red: "#cf222e", blue: "#0969da" };
  const PALETTE = ["#0969da", "#1a7f37", "#bc4c00", "#8250df", "#cf222e", "#1b7c83", "#9a6700", "#bf3989",
    "#57606a", "#0550ae", "#116329", "#953800"];

  // What the tests read: request counters and per-panel states (data-state, data-rows, data-seq).
  const stats = { requests: 0, panelRequests: 0, variableRequests: 0, loads: 0 };
  window.icewatch = stats;

  const app = document.getElementById("app");
  const crumb = document.getElementById("crumb");

  // ------------------------------------------------------------------------------ small helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function apiKey() { return sessionStorage.getItem(KEY_STORE) || ""; }

  class HttpError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, params) {
    stats.requests += 1;
    const qs = params ? "?" + params.toString() : "";
    const headers = { Accept: "application/json" };
    const key = apiKey();
    if (key) headers.Authorization = "Bearer " + key;
    let resp;
    try {
      resp = await fetch(ROOT + path + qs, { headers, cache: "no-store" });
    } catch (e) {
      throw new HttpError(0, "icewatch did not answer (" + e.message + ")");
    }
    let doc = null;
    try { doc = await resp.json(); } catch (e) { doc = null; }
    if (!resp.ok) {
      const msg = doc && doc.error ? doc.error + (doc.path ? " (" + doc.path + ")" : "") : resp.statusText;
      throw new HttpError(resp.status, msg || "HTTP " + resp.status);
    }
    return doc;
  }

  // ------------------------------------------------------------------------------------ units

  function trim(n, digits) {
    return Number(n.toFixed(digits)).toLocaleString("en-US", { maximumFractionDigits: digits });
  }

  function fmt(v, unit) {
    if (v === null || v === undefined || v === "") return "–";
    if (typeof v !== "number") return String(v);
    if (!Number.isFinite(v)) return "–";
    const a = Math.abs(v);
    switch (unit) {
      case "percentunit": return trim(v * 100, a >= 0.1 ? 1 : 2) + "%";
      case "percent": return trim(v, 1) + "%";
      case "ms":
        if (a >= 60000) return fmt(v / 1000, "s");
        if (a >= 1000) return trim(v / 1000, 2) + " s";
        return trim(v, a >= 100 ? 0 : 1) + " ms";
      case "s":
        if (a === 0) return "0 s";
        if (a < 1) return trim(v * 1000, a < 0.01 ? 2 : 0) + " ms";
        if (a < 60) return trim(v, 2) + " s";
        if (a < 3600) return trim(v / 60, 1) + " min";
        if (a < 86400) return trim(v / 3600, 1) + " h";
        return trim(v / 86400, 1) + " d";
      case "bytes": {
        const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
        let i = 0, x = v;
        while (Math.abs(x) >= 1024 && i < units.length - 1) { x /= 1024; i += 1; }
        return trim(x, i === 0 ? 0 : 1) + " " + units[i];
      }
      case "km": return trim(v, a >= 10 ? 0 : 1) + " km";
      case "short": case "": case undefined: case "none": {
        const steps = [[1e12, "T"], [1e9, "B"], [1e6, "M"], [1e3, "K"]];
        for (const [d, s] of steps) if (a >= d) return trim(v / d, 1) + s;
        return trim(v, a >= 100 ? 0 : a >= 1 ? 2 : 3);
      }
      default:
        return fmt(v, "short") + " " + unit;
    }
  }

  // The value type under Nullable(), LowCardinality() and SimpleAggregateFunction(fn, ...).
  function baseType(t) {
    let x = String(t || "");
    for (;;) {
      const m = /^(?:Nullable|LowCardinality)\((.*)\)$/.exec(x) || /^SimpleAggregateFunction\([^,]+,\s*(.*)\)$/.exec(x);
      if (!m) return x;
      x = m[1];
    }
  }
  function isTimeType(t) { return /^(DateTime|DateTime64|Date|Date32)(\(|$)/.test(baseType(t)); }
  function isNumType(t) { return /^(U?Int\d+|Float\d+|Decimal)/.test(baseType(t)) || baseType(t) === "Bool"; }
  function isStrType(t) { return !isTimeType(t) && !isNumType(t); }

  function parseTime(v) {
    if (v === null || v === undefined) return null;
    const s = String(v);
    const t = Date.parse(/Z$|[+-]\d\d:\d\d$/.test(s) || s.length <= 10 ? s : s.replace(" ", "T") + "Z");
    return Number.isNaN(t) ? null : t;
  }

  function timeText(v) {
    const t = parseTime(v);
    if (t === null) return String(v);
    const d = new Date(t);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }

  function thresholdColor(v, thresholds) {
    let color = null;
    for (const [at, c] of thresholds || []) {
      if (at === null || (typeof v === "number" && v >= at)) color = c;
    }
    return color ? (COLORS[color] || color) : null;
  }

  // ------------------------------------------------------------------------------------ index

  async function renderIndex() {
    document.title = "Dashboards · icewatch";
    const doc = await api("api/dashboards");
    app.replaceChildren(
      el("h1", { class: "page-title" }, "Dashboards"),
      el("ul", { class: "index" }, doc.dashboards.map((d) =>
        el("li", {}, el("a", { href: ROOT + "d/" + encodeURIComponent(d.uid) }, d.title),
          el("p", {}, d.description))))
    );
    stats.loads += 1;
  }

  // -------------------------------------------------------------------------------- dashboard

  const state = {
    model: null, auth: false, from: "", to: "", refresh: "", vars: {}, options: {}, timer: null,
    panels: new Map(), // key -> {panel, node, body, seq, chart}
  };

  function readUrl() {
    const q = new URLSearchParams(location.search);
    const m = state.model;
    state.from = q.get("from") || m.time_from || "now-6h";
    state.to = q.get("to") || "now";
    state.refresh = q.has("refresh") ? (q.get("refresh") === "off" ? "" : q.get("refresh")) : (m.refresh || "");
    state.vars = {};
    for (const v of m.variables) {
      const given = q.getAll("var-" + v.name).filter((x) => x !== "" || v.kind === "textbox");
      if (given.length) state.vars[v.name] = given;
      else if (v.kind === "textbox") state.vars[v.name] = [v.default || ""];
      else if (v.default) state.vars[v.name] = [v.default];
      else state.vars[v.name] = v.include_all ? [ALL] : [];
    }
  }

  function urlParams(forApi) {
    const p = new URLSearchParams();
    p.set("from", state.from);
    p.set("to", state.to);
    for (const v of state.model.variables) {
      const vals = state.vars[v.name] || [];
      if (forApi) {
        for (const x of vals) p.append("var-" + v.name, x);
      } else if (!(vals.length === 1 && vals[0] === ALL) && vals.length) {
        for (const x of vals) p.append("var-" + v.name, x);
      }
    }
    if (!forApi && state.refresh !== (state.model.refresh || "")) p.set("refresh", state.refresh || "off");
    return p;
  }

  function writeUrl(push) {
    const url = location.pathname + "?" + urlParams(false).toString();
    if (push) history.pushState(null, "", url); else history.replaceState(null, "", url);
  }

  function linkParams(keepTime, keepVars) {
    const p = new URLSearchParams();
    if (keepTime) { p.set("from", state.from); p.set("to", state.to); }
    if (keepVars) {
      for (const [name, vals] of Object.entries(state.vars)) {
        if (vals.length === 1 && vals[0] === ALL) continue;
        for (const x of vals) if (x !== "") p.append("var-" + name, x);
      }
    }
    return p;
  }

  function dashUrl(uid, params) {
    const qs = params.toString();
    return ROOT + "d/" + encodeURIComponent(uid) + (qs ? "?" + qs : "");
  }

  function showKeyPrompt(message) {
    stopTimer();
    const input = el("input", { type: "password", id: "api-key", name: "api-key", autocomplete: "off",
      required: true, "aria-describedby": "key-help" });
    const form = el("form", { class: "key-prompt", id: "key-prompt", "aria-labelledby": "key-title" },
      el("h2", { id: "key-title" }, "API key needed"),
      el("p", { id: "key-help" }, message ||
        "This icewatch reads dashboard data with an API key (the app's key of ICEWATCH_API_KEYS). " +
        "It is kept in this browser tab only (sessionStorage)."),
      el("label", { for: "api-key" }, "API key"), input,
      el("button", { type: "submit", class: "primary" }, "Show the dashboard"));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(KEY_STORE, input.value.trim());
      (VIEW === "alerts" ? renderAlerts() : renderDashboard()).catch(fatal);
      alertBanner();
    });
    app.replaceChildren(form);
    input.focus();
  }

  async function renderDashboard() {
    const doc = await api("api/dashboards/" + encodeURIComponent(UID));
    state.model = doc.dashboard;
    state.auth = doc.auth;
    const m = state.model;
    document.title = m.title + " · icewatch";
    crumb.replaceChildren(el("a", { href: ROOT }, "Dashboards"), " / ", m.title);
    readUrl();
    if (state.auth && !apiKey()) { showKeyPrompt(); return; }

    const head = el("div", { class: "dash-head" },
      el("div", {}, el("h1", { class: "page-title" }, m.title), el("p", { class: "desc" }, m.description)),
      linksBar());
    const toolbar = el("div", { class: "toolbar", role: "toolbar", "aria-label": "Dashboard controls" });
    const varBar = el("div", { class: "variables", id: "variables" });
    toolbar.append(varBar, timeControls());
    const grid = el("div", { class: "rows" });
    state.panels = new Map();
    for (const row of m.rows) {
      const rowGrid = el("div", { class: "grid" });
      for (const p of row.panels) rowGrid.append(panelShell(p));
      grid.append(el("section", { class: "row", "aria-label": row.title },
        el("h2", { class: "row-title" }, row.title), rowGrid));
    }
    app.replaceChildren(head, toolbar, grid);
    await loadVariables();
    if (state.auth) writeUrl(false); // the tenant in the URL is the key's
    renderVariables();
    await loadPanels();
    startTimer();
    stats.loads += 1;
  }

  function linksBar() {
    const m = state.model;
    if (!m.links.length) return el("nav", { class: "links", "aria-label": "Related dashboards" });
    return el("nav", { class: "links", "aria-label": "Related dashboards" },
      m.links.map((l) => el("a", {
        class: "dash-link", href: dashUrl(l.dashboard, linkParams(l.keep_time, l.keep_vars)),
        "data-uid": l.dashboard,
      }, l.title)));
  }

  function refreshLinks() {
    const nav = app.querySelector("nav.links");
    if (nav) nav.replaceWith(linksBar());
  }

  // -------------------------------------------------------------------------------- variables

  async function loadVariables() {
    const m = state.model;
    state.varErrors = {};
    const query = m.variables.filter((v) => v.kind === "query");
    // the tenant first (the others' queries read it), then the others at once
    for (const v of query.filter((q) => q.name === "tenant")) await loadVariable(m, v);
    await Promise.all(query.filter((q) => q.name !== "tenant").map((v) => loadVariable(m, v)));
  }

  async function loadVariable(m, v) {
    stats.variableRequests += 1;
    const params = urlParams(true);
    // with API keys the tenant is the key's app, whatever a shared link says
    const keyed = state.auth && v.name === "tenant";
    if (keyed) params.delete("var-tenant");
    try {
      const doc = await api(`api/dashboards/${encodeURIComponent(m.uid)}/variables/${encodeURIComponent(v.name)}`,
        params);
      state.options[v.name] = doc.values;
      if (keyed || !state.vars[v.name] || !state.vars[v.name].length) state.vars[v.name] = doc.selected;
    } catch (e) {
      if (e.status === 401) { sessionStorage.removeItem(KEY_STORE); showKeyPrompt("The API key was refused."); throw e; }
      state.options[v.name] = [];
      state.varErrors[v.name] = e.message;
    }
  }

  function renderVariables() {
    const bar = document.getElementById("variables");
    if (!bar) return;
    // a multi-select stays open while values are picked, with the focus where it was
    const open = [...bar.querySelectorAll("details[open]")].map((d) => d.id);
    const focused = document.activeElement && bar.contains(document.activeElement) ? document.activeElement.id : "";
    bar.replaceChildren(...state.model.variables.map(variableControl));
    for (const id of open) { const d = document.getElementById(id); if (d) d.open = true; }
    if (focused) { const f = document.getElementById(focused); if (f) f.focus(); }
  }

  // a click elsewhere or Escape closes an open multi-select
  document.addEventListener("click", (ev) => {
    for (const d of document.querySelectorAll("details.multi[open]")) if (!d.contains(ev.target)) d.open = false;
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape") return;
    for (const d of document.querySelectorAll("details.multi[open]")) {
      d.open = false;
      const summary = d.querySelector("summary");
      if (summary) summary.focus();
    }
  });

  function changed(push) {
    writeUrl(push);
    refreshLinks();
    reloadAll().catch(fatal);
  }

  async function reloadAll() {
    await loadVariables();
    renderVariables();
    await loadPanels();
  }

  function variableControl(v) {
    const id = "var-" + v.name;
    const sel = state.vars[v.name] || [];
    if (v.kind === "textbox") {
      const input = el("input", { type: "text", id, value: sel[0] || "", spellcheck: "false", size: 28,
        placeholder: v.label, maxlength: 256 });
      input.addEventListener("change", () => { state.vars[v.name] = [input.value.trim()]; changed(true); });
      return el("div", { class: "var" }, el("label", { for: id }, v.label), input);
    }
    const options = state.options[v.name] || [];
    if (!v.multi) {
      const select = el("select", { id },
        (options.includes(sel[0]) || !sel[0] ? options : [sel[0], ...options])
          .map((o) => el("option", { value: o, selected: o === sel[0] }, o)));
      if (v.include_all) select.prepend(el("option", { value: ALL, selected: sel[0] === ALL }, "All"));
      select.addEventListener("change", () => { state.vars[v.name] = [select.value]; changed(true); });
      return el("div", { class: "var" }, el("label", { for: id }, v.label), select);
    }
    // multi-select with All: a disclosure with checkboxes
    const isAll = sel.length === 1 && sel[0] === ALL;
    const summaryText = isAll ? "All" : sel.length ? sel.join(", ") : "None";
    const details = el("details", { class: "multi", id });
    const list = el("fieldset", { class: "multi-list" }, el("legend", { class: "sr-only" }, v.label));
    const boxes = [];
    const allBox = el("input", { type: "checkbox", value: ALL, checked: isAll, id: id + "-all" });
    if (v.include_all) list.append(el("label", { class: "opt all" }, allBox, "All"));
    const shown = [...options, ...sel.filter((s) => s !== ALL && !options.includes(s))];
    shown.forEach((o, i) => {
      const box = el("input", { type: "checkbox", value: o, checked: !isAll && sel.includes(o), id: `${id}-${i}` });
      boxes.push(box);
      list.append(el("label", { class: "opt" }, box, o));
    });
    if (!shown.length) list.append(el("p", { class: "muted" }, state.varErrors && state.varErrors[v.name] || "no values in this range"));
    const apply = () => {
      const picked = boxes.filter((b) => b.checked).map((b) => b.value);
      state.vars[v.name] = picked.length ? picked : (v.include_all ? [ALL] : []);
      changed(true);
    };
    allBox.addEventListener("change", () => { if (allBox.checked) boxes.forEach((b) => { b.checked = false; }); apply(); });
    boxes.forEach((b) => b.addEventListener("change", () => { if (b.checked) allBox.checked = false; apply(); }));
    details.append(el("summary", { "aria-label": v.label + ": " + summaryText }, el("span", { class: "val" }, summaryText)), list);
    return el("div", { class: "var" }, el("span", { class: "label", id: id + "-label" }, v.label), details);
  }

  // ------------------------------------------------------------------------------------- time

  function timeControls() {
    const wrap = el("div", { class: "time" });
    const preset = el("select", { id: "time-preset", "aria-label": "Time range" },
      PRESETS.map(([v, t]) => el("option", { value: v, selected: state.to === "now" && state.from === v }, t)),
      el("option", { value: "custom", selected: !(state.to === "now" && PRESETS.some(([v]) => v === state.from)) },
        "Custom range"));
    const from = el("input", { type: "text", id: "time-from", value: state.from, size: 16, spellcheck: "false",
      "aria-label": "From (now-6h, ISO time or epoch ms)" });
    const to = el("input", { type: "text", id: "time-to", value: state.to, size: 16, spellcheck: "false",
      "aria-label": "To" });
    const applyBtn = el("button", { type: "submit" }, "Apply");
    const form = el("form", { class: "custom-time" }, from, el("span", { "aria-hidden": "true" }, "→"), to, applyBtn);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      state.from = from.value.trim() || "now-6h";
      state.to = to.value.trim() || "now";
      syncTime();
      changed(true);
    });
    preset.addEventListener("change", () => {
      if (preset.value === "custom") { from.focus(); return; }
      state.from = preset.value; state.to = "now";
      syncTime();
      changed(true);
    });
    function syncTime() {
      from.value = state.from; to.value = state.to;
      const known = state.to === "now" && PRESETS.some(([v]) => v === state.from);
      preset.value = known ? state.from : "custom";
    }
    const refresh = el("select", { id: "refresh", "aria-label": "Auto refresh" },
      [...new Set([...REFRESH, state.model.refresh || "", state.refresh])].map((r) =>
        el("option", { value: r, selected: r === state.refresh }, r ? "every " + r : "Auto refresh off")));
    refresh.addEventListener("change", () => { state.refresh = refresh.value; writeUrl(false); startTimer(); });
    const now = el("button", { type: "button", id: "refresh-now", title: "Reload every panel" }, "Refresh");
    now.addEventListener("click", () => { loadPanels().catch(fatal); });
    const controls = [preset, form, refresh, now];
    if (state.auth) {
      const forget = el("button", { type: "button", class: "subtle", title: "Forget the API key of this tab" }, "Forget key");
      forget.addEventListener("click", () => { sessionStorage.removeItem(KEY_STORE); showKeyPrompt(); });
      controls.push(forget);
    }
    wrap.append(...controls);
    return wrap;
  }

  function seconds(text) {
    const m = /^(\d+)([smhd])$/.exec(text || "");
    return m ? Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2]] : 0;
  }

  function stopTimer() { if (state.timer) { clearInterval(state.timer); state.timer = null; } }

  function startTimer() {
    stopTimer();
    const s = seconds(state.refresh);
    if (!s) return;
    state.timer = setInterval(() => { if (!document.hidden) loadPanels().catch(fatal); }, Math.max(s, 5) * 1000);
  }

  // ----------------------------------------------------------------------------------- panels

  function panelShell(p) {
    const titleId = "panel-title-" + p.key;
    const body = el("div", { class: "panel-body" }, el("p", { class: "muted" }, "Loading…"));
    const node = el("section", {
      class: "panel kind-" + p.kind, id: "panel-" + p.key, "data-key": p.key, "data-kind": p.kind,
      "data-state": "loading", "data-rows": "0", "data-seq": "0", "aria-labelledby": titleId, "aria-busy": "true",
      style: `--w:${Math.max(1, Math.min(24, p.width))};--h:${Math.max(2, p.height)}`,
    }, el("header", { class: "panel-head" },
      el("h3", { id: titleId, title: p.description || null }, p.title),
      p.description ? el("span", { class: "info", title: p.description, "aria-label": p.description, role: "img" }, "i") : null),
    body);
    state.panels.set(p.key, { panel: p, node, body, seq: 0, chart: null, lastDoc: null });
    return node;
  }

  async function loadPanels() {
    const entries = [...state.panels.values()];
    await Promise.all(entries.map(loadPanel));
  }

  async function loadPanel(entry) {
    const seq = ++entry.seq;
    entry.node.setAttribute("aria-busy", "true");
    stats.panelRequests += 1;
    let doc;
    try {
      doc = await api(`api/dashboards/${encodeURIComponent(state.model.uid)}/panels/${encodeURIComponent(entry.panel.key)}`,
        urlParams(true));
    } catch (e) {
      if (seq !== entry.seq) return;
      if (e.status === 401) { sessionStorage.removeItem(KEY_STORE); showKeyPrompt("The API key was refused."); return; }
      showPanelError(entry, e.message, seq);
      return;
    }
    if (seq !== entry.seq) return; // a newer request for this panel is under way
    entry.lastDoc = doc;
    try {
      renderPanel(entry, doc);
    } catch (e) {
      showPanelError(entry, "cannot draw this panel: " + e.message, seq);
      return;
    }
    entry.node.dataset.seq = String(seq);
  }

  function showPanelError(entry, message, seq) {
    destroyChart(entry);
    entry.node.dataset.state = "error";
    entry.node.dataset.rows = "0";
    entry.node.dataset.seq = String(seq);
    entry.node.setAttribute("aria-busy", "false");
    entry.body.replaceChildren(el("div", { class: "panel-error", role: "alert" }, el("strong", {}, "Error: "), message));
  }

  function destroyChart(entry) {
    if (entry.chart) { entry.chart.destroy(); entry.chart = null; }
    if (entry.observer) { entry.observer.disconnect(); entry.observer = null; }
  }

  function renderPanel(entry, doc) {
    const p = entry.panel;
    destroyChart(entry);
    entry.node.dataset.rows = String(doc.rows.length);
    entry.node.setAttribute("aria-busy", "false");
    if (!doc.rows.length) {
      entry.node.dataset.state = "empty";
      entry.body.replaceChildren(el("p", { class: "no-data" }, p.source === "metric"
        ? `No samples of ${p.metric} in this process (it does not run that part of icewatch, or it has not counted yet)`
        : "No data in this range"));
      return;
    }
    if (p.kind === "timeseries" && p.source !== "metric") drawTimeseries(entry, doc);
    else if (p.kind === "stat") drawStat(entry, doc);
    else if (p.kind === "bargauge") drawBars(entry, doc);
    else drawTable(entry, doc);
    if (doc.truncated) entry.body.append(el("p", { class: "muted small" }, "Only the first rows are shown."));
    entry.node.dataset.state = "ok";
  }

  // A column's unit: its name's suffix (_ms, _s, _bytes, _km) says it; else the panel's unit when
  // the result has one numeric column (or the column is fractional); counts stay plain numbers.
  function unitFor(p, row, colName, doc) {
    if (p.source === "metric" && row && /^(count|total)$/.test(String(row[0]))) return "short";
    const m = /_(ms|s|seconds|bytes|km)$/.exec(colName || "");
    if (m) return { ms: "ms", s: "s", seconds: "s", bytes: "bytes", km: "km" }[m[1]];
    if (!doc || p.unit === "short") return p.unit;
    const nums = doc.columns.filter((c) => isNumType(c.type));
    if (nums.length <= 1) return p.unit;
    const col = doc.columns.find((c) => c.name === colName);
    return col && /^(Float|Decimal)/.test(baseType(col.type)) ? p.unit : "short";
  }

  function drawStat(entry, doc) {
    const p = entry.panel;
    const row = doc.rows[0];
    const nums = doc.columns.map((c, i) => [c, i]).filter(([c]) => isNumType(c.type));
    if (!nums.length) throw new Error("a stat needs a numeric column");
    entry.body.replaceChildren(el("div", { class: "stats" }, nums.map(([c, i]) => {
      const v = row[i];
      const color = thresholdColor(v, p.thresholds);
      return el("div", { class: "stat" },
        el("div", { class: "stat-value", style: color ? `color:${color}` : null, "data-value": v === null ? "" : v },
          fmt(v, unitFor(p, row, c.name))),
        nums.length > 1 ? el("div", { class: "stat-label" }, c.name) : null);
    })));
  }

  function drawBars(entry, doc) {
    const p = entry.panel;
    const nameIdx = doc.columns.findIndex((c) => isStrType(c.type));
    const valIdx = doc.columns.findIndex((c) => isNumType(c.type));
    if (valIdx < 0) throw new Error("a bar gauge needs a numeric column");
    const values = doc.rows.map((r) => (typeof r[valIdx] === "number" ? r[valIdx] : 0));
    const max = p.unit === "percentunit" ? Math.max(1, ...values) : Math.max(...values, 0) || 1;
    const list = el("ul", { class: "bars" });
    doc.rows.forEach((r, i) => {
      const v = values[i];
      const color = thresholdColor(v, p.thresholds) || PALETTE[0];
      const name = nameIdx >= 0 ? (r[nameIdx] === "" ? "(none)" : String(r[nameIdx])) : doc.columns[valIdx].name;
      const pct = Math.max(0, Math.min(100, (v / max) * 100));
      list.append(el("li", { class: "bar" },
        el("span", { class: "bar-name", title: name }, name),
        el("span", { class: "bar-track", role: "meter", "aria-valuemin": 0, "aria-valuemax": max, "aria-valuenow": v,
          "aria-label": name },
          el("span", { class: "bar-fill", style: `width:${pct.toFixed(2)}%;background:${color}` })),
        el("span", { class: "bar-value" }, fmt(r[valIdx], p.unit))));
    });
    entry.body.replaceChildren(list);
  }

  function cellLink(p, colName, value) {
    const link = (p.links || []).find((l) => l.column === colName);
    if (!link || value === null || value === "") return null;
    const params = new URLSearchParams();
    params.set("from", state.from); params.set("to", state.to);
    if (state.vars.tenant) params.set("var-tenant", state.vars.tenant[0]);
    params.set("var-" + link.var, String(value));
    return el("a", { href: dashUrl(link.dashboard, params), title: link.title }, String(value));
  }

  function drawTable(entry, doc) {
    const p = entry.panel;
    const cols = doc.columns;
    const numCount = cols.filter((c) => isNumType(c.type)).length;
    const table = el("table", { class: "data" },
      el("caption", { class: "sr-only" }, p.title),
      el("thead", {}, el("tr", {}, cols.map((c) =>
        el("th", { scope: "col", class: isNumType(c.type) ? "num" : null, title: c.type }, c.name)))),
      el("tbody", {}, doc.rows.map((r) => el("tr", {}, cols.map((c, i) => {
        const v = r[i];
        const num = isNumType(c.type);
        let content;
        const link = cellLink(p, c.name, v);
        if (link) content = link;
        else if (v === null) content = el("span", { class: "muted" }, "–");
        else if (isTimeType(c.type)) content = timeText(v);
        else if (num) content = fmt(v, unitFor(p, r, c.name, doc));
        else if (typeof v === "object") content = JSON.stringify(v);
        else content = String(v);
        // thresholds colour the values in the panel's unit, not the counts beside them
        const measured = num && p.thresholds && p.thresholds.length && unitFor(p, r, c.name, doc) === p.unit
          && (p.unit !== "short" || numCount === 1);
        const color = measured ? thresholdColor(v, p.thresholds) : null;
        const long = typeof content === "string" && content.length > 32 ? content : null;
        return el("td", { class: num ? "num" : null, style: color ? `color:${color}` : null, title: long }, content);
      })))));
    entry.body.replaceChildren(el("div", { class: "table-wrap", tabindex: "0", "aria-label": p.title + " (table)" }, table));
  }

  function drawTimeseries(entry, doc) {
    const p = entry.panel;
    if (typeof window.uPlot !== "function") {
      throw new Error("the chart library is not installed (run deploy/local/npm_assets.sh --force dashboards/pages)");
    }
    const cols = doc.columns;
    let timeIdx = cols.findIndex((c) => isTimeType(c.type));
    if (timeIdx < 0) timeIdx = cols.findIndex((c) => c.name === "time");
    if (timeIdx < 0) throw new Error("a time series needs a time column");
    const seriesIdx = cols.findIndex((c, i) => i !== timeIdx && isStrType(c.type));
    const numIdx = cols.map((c, i) => i).filter((i) => i !== timeIdx && i !== seriesIdx && isNumType(cols[i].type));
    if (!numIdx.length) throw new Error("a time series needs a numeric column");
    // long form (time, series, values...) -> wide: one x array, one y array per (series, column)
    const xs = [...new Set(doc.rows.map((r) => parseTime(r[timeIdx])).filter((t) => t !== null))].sort((a, b) => a - b);
    const xPos = new Map(xs.map((t, i) => [t, i]));
    const names = [];
    const ys = new Map();
    for (const r of doc.rows) {
      const t = parseTime(r[timeIdx]);
      if (t === null) continue;
      for (const i of numIdx) {
        const base = seriesIdx >= 0 ? (r[seriesIdx] === "" ? "(none)" : String(r[seriesIdx])) : "";
        const name = seriesIdx >= 0 ? (numIdx.length > 1 ? `${base} ${cols[i].name}` : base) : cols[i].name;
        if (!ys.has(name)) { ys.set(name, new Array(xs.length).fill(null)); names.push(name); }
        ys.get(name)[xPos.get(t)] = typeof r[i] === "number" ? r[i] : null;
      }
    }
    const raw = names.map((n) => ys.get(n));
    let plotted = raw;
    const bands = [];
    if (p.stacked) { // cumulative sums; each band between a series and the one below shows its share
      const acc = new Array(xs.length).fill(0);
      plotted = raw.map((arr) => arr.map((v, j) => (acc[j] += v || 0)));
      for (let i = 2; i <= plotted.length; i++) bands.push({ series: [i, i - 1] });
    }
    const order = names.map((_, i) => i);
    const width = Math.max(200, entry.body.clientWidth || 400);
    const height = Math.max(120, entry.body.clientHeight || 200);
    // a series keeps its colour across refreshes and selections (first come, first served)
    entry.colors = entry.colors || new Map();
    for (const n of names) if (!entry.colors.has(n)) entry.colors.set(n, PALETTE[entry.colors.size % PALETTE.length]);
    const series = [{ label: "Time" }, ...order.map((i) => {
      const color = entry.colors.get(names[i]);
      return {
        label: names[i], stroke: color, width: 1.5, spanGaps: false,
        fill: p.stacked ? color + "99" : undefined,
        points: { show: xs.length < 60 },
        value: (u, v, sIdx, idx) => fmt(idx === null || idx === undefined ? v : raw[i][idx], p.unit),
      };
    })];
    const fromMs = parseTime(doc.range && doc.range.from);
    const toMs = parseTime(doc.range && doc.range.to);
    // the requested range, as every chart of the page; a panel whose data covers under a tenth of
    // it (one call's samples) is drawn over its data instead, or it would be a line at the edge
    let xRange = fromMs !== null && toMs !== null ? [fromMs / 1000, toMs / 1000] : null;
    if (xRange && xs.length > 1 && (xs[xs.length - 1] - xs[0]) / 1000 < (xRange[1] - xRange[0]) / 10) {
      const pad = Math.max(1, (xs[xs.length - 1] - xs[0]) / 1000 * 0.02);
      xRange = [xs[0] / 1000 - pad, xs[xs.length - 1] / 1000 + pad];
    }
    const opts = {
      width, height, series, bands,
      legend: { show: true, live: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: xRange ? { time: true, range: () => xRange } : { time: true }, y: { range: (u, mn, mx) => [Math.min(0, mn), mx > 0 ? mx * 1.05 : 1] } },
      axes: [
        { stroke: "#57606a", grid: { stroke: "#eaeef2" }, ticks: { stroke: "#d0d7de" } },
        { stroke: "#57606a", grid: { stroke: "#eaeef2" }, ticks: { stroke: "#d0d7de" }, size: 64,
          values: (u, splits) => splits.map((v) => fmt(v, p.unit)) },
      ],
    };
    const data = [xs.map((t) => t / 1000), ...plotted];
    entry.body.replaceChildren();
    const holder = el("div", { class: "chart", role: "img", "aria-label": `${p.title}: ${names.join(", ")}` });
    entry.body.append(holder);
    entry.chart = new window.uPlot(opts, data, holder);
    const legendH = () => { const lg = holder.querySelector(".u-legend"); return lg ? lg.offsetHeight : 0; };
    const fit = () => {
      if (!entry.chart) return;
      const w = Math.max(200, entry.body.clientWidth);
      const h = Math.max(100, entry.body.clientHeight - legendH() - 4);
      if (w !== entry.chart.width || h !== entry.chart.height) entry.chart.setSize({ width: w, height: h });
    };
    fit();
    entry.observer = new ResizeObserver(() => requestAnimationFrame(fit));
    entry.observer.observe(entry.body);
  }

  // ------------------------------------------------------------------------------------ alerts

  const VIEW = document.body.dataset.view || "";

  function alertItem(a) {
    const where = Object.entries(a.labels || {}).filter(([k]) => k !== "tenant")
      .map(([k, v]) => k + "=" + v).join(" ");
    return el("li", { class: "alert alert-" + a.phase, "data-rule": a.rule },
      el("span", { class: "alert-phase" }, a.phase),
      el("strong", {}, a.title || a.rule), " ", where ? el("code", {}, where) : null,
      el("span", { class: "alert-summary" }, a.summary || ""),
      a.runbook ? el("a", { href: ROOT + a.runbook.replace(/^\//, "") }, "runbook") : null);
  }

  async function needsKey() {
    if (apiKey()) return false;
    try { return Boolean((await api("api/dashboards")).auth); } catch (e) { return true; }
  }

  async function alertBanner() {
    if (await needsKey()) return; // no key yet: the alerts are the key's app's
    let doc;
    try { doc = await api("api/alerts"); } catch (e) { return; }
    const old = document.getElementById("alert-banner");
    const shown = (doc.alerts || []).filter((a) => a.rule !== "watchdog");
    if (!doc.enabled || !shown.length) { if (old) old.remove(); return; }
    const firing = shown.filter((a) => a.phase === "firing").length;
    const bar = el("aside", { id: "alert-banner", class: firing ? "alert-banner firing" : "alert-banner",
      role: "status", "data-firing": firing, "data-pending": shown.length - firing },
      el("a", { href: ROOT + "alerts" }, firing + " firing, " + (shown.length - firing) + " pending"),
      el("ul", {}, shown.slice(0, 5).map(alertItem)));
    if (old) old.replaceWith(bar); else app.before(bar);
  }

  async function renderAlerts() {
    document.title = "Alerts · icewatch";
    crumb.replaceChildren("alerts");
    if (await needsKey()) { showKeyPrompt(); return; }
    const doc = await api("api/alerts");
    const list = (doc.alerts || []);
    app.replaceChildren(
      el("h1", { class: "page-title" }, "Alerts"),
      !doc.enabled ? el("p", {}, "The alert evaluator does not run in this process.")
        : list.length ? el("ul", { class: "alert-list", id: "alerts" }, list.map(alertItem))
          : el("p", { id: "alerts" }, "Nothing is pending or firing."));
    const target = location.hash.slice(1);
    if (target) {
      const hit = app.querySelector('[data-rule="' + CSS.escape(target) + '"]');
      if (hit) hit.classList.add("targeted");
    }
    stats.loads += 1;
  }

  // ------------------------------------------------------------------------------------ start

  function fatal(e) {
    if (e && e.status === 401) return; // the key prompt is showing
    app.replaceChildren(el("div", { class: "panel-error page-error", role: "alert" },
      el("strong", {}, "This page could not load: "), e && e.message ? e.message : String(e)));
  }

  window.addEventListener("popstate", () => {
    if (!state.model) return;
    readUrl();
    renderDashboard().catch(fatal);
  });

  (VIEW === "alerts" ? renderAlerts() : UID ? renderDashboard() : renderIndex()).catch(fatal);
  alertBanner();
  setInterval(alertBanner, 30000);
})();
