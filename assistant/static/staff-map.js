// Opportunity map and unmet demand for staff: two charts drawn as inline SVG by this file (no CDN,
// no library), and the tables behind them. Signs in with the console's staff key (sessionStorage).
(() => {
  "use strict";

  const UI = {
    pt: {
      title: "Mapa de oportunidades · CPC Alliance", heading: "Mapa de oportunidades", tagline: "Localizador de parceiros CPC Alliance",
      langLabel: "Idioma da interface", back: "Voltar à consola", signIn: "Iniciar sessão", staffKey: "Chave da equipa",
      wrongKey: "Chave errada.", pairsTitle: "Colaborações por iniciar, por par de setores",
      pairsHint: "Correspondências entre membros dos dois lados sem pedido, apresentação nem conversa.",
      topTitle: "Correspondências abertas mais fortes", colPair: "Par", colSectors: "Setores", colScore: "Pontuação",
      colWhy: "Porquê", propose: "Propor apresentação", proposed: "Pedido n.º {id} criado", mutual: "mútua",
      unmetTitle: "Procura não satisfeita: perguntas sem resultados", colSector: "Setor procurado", colSide: "Lado",
      colLang: "Língua", colCount: "Perguntas", colExamples: "Exemplos", noSector: "(sem setor reconhecido)", anySide: "qualquer",
      pairsAxis: "pares abertos", unmetAxis: "perguntas por dia", empty: "Nada a mostrar.", loading: "A carregar…",
      failed: "Falhou: {error}",
    },
    zh: {
      title: "合作机会图 · CPC联盟", heading: "合作机会图", tagline: "CPC联盟合作伙伴查找",
      langLabel: "界面语言", back: "返回控制台", signIn: "登录", staffKey: "工作人员密钥", wrongKey: "密钥错误。",
      pairsTitle: "尚未启动的合作（按行业组合）", pairsHint: "两侧会员之间尚无请求、介绍或对话的匹配。",
      topTitle: "最强的未启动匹配", colPair: "双方", colSectors: "行业", colScore: "得分", colWhy: "理由",
      propose: "提议介绍", proposed: "已创建请求 {id}", mutual: "双向",
      unmetTitle: "未满足的需求：没有结果的提问", colSector: "所找行业", colSide: "所找一方", colLang: "语言",
      colCount: "提问数", colExamples: "示例", noSector: "（未识别行业）", anySide: "不限", pairsAxis: "未启动的组合",
      unmetAxis: "每日提问", empty: "暂无内容。", loading: "加载中…", failed: "失败：{error}",
    },
    en: {
      title: "Opportunity map · CPC Alliance", heading: "Opportunity map", tagline: "CPC Alliance partner finder",
      langLabel: "Interface language", back: "Back to the console", signIn: "Sign in", staffKey: "Staff key", wrongKey: "Wrong key.",
      pairsTitle: "Open collaborations by sector pair",
      pairsHint: "Cross-border matches between members that no lead, introduction or conversation concerns yet.",
      topTitle: "Strongest open matches", colPair: "Pair", colSectors: "Sectors", colScore: "Score", colWhy: "Why",
      propose: "Propose introduction", proposed: "Lead no. {id} created", mutual: "mutual",
      unmetTitle: "Unmet demand: questions that found nothing", colSector: "Sector sought", colSide: "Side", colLang: "Language",
      colCount: "Questions", colExamples: "Examples", noSector: "(no sector recognised)", anySide: "any",
      pairsAxis: "open pairs", unmetAxis: "questions a day", empty: "Nothing to show.", loading: "Loading…", failed: "Failed: {error}",
    },
  };
  const el = window.cpcEl;
  const NS = "http://www.w3.org/2000/svg";
  const COLOURS = ["#1f6f8b", "#e07a1f", "#3a8f3a", "#b8336a", "#6a4c93", "#8c6d1f", "#2f4858", "#d64545"];
  const { ui, api, start, signedIn } = window.cpcStaffPage({ table: UI, app: "map-app", onSwitch: () => render(),
                                                            onStart: () => load() });
  let data = { map: null, unmet: null };

  function svg(tag, attrs, ...children) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const child of children) node.append(child);
    return node;
  }

  // Horizontal bars: one per sector pair, labelled, counts at the bar's end.
  function barChart(rows, axis) {
    const width = 860, row = 26, left = 420, top = 8;
    const height = top + rows.length * row + 28;
    const max = Math.max(1, ...rows.map((r) => r.value));
    const scale = (width - left - 50) / max;
    const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-label": axis });
    const short = (text) => (text.length > 58 ? text.slice(0, 57) + "…" : text);
    rows.forEach((r, i) => {
      const y = top + i * row;
      chart.append(svg("text", { x: left - 8, y: y + 17, "text-anchor": "end", "font-size": "13", fill: "#222" }, short(r.label),
                                 svg("title", {}, r.label)));
      chart.append(svg("rect", { x: left, y: y + 4, width: Math.max(2, r.value * scale), height: row - 8, rx: "3",
                                 fill: COLOURS[i % COLOURS.length] }));
      chart.append(svg("text", { x: left + r.value * scale + 6, y: y + 17, "font-size": "12", fill: "#222" }, String(r.value)));
    });
    chart.append(svg("text", { x: left, y: height - 6, "font-size": "12", fill: "#555" }, axis));
    return chart;
  }

  // Stacked columns: one per day, a colour per sector sought (the top ones; the rest together).
  function stackedChart(days, series, axis) {
    const totals = {};
    days.forEach((d) => Object.entries(series[d]).forEach(([k, v]) => { totals[k] = (totals[k] || 0) + v; }));
    const keys = Object.keys(totals).sort((a, b) => totals[b] - totals[a]);
    const shown = keys.slice(0, 6), rest = keys.slice(6);
    const width = 720, height = 260, left = 40, bottom = 60, top = 10;
    const max = Math.max(1, ...days.map((d) => Object.values(series[d]).reduce((a, b) => a + b, 0)));
    const colW = Math.min(48, (width - left - 10) / Math.max(1, days.length));
    const scale = (height - bottom - top) / max;
    const full = height + 24 * Math.ceil((shown.length + 1) / 3);
    const chart = svg("svg", { viewBox: `0 0 ${width} ${full}`, width, height: full, role: "img", "aria-label": axis });
    chart.append(svg("line", { x1: left, y1: height - bottom, x2: width, y2: height - bottom, stroke: "#999" }));
    chart.append(svg("text", { x: 4, y: top + 10, "font-size": "12", fill: "#555" }, String(max)));
    days.forEach((d, i) => {
      let y = height - bottom;
      const x = left + 4 + i * colW;
      const parts = shown.map((k) => [k, series[d][k] || 0]);
      parts.push(["…", rest.reduce((a, k) => a + (series[d][k] || 0), 0)]);
      parts.forEach(([k, v], j) => {
        if (!v) return;
        const h = v * scale;
        y -= h;
        chart.append(svg("rect", { x, y, width: colW - 4, height: h, fill: j < shown.length ? COLOURS[j] : "#bbb" },
                         svg("title", {}, `${d} · ${k}: ${v}`)));
      });
      chart.append(svg("text", { x: x + (colW - 4) / 2, y: height - bottom + 14, "font-size": "10", "text-anchor": "end",
                                 transform: `rotate(-45 ${x + (colW - 4) / 2} ${height - bottom + 14})`, fill: "#333" }, d.slice(5)));
    });
    [...shown, ...(rest.length ? ["…"] : [])].forEach((k, j) => {
      const x = left + (j % 3) * 220, y = height + 6 + Math.floor(j / 3) * 22;
      chart.append(svg("rect", { x, y, width: 12, height: 12, fill: j < shown.length ? COLOURS[j] : "#bbb" }));
      chart.append(svg("text", { x: x + 18, y: y + 11, "font-size": "12", fill: "#222" }, k === "?" ? ui.t("noSector") : k));
    });
    chart.append(svg("text", { x: width - 4, y: top + 10, "text-anchor": "end", "font-size": "12", fill: "#555" }, axis));
    return chart;
  }

  function render() {
    ui.apply();
    const pairsChart = document.getElementById("pairs-chart");
    const unmetChart = document.getElementById("unmet-chart");
    pairsChart.replaceChildren();
    unmetChart.replaceChildren();
    const pairsBody = document.querySelector("#pairs-table tbody");
    const unmetBody = document.querySelector("#unmet-table tbody");
    pairsBody.replaceChildren();
    unmetBody.replaceChildren();
    if (data.map) {
      const rows = data.map.by_sector_pair.slice(0, 15).map((p) => ({ label: p.sectors.join(" ↔ "), value: p.pairs }));
      pairsChart.append(rows.length ? barChart(rows, ui.t("pairsAxis")) : el("p", { text: ui.t("empty") }));
      for (const o of data.map.opportunities) {
        const why = el("ul", { class: "why" }, o.why.map((w) => el("li", {
          text: `${w.from === o.a.id ? o.a.name : o.b.name} → ${w.to === o.a.id ? o.a.name : o.b.name}: ${w.reasons.join("; ")}` })));
        const button = el("button", { type: "button", class: "quiet", text: ui.t("propose"), onclick: () => propose(o, button) });
        pairsBody.append(el("tr", {},
          el("td", {}, el("strong", { text: o.a.name }), ` (${o.a.country}) ↔ `, el("strong", { text: o.b.name }), ` (${o.b.country})`),
          el("td", { text: o.sectors.join(" ↔ ") }),
          el("td", { text: o.score.toFixed(2) + (o.mutual ? ` · ${ui.t("mutual")}` : "") }),
          el("td", {}, why), el("td", {}, button)));
      }
    }
    if (data.unmet) {
      unmetChart.append(data.unmet.days.length ? stackedChart(data.unmet.days, data.unmet.series, ui.t("unmetAxis"))
        : el("p", { text: ui.t("empty") }));
      for (const g of data.unmet.groups) {
        unmetBody.append(el("tr", {}, el("td", { text: g.sector_label || ui.t("noSector") }),
          el("td", { text: g.side || ui.t("anySide") }), el("td", { text: g.lang }), el("td", { text: String(g.count) }),
          el("td", {}, el("ul", {}, g.examples.map((e) => el("li", { text: e }))))));
      }
    }
  }

  async function propose(o, button) {
    button.disabled = true;
    try {
      const body = await api("/api/v1/staff/opportunities/introduce", { method: "POST",
        body: JSON.stringify({ a: o.a.id, b: o.b.id, lang: ui.lang }) });
      button.replaceWith(el("span", { class: "done", text: ui.t("proposed", { id: body.lead_id }) }));
    } catch (err) {
      button.disabled = false;
      document.getElementById("status").textContent = ui.t("failed", { error: err.message });
    }
  }

  async function load() {
    const status = document.getElementById("status");
    status.textContent = ui.t("loading");
    try {
      const [map, unmet] = await Promise.all([api(`/api/v1/staff/opportunities?lang=${ui.lang}&limit=40`),
                                              api(`/api/v1/staff/unmet-demand?lang=${ui.lang}`)]);
      data = { map, unmet };
      status.textContent = "";
      document.body.dataset.loaded = "true";
      render();
    } catch (err) {
      if (err.message !== "auth") status.textContent = ui.t("failed", { error: err.message });
    }
  }

  document.querySelectorAll(".langs button").forEach((b) => b.addEventListener("click", () => { if (signedIn()) load(); }));
  start();
})();
