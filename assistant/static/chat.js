// Web chat for SMEs: talks to POST /api/v1/chat. Plain JavaScript, no build step.
// The interface language follows the browser (or the PT/中文/EN switch); the assistant
// answers in the language the user writes. The server issues the session id (a signed token,
// usable only together with this browser's HttpOnly cookie); it and the transcript live in
// localStorage so a reload continues the same conversation, which the server remembers.
(() => {
  "use strict";

  const UI = {
    pt: {
      title: "Localizador de parceiros CPC Alliance", tagline: "Parceiros em Portugal e na China",
      skip: "Saltar para a caixa de mensagem", langLabel: "Idioma da interface", newChat: "Nova conversa",
      conversation: "Conversa", inputLabel: "A sua mensagem", placeholder: "p. ex. empresas de cortiça em Portugal",
      send: "Enviar", waiting: "À espera da resposta…", you: "Você", assistant: "Assistente",
      welcome: "Olá! Diga-me que parceiros procura — clusters, empresas ou institutos em Portugal e na China. Pode escrever em português, chinês ou inglês.",
      examples: ["fornecedores de cortiça em Portugal", "fabricantes de moldes na China", "parceiros chineses para baterias"],
      unreachable: "Não foi possível contactar o servidor. Verifique a ligação e tente de novo — a sua mensagem continua na caixa.",
      serverError: "O servidor não conseguiu responder: {detail}. Tente de novo.",
      unavailable: "O serviço está temporariamente indisponível. Tente de novo dentro de um minuto — a sua mensagem continua na caixa.",
      details: "Detalhes", interested: "Tenho interesse", more: "Mais resultados", website: "Site",
      results: "Resultados", recorded: "Pedido registado", number: "N.º",
      restarted: "Começou uma nova conversa: a anterior já não está disponível, e os números dos resultados acima já não valem.",
      formTitle: "Os seus dados para a equipa da CPC Alliance", fName: "Nome", fOrg: "A sua organização",
      fContact: "E-mail ou telefone", fNeed: "O que procura (uma linha)", fSend: "Enviar dados", openJoin: "Abrir o formulário de inscrição", team: "Equipa CPC Alliance",
      mine: "Os meus pedidos", mineEmpty: "Ainda não tem pedidos nem alertas.", alertsTitle: "Alertas CPC Alliance",
    },
    zh: {
      title: "CPC联盟合作伙伴搜索", tagline: "寻找葡萄牙和中国的合作伙伴",
      skip: "跳到消息输入框", langLabel: "界面语言", newChat: "新对话",
      conversation: "对话", inputLabel: "您的消息", placeholder: "例如：葡萄牙的软木企业",
      send: "发送", waiting: "正在等待回复…", you: "您", assistant: "助手",
      welcome: "您好！请告诉我您在寻找什么样的合作伙伴——葡萄牙和中国的产业集群、企业或研究机构。可以用中文、葡萄牙语或英语提问。",
      examples: ["我们想找葡萄牙的软木合作伙伴", "葡萄牙的模具企业", "葡萄牙葡萄酒产业集群"],
      unreachable: "无法连接服务器。请检查网络后重试——您输入的内容仍保留在输入框中。",
      serverError: "服务器无法回复：{detail}。请重试。",
      unavailable: "服务暂时不可用，请一分钟后重试——您输入的内容仍保留在输入框中。",
      details: "详细信息", interested: "我感兴趣", more: "更多结果", website: "网站",
      results: "搜索结果", recorded: "已记录", number: "编号",
      restarted: "已开始新的对话：之前的对话已不可用，上面结果的编号不再有效。",
      formTitle: "请填写您的信息，供CPC联盟工作人员联系", fName: "姓名", fOrg: "所在单位",
      fContact: "邮箱、电话或微信号", fNeed: "您的需求（一句话）", fSend: "提交信息", openJoin: "打开加入名录表格", team: "CPC联盟工作人员",
      mine: "我的请求", mineEmpty: "您还没有请求或提醒。", alertsTitle: "CPC联盟提醒",
    },
    en: {
      title: "CPC Alliance partner finder", tagline: "Partners in Portugal and China",
      skip: "Skip to the message box", langLabel: "Interface language", newChat: "New conversation",
      conversation: "Conversation", inputLabel: "Your message", placeholder: "e.g. Portuguese cork companies",
      send: "Send", waiting: "Waiting for the reply…", you: "You", assistant: "Assistant",
      welcome: "Hello! Tell me what partners you are looking for — clusters, companies or institutes in Portugal and China. You can write in English, Portuguese or Chinese.",
      examples: ["Portuguese cork companies", "Chinese mould clusters", "Portuguese aerospace cluster"],
      unreachable: "Could not reach the server. Check your connection and try again — your message is still in the box.",
      serverError: "The server could not answer: {detail}. Please try again.",
      unavailable: "The service is briefly unavailable. Please try again in a minute — your message is still in the box.",
      details: "Details", interested: "I'm interested", more: "More results", website: "Website",
      results: "Results", recorded: "Request recorded", number: "No.",
      restarted: "A new conversation started: the earlier one is no longer available, and the numbers of the results above no longer apply.",
      formTitle: "Your details for the CPC Alliance team", fName: "Name", fOrg: "Your organisation",
      fContact: "E-mail or phone", fNeed: "What you are looking for (one line)", fSend: "Send details", openJoin: "Open the form to join", team: "CPC Alliance team",
      mine: "My requests", mineEmpty: "You have no requests or alerts yet.", alertsTitle: "CPC Alliance alerts",
    },
  };
  // What the buttons say to the assistant, in the language of the reply they belong to
  // (these are the phrasings assistant/_intents.py recognises).
  const SAY = {
    details: { pt: (n) => `detalhes do ${n}`, zh: (n) => `第${n}个的详细信息`, en: (n) => `details of ${n}` },
    interest: { pt: (n) => `tenho interesse no ${n}`, zh: (n) => `我对第${n}个感兴趣`, en: (n) => `I'm interested in ${n}` },
    interestFocus: { pt: "tenho interesse", zh: "我感兴趣", en: "I'm interested" },
    more: { pt: "mais", zh: "更多", en: "more" },
    alert: { pt: "Avisar-me de novos", zh: "有新的通知我", en: "Tell me when new ones fit" },  // assistant/_alerts.py's button
    // the contact form answers every question in one message ("name: … | organisation: …"), in the reply's language
    fields: {
      pt: { name: "nome", org: "organização", contact: "contacto", need: "necessidade" },
      zh: { name: "姓名", org: "单位", contact: "联系方式", need: "需求" },
      en: { name: "name", org: "organisation", contact: "contact", need: "need" },
    },
  };
  const FORM_STEPS = new Set(["name", "org", "contact", "need"]);
  const FIELD_MAX = { name: 100, org: 150, contact: 254, need: 300 };
  const SEARCH_INTENTS = new Set(["search", "refine"]);
  const LIST_INTENTS = new Set(["search", "refine", "more", "back"]);
  const KEY = { session: "cpc.chat.session", transcript: "cpc.chat.transcript", lang: "cpc.chat.lang", staffSeen: "cpc.chat.staffSeen" };
  const MAX_ENTRIES = 80;
  const TIMEOUT_MS = 30000;

  const $ = (id) => document.getElementById(id);
  const log = $("log"), form = $("form"), input = $("message"), sendButton = $("send");
  const errorBox = $("error"), statusBox = $("status"), live = $("live");

  const ui = window.cpcI18n(UI, KEY.lang, () => render());  // from dom.js, shared with the staff console
  const t = ui.t;
  let sessionId = load(KEY.session, null);
  let transcript = load(KEY.transcript, []);
  let facets = null;
  let busy = false;

  function load(key, fallback) {
    try {
      const raw = localStorage.getItem(key);
      return raw === null ? fallback : JSON.parse(raw);
    } catch (_) {
      return fallback;
    }
  }

  function store(key, value) {
    try {
      if (value === null) localStorage.removeItem(key);
      else localStorage.setItem(key, JSON.stringify(value));
    } catch (_) { /* private mode or full: the conversation still works, it just won't survive a reload */ }
  }

  const el = window.cpcEl;  // from dom.js, shared with the other page

  // -- labels from /api/v1/facets (kinds, countries, regions, sectors in pt/zh/en) ------------
  const facetLabel = (group, value, lang) => window.cpcFacetLabel(facets, group, value, lang);

  async function loadFacets() {
    try {
      const res = await fetch("/api/v1/facets");
      if (res.ok) {
        facets = await res.json();
        if (!busy) render();
      }
    } catch (_) { /* raw values are shown instead */ }
  }

  // -- rendering ----------------------------------------------------------------------------
  function applyInterface() {
    ui.apply();
    sendButton.setAttribute("aria-label", t("send"));
  }

  function linkified(text) {
    const out = [];
    let last = 0;
    for (const m of text.matchAll(/https?:\/\/[^\s<>"'，。）)]+/g)) {
      out.push(text.slice(last, m.index));
      out.push(el("a", { href: m[0], target: "_blank", rel: "noopener noreferrer", text: m[0] }));
      last = m.index + m[0].length;
    }
    out.push(text.slice(last));
    return out;
  }

  function paragraphs(text) {
    return text.split("\n").filter((line) => line.trim()).map((line) => el("p", {}, linkified(line)));
  }

  // The reply text repeats each result as "N. name — place" plus an indented reason line;
  // the cards show those, so only the heading (above the cards) and the hint (below) stay text.
  function listText(entry) {
    const numbers = entry.results.map((r) => `${r.number}. `);
    const head = [], tail = [];
    let seenCard = false;
    for (const line of entry.reply.split("\n")) {
      if (line.startsWith("   ") || numbers.some((n) => line.startsWith(n))) seenCard = true;
      else (seenCard ? tail : head).push(line);
    }
    return { head: head.join("\n"), tail: tail.join("\n") };
  }

  function safeUrl(url) {
    try {
      const u = new URL(url);
      return u.protocol === "http:" || u.protocol === "https:" ? u : null;
    } catch (_) {
      return null;
    }
  }

  function card(result, lang, live) {
    const where = [result.city, result.region && facetLabel("regions", result.region, lang), facetLabel("countries", result.country, lang)]
      .filter(Boolean).filter((v, i, all) => all.indexOf(v) === i).join(lang === "zh" ? "，" : ", ");
    const id = `card-${result.id}-${result.number}-${Math.random().toString(36).slice(2, 7)}`;
    const url = result.website && safeUrl(result.website);
    // buttons speak the interface language; the card's content is in the reply's
    const actions = live && result.number > 0 ? el("div", { class: "actions", lang: ui.lang },
      el("button", { type: "button", class: "secondary", "data-action": "details", "aria-describedby": id,
        onclick: () => send(SAY.details[lang](result.number), "button") }, t("details")),
      el("button", { type: "button", class: "primary", "data-action": "interest", "aria-describedby": id,
        onclick: () => send(SAY.interest[lang](result.number), "button") }, t("interested")),
    ) : null;
    return el("li", { class: "card", "data-id": result.id },
      el("article", { "aria-labelledby": id, lang },
        el("header", {},
          result.number > 0 ? el("span", { class: "num" }, el("span", { class: "sr-only", text: `${t("number")} ` }), String(result.number)) : null,
          el("h3", { id, text: result.name })),
        el("p", { class: "meta" }, el("span", { class: `kind kind-${result.kind}`, text: facetLabel("kinds", result.kind, lang) }), " ", where),
        result.sectors && result.sectors.length ? el("ul", { class: "tags" },
          result.sectors.slice(0, 4).map((s) => el("li", { text: facetLabel("sectors", s, lang) }))) : null,
        result.reason ? el("p", { class: "reason", text: result.reason }) : null,
        url ? el("p", { class: "site" }, el("a", { href: url.href, target: "_blank", rel: "noopener noreferrer" },
          `${t("website")}: ${url.host.replace(/^www\./, "")}`)) : null,
        actions));
  }

  function chips(texts, lang) {
    return el("ul", { class: "chips" }, texts.map((text) =>
      el("li", {}, el("button", { type: "button", class: "chip", lang, onclick: () => send(text, "button") }, text))));
  }

  function botEntry(entry, index, liveFrom, isLast) {
    const lang = entry.lang || "en";
    const live = index >= liveFrom;
    const body = el("div", { class: "bubble", lang });
    const item = el("li", { class: "msg bot", tabindex: "-1", "data-intent": entry.intent },
      el("span", { class: "sr-only", text: `${t("assistant")}: ` }), body);
    if (entry.handoff) {
      body.classList.add("confirm");
      body.append(el("p", { class: "confirm-title" }, el("span", { "aria-hidden": "true", text: "✓ " }), t("recorded")), ...paragraphs(entry.reply));
    } else if (LIST_INTENTS.has(entry.intent) && entry.results.length) {
      const text = listText(entry);
      body.append(...paragraphs(text.head));
      item.append(el("ol", { class: "cards", "aria-label": t("results") }, entry.results.map((r) => card(r, lang, live))));
      if (text.tail) item.append(el("div", { class: "hint", lang }, paragraphs(text.tail)));
      if (isLast) {
        item.append(el("div", { class: "after" }, el("button", { type: "button", class: "secondary", "data-action": "more",
          onclick: () => send(SAY.more[lang], "button") }, t("more")),
          (entry.suggestions || []).includes(SAY.alert[lang]) ? el("button", { type: "button", class: "secondary", "data-action": "alert",
            onclick: () => send(SAY.alert[lang], "button") }, "🔔 " + SAY.alert[lang]) : null));
      }
    } else {
      body.append(...paragraphs(entry.reply));
      const about = entry.intent === "details" && entry.results[0];
      const interestButton = about && ((live && about.number > 0) || isLast);
      if (interestButton) {
        const say = about.number > 0 ? SAY.interest[lang](about.number) : SAY.interestFocus[lang];
        item.append(el("div", { class: "after" }, el("button", { type: "button", class: "primary", "data-action": "interest",
          onclick: () => send(say, "button") }, t("interested"))));
      }
      // the button above says "I'm interested" for this organisation: no second chip for it
      const offered = (entry.suggestions || []).filter((s) => !(interestButton && s === SAY.interestFocus[lang]));
      if (isLast && entry.form && FORM_STEPS.has(entry.form.step)) item.append(contactForm(entry.form, lang));
      if (entry.form && entry.form.step === "profile_form" && /^\/join(\?|$)/.test(entry.form.url || "")) {  // join (members): the profile form
        item.append(el("div", { class: "after" }, el("a", { class: "button primary", href: entry.form.url, "data-action": "join",
          text: t("openJoin") })));
      }
      if (isLast && offered.length) item.append(chips(offered, lang));
    }
    return item;
  }

  // A small form for the contact request: what is filled in goes as one message the assistant validates.
  function contactForm(form, lang) {
    const values = form.fields || {};
    const words = SAY.fields[lang] || SAY.fields.en;
    const inputs = {};
    const row = (name, label, type) => {
      const id = `cf-${name}`;
      inputs[name] = el("input", { id, name, type, maxlength: String(FIELD_MAX[name]), value: values[name] || "",
        autocomplete: { name: "name", org: "organization", contact: "email" }[name] || "off" });
      return el("div", { class: "cf-field" }, el("label", { for: id, text: t(label) }), inputs[name]);
    };
    return el("form", { class: "contact-form", lang: ui.lang, "aria-label": t("formTitle"), onsubmit: (event) => {
      event.preventDefault();
      const parts = Object.entries(inputs).map(([name, input]) => [name, input.value.trim()]).filter(([, v]) => v)
        .map(([name, v]) => `${words[name]}: ${v}`);
      if (parts.length) send(parts.join(" | "), "button");
    } },
    el("p", { class: "cf-title", text: t("formTitle") }),
    row("name", "fName", "text"), row("org", "fOrg", "text"),
    form.channel_identity ? null : row("contact", "fContact", "text"), row("need", "fNeed", "text"),
    el("button", { type: "submit", class: "primary", text: t("fSend") }));
  }

  function render() {
    applyInterface();
    const welcome = el("li", { class: "msg bot welcome" },
      el("div", { class: "bubble" }, el("p", { text: t("welcome") })), transcript.length ? null : chips(t("examples"), ui.lang));
    // Numbers in a result list only mean something until the next search (or until the server
    // starts a new conversation): older cards lose their buttons.
    let liveFrom = 0;
    transcript.forEach((e, i) => {
      if ((e.role === "bot" && SEARCH_INTENTS.has(e.intent) && e.results.length) || e.role === "restart") liveFrom = i;
    });
    const lastBot = transcript.map((e) => e.role).lastIndexOf("bot");
    const items = transcript.map((entry, i) => {
      if (entry.role === "user") {
        return el("li", { class: "msg user" }, el("span", { class: "sr-only", text: `${t("you")}: ` }), el("div", { class: "bubble", text: entry.text }));
      }
      if (entry.role === "restart") return el("li", { class: "msg restart" }, el("div", { class: "hint" }, el("p", { text: t("restarted") })));
      if (entry.role === "staff") {
        return el("li", { class: "msg bot staff", "data-staff": String(entry.id) },
          el("div", { class: "bubble staff" }, el("p", { class: "staff-title", text: t(entry.author === "alerts" ? "alertsTitle" : "team") }),
            ...paragraphs(entry.text)));
      }
      if (entry.role === "mine") {  // GET /api/v1/me/requests: one list per section, statuses in the user's language
        const lists = entry.sections.filter((s) => s.items.length).map((s) => [
          el("p", { class: "staff-title", text: s.title }), el("ul", {}, s.items.map((item) => el("li", { "data-status": item.status, text: item.text })))]);
        return el("li", { class: "msg bot mine" }, el("div", { class: "bubble" }, ...(lists.length ? lists.flat() : [el("p", { text: t("mineEmpty") })])));
      }
      return botEntry(entry, i, liveFrom, i === lastBot);
    });
    log.replaceChildren(welcome, ...items);
  }

  // -- sending ------------------------------------------------------------------------------
  function setBusy(on) {
    busy = on;
    sendButton.disabled = on;
    sendButton.textContent = on ? "…" : t("send");
    sendButton.setAttribute("aria-label", t("send"));  // the name stays "Send" while it shows "…"
    log.setAttribute("aria-busy", String(on));
    statusBox.textContent = on ? t("waiting") : "";
    document.querySelectorAll(".log button").forEach((b) => { b.disabled = on; });
  }

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  async function send(text, from) {
    text = (text || "").trim();
    if (!text || busy) return;
    setBusy(true);
    showError("");
    const pending = [
      el("li", { class: "msg user pending" }, el("div", { class: "bubble", text })),
      el("li", { class: "msg bot typing", "aria-hidden": "true" }, el("div", { class: "bubble" }, el("span", { class: "dots", text: "…" }))),
    ];
    log.append(...pending);
    pending[1].scrollIntoView({ block: "end", behavior: "smooth" });
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
    let data = null;
    let problem = null;
    try {
      const res = await fetch("/api/v1/chat", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ session_id: sessionId || undefined, text, channel: "web" }),
        signal: controller.signal,
      });
      const body = await res.json().catch(() => null);
      if (res.ok && body) data = body;
      else if (res.status === 503) problem = t("unavailable");  // a store down: said in the page's language
      else problem = t("serverError", { detail: (body && body.error) || `HTTP ${res.status}` });
    } catch (_) {
      problem = t("unreachable");
    } finally {
      clearTimeout(timer);
    }
    pending.forEach((n) => n.remove());
    setBusy(false);
    if (!data) {
      showError(problem);  // what the user typed stays in the box: it is only cleared on success
      if (from !== "form") input.focus();
      return;
    }
    // the server did not continue the conversation we had (it expired, or this browser's cookie is gone)
    if (sessionId && data.new_session && transcript.length) transcript.push({ role: "restart" });
    sessionId = data.session_id;
    if (data.step === "privacy_erased") {  // the server forgot this conversation: so does the browser
      sessionId = null;
      transcript = [];
      store(KEY.staffSeen, null);
    }
    transcript.push({ role: "user", text });
    transcript.push({ role: "bot", reply: data.reply, lang: data.lang, intent: data.intent, results: data.results || [],
      suggestions: data.suggestions || [], handoff: !!data.handoff, lead_id: data.lead_id, form: data.form || null });
    transcript = transcript.slice(-MAX_ENTRIES);
    store(KEY.session, sessionId);
    store(KEY.transcript, transcript);
    if (from === "form" && input.value.trim() === text) input.value = "";
    render();
    live.textContent = data.reply;
    const newest = log.lastElementChild;
    newest.scrollIntoView({ block: "start", behavior: "smooth" });
    if (from === "form") input.focus();
    else newest.focus({ preventScroll: true });
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send(input.value, "form");
  });

  // "My requests": leads, alerts (and profile and posts where kept) with their statuses.
  $("my-requests").addEventListener("click", async () => {
    if (busy) return;
    if (!sessionId) {
      transcript.push({ role: "mine", sections: [] });
      render();
      return;
    }
    try {
      const res = await fetch(`/api/v1/me/requests?session_id=${encodeURIComponent(sessionId)}&lang=${ui.lang}`);
      if (!res.ok) { showError(t("serverError", { detail: res.status })); return; }
      const data = await res.json();
      transcript.push({ role: "mine", sections: data.sections });
    } catch (_) {
      showError(t("unreachable"));
      return;
    }
    transcript = transcript.slice(-MAX_ENTRIES);
    store(KEY.transcript, transcript);
    render();
    log.lastElementChild.scrollIntoView({ block: "end" });
  });

  $("new-chat").addEventListener("click", () => {
    sessionId = null;
    transcript = [];
    store(KEY.session, null);
    store(KEY.transcript, null);
    store(KEY.staffSeen, null);
    showError("");
    render();
    input.focus();
  });

  // Messages the CPC Alliance team sent to this conversation, fetched when the page opens or comes back into view.
  async function loadStaffMessages() {
    if (!sessionId || busy) return;
    const seen = load(KEY.staffSeen, 0);
    let data;
    try {
      const res = await fetch(`/api/v1/chat/messages?session_id=${encodeURIComponent(sessionId)}&after=${seen}`);
      if (!res.ok) return;
      data = await res.json();
    } catch (_) {
      return;
    }
    if (!data.messages.length || data.session_id !== sessionId || busy) return;
    for (const m of data.messages) transcript.push({ role: "staff", id: m.id, text: m.text, created: m.created, author: m.author });
    transcript = transcript.slice(-MAX_ENTRIES);
    store(KEY.transcript, transcript);
    store(KEY.staffSeen, data.messages[data.messages.length - 1].id);
    render();
    live.textContent = data.messages.map((m) => m.text).join("\n");
    log.lastElementChild.scrollIntoView({ block: "end" });
  }

  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") loadStaffMessages(); });

  render();
  loadFacets();
  loadStaffMessages();
  if (transcript.length) log.lastElementChild.scrollIntoView({ block: "end" });
})();
