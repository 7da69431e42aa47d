// The lead inbox as the console's first view (with staff.js): markers for what is unread, where
// the user wrote back, and what is overdue; partner suggestions for each lead; the inbox filters
// kept in the address (#status=new&q=cork), so a view can be bookmarked, shared and reloaded.
// staff.js draws the leads and says so with a "cpc:leads-rendered" event carrying them.
(() => {
  "use strict";

  const UI = {
    pt: { unread: "Não lido", replied: "O utilizador respondeu", overdue: "Em atraso ({days} d sem ação)",
      markRead: "Marcar como lido", suggestions: "Parceiros sugeridos para {name}", loading: "A procurar…",
      noSuggestions: "Sem sugestões.", suggestFailed: "Sem sugestões: {detail}", show: "Mostrar",
      shows: { all: "Todos", unread: "Não lidos", replied: "Com resposta do utilizador", overdue: "Em atraso" },
      hidden: "{n} pedido(s) escondido(s) por este filtro." },
    zh: { unread: "未读", replied: "用户已回复", overdue: "已逾期（{days} 天未跟进）",
      markRead: "标为已读", suggestions: "为 {name} 推荐的合作伙伴", loading: "正在查找…",
      noSuggestions: "暂无推荐。", suggestFailed: "无法获取推荐：{detail}", show: "显示",
      shows: { all: "全部", unread: "未读", replied: "用户已回复", overdue: "已逾期" },
      hidden: "此筛选隐藏了 {n} 条意向。" },
    en: { unread: "Unread", replied: "User replied", overdue: "Overdue ({days} d without action)",
      markRead: "Mark read", suggestions: "Suggested partners for {name}", loading: "Looking…",
      noSuggestions: "No suggestions.", suggestFailed: "No suggestions: {detail}", show: "Show",
      shows: { all: "All", unread: "Unread", replied: "User replied", overdue: "Overdue" },
      hidden: "{n} lead(s) hidden by this filter." },
  };
  const FILTERS = [["status", "lead-status"], ["channel", "lead-channel"], ["lang", "lead-lang"], ["assignee", "lead-assignee"],
    ["q", "lead-q"], ["show", "lead-show"]];
  const $ = (id) => document.getElementById(id);
  const el = window.cpcEl;
  const ui = window.cpcI18n(UI, "cpc.staff.lang", () => setTimeout(redraw));
  const t = ui.t;
  let leads = [];
  let reads = {};
  const openSuggestions = new Set();
  const suggestionsCache = new Map();  // org id + language -> the matches answer

  // -- the inbox first, and a "show" filter of its own -----------------------------------------
  const panel = $("leads-title").closest("section");
  panel.id = "inbox";
  $("console").prepend(panel);  // first in the page and in the tab order, above search and the query log
  const showSelect = el("select", { id: "lead-show" }, Object.keys(UI.en.shows).map((k) => el("option", { value: k })));
  $("lead-filters").prepend(el("div", { class: "field" }, el("label", { for: "lead-show", "data-inbox": "show" }), showSelect));
  const hiddenNote = el("p", { id: "leads-hidden", class: "summary", hidden: true });
  $("leads").before(hiddenNote);

  // -- filters in the address ------------------------------------------------------------------
  function fromAddress() {
    const params = new URLSearchParams(location.hash.slice(1));
    for (const [name, id] of FILTERS) if (params.has(name)) $(id).value = params.get(name);
    if (!showSelect.value) showSelect.value = "all";
  }

  function toAddress() {
    const params = new URLSearchParams();
    for (const [name, id] of FILTERS) {
      const value = $(id).value.trim();
      if (value && !(name === "show" && value === "all")) params.set(name, value);
    }
    const hash = params.toString();
    history.replaceState(null, "", hash ? `#${hash}` : location.pathname + location.search);
  }

  fromAddress();
  $("lead-filters").addEventListener("change", toAddress);
  $("lead-filters").addEventListener("submit", toAddress);
  showSelect.addEventListener("change", () => decorate());
  window.addEventListener("hashchange", () => {
    fromAddress();
    $("lead-filters").requestSubmit();
  });

  // -- markers ---------------------------------------------------------------------------------
  const overdueDays = () => (window.cpcStaffSession.me && window.cpcStaffSession.me.overdue_days) || 3;

  function marks(lead) {
    const read = reads[lead.id] || 0;
    const lastStaff = Math.max(0, ...(lead.messages || []).filter((m) => (m.sender || "staff") === "staff").map((m) => m.created));
    const userAt = lead.last_user_message_at || 0;
    return {
      unread: read < lead.created,
      replied: lead.unread > 0 || userAt > Math.max(read, lastStaff),
      overdue: lead.status !== "closed" && Date.now() / 1000 - lead.updated > overdueDays() * 86400,
    };
  }

  async function loadReads() {
    const res = await fetch("/api/v1/staff/reads", { headers: { Accept: "application/json", ...window.cpcStaffSession.headers("GET"),
      ...keyHeader() } });
    reads = res.ok ? await res.json() : {};
  }

  function keyHeader() {
    const key = sessionStorage.getItem("cpc.staff.key");
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  async function markRead(lead) {
    const res = await fetch(`/api/v1/leads/${lead.id}/read`, { method: "POST",
      headers: { Accept: "application/json", ...window.cpcStaffSession.headers("POST"), ...keyHeader() } });
    if (res.ok) {
      reads[lead.id] = (await res.json()).read_at;
      decorate();
    }
  }

  function badge(kind, text) {
    return el("span", { class: `badge marker marker-${kind}`, "data-marker": kind, text });
  }

  function decorate() {
    const show = showSelect.value || "all";
    let hidden = 0;
    for (const lead of leads) {
      const item = document.querySelector(`#leads [data-lead="${lead.id}"]`);
      if (!item) continue;
      const m = marks(lead);
      item.classList.toggle("is-unread", m.unread || m.replied);
      item.classList.toggle("is-overdue", m.overdue);
      item.hidden = show !== "all" && !m[show];
      if (item.hidden) hidden += 1;
      const head = item.querySelector(".lead-head");
      head.querySelectorAll(".marker, .mark-read").forEach((n) => n.remove());
      const title = head.querySelector("h3");
      if (m.overdue) title.after(badge("overdue", t("overdue", { days: overdueDays() })));
      if (m.replied) title.after(badge("replied", t("replied")));
      if (m.unread) title.after(badge("unread", t("unread")));
      if (m.unread || m.replied) {
        head.append(el("button", { type: "button", class: "quiet mark-read", onclick: () => markRead(lead) }, t("markRead")));
      }
      if (!item.querySelector(".suggestions")) item.querySelector("article").append(suggestions(lead));
      const more = item.querySelector(".lead-more");
      if (more && !more.dataset.readHook) {  // opening a lead's follow-up is reading it
        more.dataset.readHook = "1";
        more.addEventListener("toggle", () => more.open && (marks(lead).unread || marks(lead).replied) && markRead(lead));
      }
    }
    hiddenNote.hidden = !hidden;
    hiddenNote.textContent = hidden ? t("hidden", { n: hidden }) : "";
    labels();
  }

  function labels() {
    document.querySelectorAll("[data-inbox]").forEach((n) => { n.textContent = t(n.dataset.inbox); });
    for (const option of showSelect.options) option.textContent = t("shows")[option.value];
  }
  labels();

  // -- partner suggestions (the organisation's matches) ------------------------------------------
  function suggestions(lead) {
    const org = lead.organisations && lead.organisations[0] ? lead.organisations[0] : { id: lead.org_id, name: lead.org_name };
    const list = el("div", { class: "suggestion-list" });
    const box = el("details", { class: "suggestions", open: openSuggestions.has(lead.id),
      ontoggle: () => {
        if (box.open) {
          openSuggestions.add(lead.id);
          fill(org, list);
        } else openSuggestions.delete(lead.id);
      } }, el("summary", { text: t("suggestions", { name: org.name }) }), list);
    if (box.open) fill(org, list);
    return box;
  }

  async function fill(org, list) {
    const cacheKey = `${org.id}|${ui.lang}`;
    list.replaceChildren(el("p", { class: "sub", text: t("loading") }));
    let data = suggestionsCache.get(cacheKey);
    try {
      if (!data) {
        const res = await fetch(`/api/v1/organisations/${encodeURIComponent(org.id)}/matches?limit=5&lang=${ui.lang}`,
          { headers: { Accept: "application/json" } });
        const body = await res.json().catch(() => null);
        if (!res.ok) throw new Error((body && body.error) || `HTTP ${res.status}`);
        data = body;
        suggestionsCache.set(cacheKey, data);
      }
    } catch (e) {
      list.replaceChildren(el("p", { class: "error", text: t("suggestFailed", { detail: e.message }) }));
      return;
    }
    list.replaceChildren(data.results.length
      ? el("ol", { class: "suggested", lang: data.lang }, data.results.map((h) => el("li", { "data-id": h.id },
        el("b", { text: h.name }), " ", el("small", { class: "sub", text: [h.country, h.region, h.id].filter(Boolean).join(" · ") }))))
      : el("p", { class: "sub", text: t("noSuggestions") }));
  }

  function redraw() {
    document.querySelectorAll("#leads .suggestions").forEach((n) => n.remove());
    decorate();
  }

  document.addEventListener("cpc:leads-rendered", async (e) => {
    leads = e.detail || [];
    try {
      await loadReads();
    } catch (_) { /* markers wait for the next refresh */ }
    decorate();
  });
})();
