// Staff console: search with filters, open records, export, the query log and the leads.
// The staff key is kept in sessionStorage (gone when the tab closes) and sent as a Bearer token.
(() => {
  "use strict";

  const KEY = "cpc.staff.key";
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  let key = sessionStorage.getItem(KEY);
  let facets = null;
  let search = null;  // {body, pages}: the search on screen (what pager and exports use), its pages by offset

  class SignedOut extends Error {}

  const el = window.cpcEl;  // from dom.js, shared with the other page

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function showError(id, text) {
    $(id).textContent = text || "";
    $(id).hidden = !text;
  }

  const when = (unix) => new Date(unix * 1000).toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" });
  const label = (group, value) => {
    const item = facets && facets[group].find((f) => f.value === value);
    return (item && (item.labels.en || item.labels.pt)) || value;
  };

  // -- talking to the API ---------------------------------------------------------------------
  async function api(path, options = {}) {
    const headers = { Accept: "application/json", ...(options.headers || {}), Authorization: `Bearer ${key}` };
    const res = await fetch(path, { ...options, headers });
    if (res.status === 401 || res.status === 403) {
      const body = await res.json().catch(() => null);
      signOut(keyProblem(res.status, body));
      throw new SignedOut();
    }
    return res;
  }

  async function json(path, options) {
    const res = await api(path, options);
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new Error((body && body.error) || `HTTP ${res.status}`);
    return body;
  }

  function keyProblem(status, body) {
    const error = (body && body.error) || "";
    if (status === 403 && error.includes("disabled")) return "Staff access is turned off on this server: set CPC_ADMIN_TOKEN and restart it.";
    if (status === 403) return "That staff key is not right. Check it and try again.";
    return "Enter the staff key to sign in.";
  }

  async function download(path, options) {
    const res = await api(path, options);
    if (!res.ok) {
      const body = await res.json().catch(() => null);
      throw new Error((body && body.error) || `HTTP ${res.status}`);
    }
    const name = (/filename="([^"]+)"/.exec(res.headers.get("Content-Disposition") || "") || [])[1] || "export";
    const url = URL.createObjectURL(await res.blob());
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // -- signing in and out ---------------------------------------------------------------------
  function showConsole(on) {
    $("signin").hidden = on;
    $("console").hidden = !on;
    $("sign-out").hidden = !on;
  }

  function signOut(message) {
    key = null;
    sessionStorage.removeItem(KEY);
    showConsole(false);
    showError("signin-error", message);
    $("staff-key").value = "";
    $("staff-key").focus();
  }

  async function signIn(candidate) {
    showError("signin-error", "");
    let res;
    try {
      res = await fetch("/api/v1/staff/stats", { headers: { Authorization: `Bearer ${candidate}`, Accept: "application/json" } });
    } catch (_) {
      showError("signin-error", "Could not reach the server. Check the connection and try again.");
      return;
    }
    if (!res.ok) {
      showError("signin-error", keyProblem(res.status, await res.json().catch(() => null)));
      $("staff-key").select();
      return;
    }
    key = candidate;
    sessionStorage.setItem(KEY, key);
    await start();
    $("q").focus();
  }

  async function start() {
    showConsole(true);
    try {
      await loadFacets();
      await Promise.all([loadLog(), loadLeads()]);
    } catch (e) {
      if (!(e instanceof SignedOut)) showError("search-error", `Could not load the console: ${e.message}`);
    }
  }

  // -- search ---------------------------------------------------------------------------------
  async function loadFacets() {
    if (facets) return;
    facets = await json("/api/v1/facets");
    const fill = (id, items, text) => $(id).append(...items.map((f) => el("option", { value: f.value, text: text(f) })));
    fill("f-country", facets.countries, (f) => `${f.labels.en || f.value} (${f.value})`);
    fill("f-kind", facets.kinds, (f) => f.labels.en || f.value);
    fill("f-sector", [...facets.sectors].sort((a, b) => label("sectors", a.value).localeCompare(label("sectors", b.value))),
      (f) => f.labels.en || f.value);
    for (const country of facets.countries) {
      const regions = facets.regions.filter((r) => r.country === country.value);
      if (regions.length) {
        $("f-region").append(el("optgroup", { label: country.labels.en || country.value },
          regions.map((r) => el("option", { value: r.value, text: r.labels.en || r.value }))));
      }
    }
  }

  function searchBody(offset) {
    const filters = {};
    for (const [id, field] of [["f-country", "country"], ["f-region", "region"], ["f-kind", "kind"], ["f-sector", "sectors"]]) {
      if ($(id).value) filters[field] = [$(id).value];
    }
    return { query: $("q").value.trim(), filters, limit: Number($("page-size").value), offset };
  }

  // Pages already seen are shown again without asking: going back is not a new query for the log.
  async function runSearch(body) {
    const cached = search && search.pages.get(body.offset);
    if (cached && JSON.stringify({ ...search.body, offset: body.offset }) === JSON.stringify(body)) {
      search.body = body;
      renderResults(cached);
      return;
    }
    showError("search-error", "");
    $("search-summary").textContent = "Searching…";
    let data;
    try {
      data = await json("/api/v1/search", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    } catch (e) {
      if (e instanceof SignedOut) return;
      $("search-summary").textContent = "";
      showError("search-error", `The search failed: ${e.message}`);
      return;
    }
    if (body.offset === 0 || !search) search = { body, pages: new Map() };
    search.body = body;
    search.pages.set(body.offset, data);
    renderResults(data);
    if (body.offset === 0) loadLog().catch(() => {});
  }

  function why(w) {
    const parts = [];
    if (w.sectors.length) parts.push(el("span", {}, el("b", { text: "Sectors: " }), w.sectors.join(", ")));
    if (w.terms.length) parts.push(el("span", {}, el("b", { text: "Terms: " }), w.terms.join(", ")));
    if (w.boosts.length) parts.push(el("span", {}, el("b", { text: "Boosts: " }), w.boosts.join(", ")));
    if (!parts.length) parts.push(el("span", { text: "Meaning only (no shared keyword or sector)" }));
    return el("div", { class: "why" }, parts.flatMap((p, i) => (i ? ["; ", p] : [p])));
  }

  function renderResults(data) {
    const from = data.total ? data.offset + 1 : 0;
    const to = data.offset + data.results.length;
    $("search-summary").textContent = data.total
      ? `${data.total} organisations match “${data.query}” (query language: ${data.lang}); showing ${from}–${to}.`
      : `Nothing matches “${data.query}” with these filters.`;
    const rows = data.results.map((h, i) => el("tr", { "data-id": h.id },
      el("td", { class: "num-cell", text: String(data.offset + i + 1) }),
      el("td", {}, el("div", { text: h.name }), el("small", { class: "sub", text: h.id })),
      el("td", { text: label("kinds", h.kind) }),
      el("td", { text: [label("countries", h.country), h.region && label("regions", h.region)].filter(Boolean).join(" · ") }),
      el("td", { text: h.sectors.map((s) => label("sectors", s)).join(", ") }),
      el("td", { class: "num-cell", text: h.score.toFixed(3) }),
      el("td", {}, why(h.why)),
      el("td", {}, el("button", { type: "button", class: "secondary", "aria-label": `Open ${h.name}`, onclick: (e) => openRecord(h.id, e.currentTarget) }, "Open"))));
    $("results").tBodies[0].replaceChildren(...rows);
    $("results").hidden = !rows.length;
    $("pager").hidden = !data.total;
    $("prev").disabled = data.offset === 0;
    $("next").disabled = to >= data.total;
  }

  async function openRecord(id, opener) {
    let rec;
    try {
      rec = await json(`/api/v1/organisations/${encodeURIComponent(id)}`);
    } catch (e) {
      if (!(e instanceof SignedOut)) showError("search-error", `Could not open ${id}: ${e.message}`);
      return;
    }
    $("record-title").textContent = rec.name;
    const link = (url) => el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: url });
    const facts = [
      ["Id", rec.id], ["Kind", label("kinds", rec.kind)],
      ["Where", [rec.city, rec.region && label("regions", rec.region), label("countries", rec.country)].filter(Boolean).join(", ")],
      ["Sectors", (rec.sectors || []).map((s) => label("sectors", s)).join(", ")],
      ["Website", rec.website ? link(rec.website) : "—"],
      ["Offers", rec.offers], ["Seeks", rec.seeks],
      ["Sources", (rec.sources || []).length ? el("ul", {}, rec.sources.map((s) => el("li", {}, link(s)))) : null],
      ["Updated", rec.updated],
    ].filter(([, v]) => v);
    const langs = Object.entries(rec.i18n || {});
    $("record-body").replaceChildren(
      el("dl", { class: "record" }, facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)])),
      el("div", { class: "translations" }, langs.length
        ? langs.map(([lang, tr]) => el("section", { lang }, el("h3", { text: `${lang}: ${tr.name || rec.name}` }), el("p", { text: tr.description || "" })))
        : el("p", { text: rec.description })));
    const dialog = $("record");
    dialog.showModal();
    dialog.addEventListener("close", () => opener && opener.focus(), { once: true });
  }

  // -- query log ------------------------------------------------------------------------------
  function barChart(title, counts) {
    const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
    const max = Math.max(1, ...entries.map(([, n]) => n));
    const rowH = 26, labelW = 70, barW = 190, height = Math.max(1, entries.length) * rowH + 4;
    const chart = svg("svg", { viewBox: `0 0 300 ${height}`, role: "img",
      "aria-label": `${title}: ${entries.map(([k, n]) => `${k} ${n}`).join(", ") || "none yet"}` });
    if (!entries.length) chart.append(svg("text", { x: 0, y: 18 }, "No queries yet"));
    entries.forEach(([name, n], i) => {
      const y = i * rowH + 4;
      chart.append(
        svg("text", { x: 0, y: y + 15 }, name),
        svg("rect", { class: "track", x: labelW, y, width: barW, height: rowH - 8, rx: 3 }),
        svg("rect", { class: "bar", x: labelW, y, width: Math.max(2, (barW * n) / max), height: rowH - 8, rx: 3 }),
        svg("text", { x: labelW + barW + 6, y: y + 15 }, String(n)));
    });
    return el("figure", { class: "chart" }, el("h3", { text: title }), chart);
  }

  function rateChart(stats) {
    const { all, zero_results: zero } = stats.totals;
    const pct = Math.round(stats.zero_rate * 1000) / 10;
    const text = `${pct}% (${zero} of ${all})`;
    const chart = svg("svg", { viewBox: "0 0 300 30", role: "img", "aria-label": `Zero-result rate: ${text}` });
    chart.append(
      svg("rect", { class: "track", x: 0, y: 4, width: 190, height: 18, rx: 3 }),
      svg("rect", { class: "bar zero", x: 0, y: 4, width: Math.max(2, 190 * stats.zero_rate), height: 18, rx: 3 }),
      svg("text", { x: 196, y: 18 }, text));
    return el("figure", { class: "chart" }, el("h3", { text: "Queries that found nothing" }), chart);
  }

  async function loadLog() {
    const zero = $("zero-only").checked;
    const [stats, rows] = await Promise.all([
      json("/api/v1/staff/stats"),
      json(`/api/v1/staff/queries?limit=50${zero ? "&zero=true" : ""}`),
    ]);
    $("charts").replaceChildren(barChart("Queries by language", stats.by_lang), barChart("Queries by channel", stats.by_channel), rateChart(stats));
    $("queries").tBodies[0].replaceChildren(...(rows.length ? rows.map((q) => el("tr", {},
      el("td", { text: when(q.created) }), el("td", { text: q.channel }), el("td", { text: q.lang }),
      el("td", { lang: q.lang, text: q.query }), el("td", { class: "num-cell", text: String(q.results) })))
      : [el("tr", {}, el("td", { colspan: "5", text: zero ? "No query has come back empty." : "No queries logged yet." }))]));
  }

  // -- leads ----------------------------------------------------------------------------------
  async function loadLeads(focusId) {
    showError("leads-error", "");
    const status = $("lead-status").value;
    const leads = await json(`/api/v1/leads?limit=200${status ? `&status=${status}` : ""}`);
    $("leads").tBodies[0].replaceChildren(...(leads.length ? leads.map((l) => {
      const next = l.status === "contacted" ? "new" : "contacted";
      return el("tr", { "data-lead": String(l.id) },
        el("td", { class: "num-cell", text: String(l.id) }),
        el("td", { text: when(l.created) }),
        el("td", {}, el("div", { text: l.org_name }), el("small", { class: "sub", text: l.org_id })),
        el("td", { text: `${l.lang} · ${l.channel}` }),
        el("td", { lang: l.lang, text: l.message }),
        el("td", {}, el("span", { class: `status-${l.status}`, text: l.status })),
        el("td", {}, el("button", { type: "button", class: next === "contacted" ? "primary" : "secondary", "data-lead-action": String(l.id),
          "aria-label": `Mark lead ${l.id} (${l.org_name}) as ${next}`, onclick: () => setStatus(l.id, next) },
          next === "contacted" ? "Mark contacted" : "Mark as new")));
    }) : [el("tr", {}, el("td", { colspan: "7", text: "No leads yet." }))]));
    if (focusId) {
      const button = document.querySelector(`[data-lead-action="${focusId}"]`);
      if (button) button.focus();
    }
  }

  async function setStatus(id, status) {
    try {
      await json(`/api/v1/leads/${id}/status`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ status }) });
      await loadLeads(id);
    } catch (e) {
      if (!(e instanceof SignedOut)) showError("leads-error", `Could not update lead ${id}: ${e.message}`);
    }
  }

  // -- wiring ---------------------------------------------------------------------------------
  const guarded = (fn, errorId) => async (...args) => {
    try {
      await fn(...args);
    } catch (e) {
      if (!(e instanceof SignedOut)) showError(errorId, e.message);
    }
  };

  $("signin-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const candidate = $("staff-key").value.trim();
    if (candidate) signIn(candidate);
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    search = null;  // a search asked for is always run
    if ($("q").value.trim()) runSearch(searchBody(0));
  });
  $("prev").addEventListener("click", () => search && runSearch({ ...search.body, offset: Math.max(0, search.body.offset - search.body.limit) }));
  $("next").addEventListener("click", () => search && runSearch({ ...search.body, offset: search.body.offset + search.body.limit }));
  for (const fmt of ["csv", "json"]) {
    $(`export-${fmt}`).addEventListener("click", guarded(() => search && download(`/api/v1/staff/export?format=${fmt}`,
      { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(search.body) }), "search-error"));
    $(`leads-${fmt}`).addEventListener("click", guarded(() => {
      const status = $("lead-status").value;
      return download(`/api/v1/leads/export?format=${fmt}${status ? `&status=${status}` : ""}`);
    }, "leads-error"));
  }
  $("log-refresh").addEventListener("click", guarded(loadLog, "search-error"));
  $("zero-only").addEventListener("change", guarded(loadLog, "search-error"));
  $("leads-refresh").addEventListener("click", guarded(() => loadLeads(), "leads-error"));
  $("lead-status").addEventListener("change", guarded(() => loadLeads(), "leads-error"));
  $("record-close").addEventListener("click", () => $("record").close());

  if (key) start();
  else showConsole(false);
})();
