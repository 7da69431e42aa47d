// Join the directory (/join): the profile form of the web chat, in pt/zh/en. A profile belongs to
// the chat's conversation (its session id, from the chat's localStorage); with ?token= (an e-mailed
// one-time link) the page uses the link once and lets the owner view, edit or delete for 30 minutes.
// Every check is the server's (errors come back per field in the chosen language).
(function () {
  "use strict";
  const UI = {
    pt: { title: "Inscrever no diretório · CPC Alliance", heading: "Inscrever no diretório", tagline: "Localizador de parceiros CPC Alliance",
      langLabel: "Língua da interface", back: "Voltar ao chat", mineTitle: "Os seus perfis", formTitle: "A sua organização",
      formHint: "A equipa revê cada perfil antes de o publicar. O contacto fica visível a quem pesquisa.",
      consent: "Concordo com a publicação destes dados no diretório da CPC Alliance (posso alterá-los ou apagá-los mais tarde).",
      send: "Enviar para revisão", save: "Guardar alterações", sent: "Perfil n.º {id} enviado: aguarda revisão.",
      linkTitle: "Gerir um perfil por e-mail", linkEmail: "O e-mail de contacto do perfil", linkSend: "Enviar-me uma ligação",
      linkSent: "Se houver um perfil com este e-mail, enviámos uma ligação (válida uma vez).", linkUsed: "Esta ligação já foi usada ou expirou.",
      edit: "Editar", del: "Apagar", deleted: "Perfil n.º {id} apagado.", confirmDelete: "Apagar o perfil e retirá-lo do diretório?",
      status: { pending: "em revisão", approved: "publicado", rejected: "não aprovado" },
      kinds: { company: "empresa", cluster: "cluster", institution: "instituição" },
      f: { name: "Nome da organização", kind: "Tipo", country: "País", city: "Região ou cidade (opcional)",
        sectors: "Setores, nas suas palavras (separados por vírgulas)", offers: "O que oferece", seeks: "O que procura (opcional)",
        website: "Sítio web (opcional)", contact: "Contacto público (e-mail ou telefone)" } },
    zh: { title: "加入名录 · CPC联盟", heading: "加入名录", tagline: "CPC联盟合作伙伴查找", langLabel: "界面语言", back: "返回聊天",
      mineTitle: "您的资料", formTitle: "您的机构", formHint: "每份资料都经工作人员审核后发布。联系方式对搜索者可见。",
      consent: "我同意在CPC联盟名录中公开以上信息（之后可以修改或删除）。", send: "提交审核", save: "保存修改",
      sent: "资料 {id} 已提交，等待审核。", linkTitle: "通过邮箱管理资料", linkEmail: "资料中的联系邮箱", linkSend: "发送链接给我",
      linkSent: "如有使用该邮箱的资料，我们已发送链接（仅可使用一次）。", linkUsed: "该链接已使用或已过期。",
      edit: "修改", del: "删除", deleted: "资料 {id} 已删除。", confirmDelete: "删除该资料并从名录中移除？",
      status: { pending: "审核中", approved: "已发布", rejected: "未通过" },
      kinds: { company: "企业", cluster: "产业集群", institution: "机构" },
      f: { name: "机构名称", kind: "类型", country: "国家", city: "地区或城市（可选）", sectors: "行业（用您自己的话，逗号分隔）",
        offers: "能提供什么", seeks: "在寻找什么（可选）", website: "网站（可选）", contact: "公开联系方式（邮箱或电话）" } },
    en: { title: "Join the directory · CPC Alliance", heading: "Join the directory", tagline: "CPC Alliance partner finder",
      langLabel: "Interface language", back: "Back to the chat", mineTitle: "Your profiles", formTitle: "Your organisation",
      formHint: "Staff review every profile before it is published. The contact is visible to people who search.",
      consent: "I agree to the publication of these details in the CPC Alliance directory (I can edit or delete them later).",
      send: "Send for review", save: "Save changes", sent: "Profile no. {id} sent: it waits for review.",
      linkTitle: "Manage a profile by e-mail", linkEmail: "The profile's contact e-mail", linkSend: "Send me a link",
      linkSent: "If a profile has this e-mail, we sent a link (it works once).", linkUsed: "This link was used already or has expired.",
      edit: "Edit", del: "Delete", deleted: "Profile no. {id} deleted.", confirmDelete: "Delete the profile and remove it from the directory?",
      status: { pending: "in review", approved: "published", rejected: "not approved" },
      kinds: { company: "company", cluster: "cluster", institution: "institution" },
      f: { name: "Organisation name", kind: "Kind", country: "Country", city: "Region or city (optional)",
        sectors: "Sectors, in your own words (comma-separated)", offers: "What you offer", seeks: "What you are looking for (optional)",
        website: "Website (optional)", contact: "Public contact (e-mail or phone)" } },
  };
  const FIELDS = ["name", "kind", "country", "city", "sectors", "offers", "seeks", "website", "contact"];
  const el = window.cpcEl;
  const params = new URLSearchParams(location.search);
  if (["pt", "zh", "en"].includes(params.get("lang"))) localStorage.setItem("cpc.chat.lang", JSON.stringify(params.get("lang")));
  const ui = window.cpcI18n(UI, "cpc.chat.lang", () => { drawFields(); drawMine(); });
  let session = null;
  try { session = JSON.parse(localStorage.getItem("cpc.chat.session")); } catch (_) { session = null; }
  let manageKey = null, editing = null, mine = [];
  const inputs = {};

  function drawFields() {
    ui.apply();
    const values = Object.fromEntries(FIELDS.map((n) => [n, inputs[n] ? inputs[n].value : ""]));
    const T = (UI[ui.lang] || UI.en);
    const rows = FIELDS.map((name) => {
      let input;
      if (name === "kind") {
        input = el("select", { id: `f-${name}`, name }, el("option", { value: "", text: "—" }),
          ...["company", "cluster", "institution"].map((k) => el("option", { value: k, text: T.kinds[k] })));
      } else if (name === "offers" || name === "seeks") {
        input = el("textarea", { id: `f-${name}`, name, rows: "3", maxlength: "1500" });
      } else {
        input = el("input", { id: `f-${name}`, name, type: "text", maxlength: name === "contact" ? "254" : "300" });
      }
      input.value = values[name] || "";
      inputs[name] = input;
      return el("div", { class: "field" }, el("label", { for: input.id, text: T.f[name] }), input,
        el("p", { class: "error", id: `e-${name}`, role: "alert", hidden: true }));
    });
    document.getElementById("fields").replaceChildren(...rows);
    document.getElementById("submit").textContent = ui.t(editing ? "save" : "send");
  }

  function drawMine() {
    const T = (UI[ui.lang] || UI.en);
    document.getElementById("mine").hidden = !mine.length;
    document.getElementById("mine-list").replaceChildren(...mine.map((p) => el("li", { "data-profile": String(p.id) },
      `${p.id}. ${p.name} — ${T.status[p.status] || p.status}${p.reason ? ` (${p.reason})` : ""} `,
      el("button", { type: "button", "data-action": "edit", text: ui.t("edit"), onclick: () => startEdit(p) }),
      el("button", { type: "button", "data-action": "delete", text: ui.t("del"), onclick: () => remove(p) }))));
  }

  function startEdit(p) {
    editing = p.id;
    for (const n of FIELDS) inputs[n].value = Array.isArray(p.data[n]) ? p.data[n].join(", ") : (p.data[n] || "");
    document.getElementById("submit").textContent = ui.t("save");
    inputs.name.focus();
  }

  function auth() {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (manageKey) headers["X-Profile-Key"] = manageKey;
    return headers;
  }
  const owner = () => (manageKey ? "" : `?session_id=${encodeURIComponent(session || "")}`);

  async function refresh() {
    if (!manageKey && !session) return;
    const res = await fetch(`/api/v1/profiles/mine${owner()}`, { headers: auth() });
    if (res.ok) { mine = (await res.json()).profiles; drawMine(); }
  }

  async function remove(p) {
    if (!confirm(ui.t("confirmDelete"))) return;
    const res = await fetch(`/api/v1/profiles/${p.id}${owner()}`, { method: "DELETE", headers: auth() });
    const body = await res.json();
    document.getElementById("done").textContent = res.ok ? ui.t("deleted", { id: p.id }) : (body.error || res.status);
    refresh();
  }

  document.getElementById("profile-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { lang: ui.lang, consent: document.getElementById("f-consent").checked };
    for (const n of FIELDS) body[n] = inputs[n].value;
    if (session && !manageKey) body.session_id = session;
    for (const n of [...FIELDS, "consent"]) { const e = document.getElementById(`e-${n}`); e.hidden = true; e.textContent = ""; }
    const formError = document.getElementById("form-error");
    formError.hidden = true;
    const res = await fetch(editing ? `/api/v1/profiles/${editing}${owner()}` : "/api/v1/profiles",
      { method: editing ? "PUT" : "POST", headers: auth(), body: JSON.stringify(body) });
    const data = await res.json();
    if (!res.ok) {
      const errors = data.detail && typeof data.detail === "object" && !Array.isArray(data.detail) ? data.detail : null;
      if (errors) for (const [n, m] of Object.entries(errors)) { const e = document.getElementById(`e-${n}`); if (e) { e.hidden = false; e.textContent = m; } }
      else { formError.hidden = false; formError.textContent = data.error || String(res.status); }
      return;
    }
    document.getElementById("done").textContent = ui.t("sent", { id: data.id });
    editing = null;
    for (const n of FIELDS) inputs[n].value = "";
    document.getElementById("f-consent").checked = false;
    drawFields();
    refresh();
  });

  document.getElementById("link-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const res = await fetch("/api/v1/profiles/link", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: document.getElementById("link-email").value, lang: ui.lang }) });
    const data = await res.json();
    document.getElementById("link-status").textContent = res.ok ? ui.t("linkSent") : (data.error || String(res.status));
  });

  async function start() {
    drawFields();
    const token = params.get("token");
    if (token) {
      history.replaceState(null, "", "/join");  // the link works once: not kept in the address bar
      const res = await fetch("/api/v1/profiles/redeem", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ token }) });
      if (!res.ok) { document.getElementById("done").textContent = ui.t("linkUsed"); return; }
      const data = await res.json();
      manageKey = data.key;
      mine = data.profiles;
      drawMine();
      return;
    }
    refresh();
  }
  start();
})();
