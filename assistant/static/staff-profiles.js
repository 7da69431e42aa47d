// The moderation queue for member profiles (/staff/profiles): pending profiles, each with its
// fields editable, Approve (publishes it through the write process) and Reject with a reason
// (sent to the member). Signs in with the console's staff key (sessionStorage), like the map page.
(function () {
  "use strict";
  const UI = {
    pt: { title: "Perfis a rever · CPC Alliance", heading: "Perfis a rever", tagline: "Localizador de parceiros CPC Alliance",
      langLabel: "Língua da interface", back: "Voltar à consola", signIn: "Entrar", staffKey: "Chave da equipa", wrongKey: "Chave errada.",
      queueTitle: "Perfis pendentes", queueHint: "Aprovar publica o perfil (como uma importação: pesquisável de imediato, os alertas correm). Pode corrigir campos antes de aprovar. O motivo de uma recusa é enviado ao membro tal como escrito.",
      empty: "Nenhum perfil à espera.", approve: "Aprovar", reject: "Recusar", reason: "Motivo (enviado ao membro)",
      approved: "Perfil {id} publicado como {org}.", rejected: "Perfil {id} recusado.", needReason: "Escreva o motivo.",
      from: "Via {channel}, língua {lang}, consentimento {when}",
      f: { name: "Nome", kind: "Tipo (company, cluster, institution)", country: "País (código ISO)", city: "Região/cidade",
        sectors: "Setores (palavras do membro)", offers: "Oferece", seeks: "Procura", website: "Sítio web", contact: "Contacto público" } },
    zh: { title: "待审核资料 · CPC联盟", heading: "待审核资料", tagline: "CPC联盟合作伙伴查找", langLabel: "界面语言",
      back: "返回控制台", signIn: "登录", staffKey: "工作人员密钥", wrongKey: "密钥错误。", queueTitle: "待审核资料",
      queueHint: "批准即发布（与导入相同：立即可搜索，并触发提醒）。批准前可修改字段。拒绝理由会原样发送给会员。",
      empty: "没有待审核的资料。", approve: "批准", reject: "拒绝", reason: "理由（发送给会员）",
      approved: "资料 {id} 已发布为 {org}。", rejected: "资料 {id} 已拒绝。", needReason: "请填写理由。",
      from: "来自{channel}，语言{lang}，同意时间{when}",
      f: { name: "名称", kind: "类型（company、cluster、institution）", country: "国家（ISO代码）", city: "地区/城市",
        sectors: "行业（会员原话）", offers: "提供", seeks: "寻求", website: "网站", contact: "公开联系方式" } },
    en: { title: "Profiles to review · CPC Alliance", heading: "Profiles to review", tagline: "CPC Alliance partner finder",
      langLabel: "Interface language", back: "Back to the console", signIn: "Sign in", staffKey: "Staff key", wrongKey: "Wrong key.",
      queueTitle: "Pending profiles", queueHint: "Approve publishes the profile (as an ingest: searchable at once, alerts run). Fields can be corrected before approving. A rejection's reason is sent to the member as written.",
      empty: "No profile is waiting.", approve: "Approve", reject: "Reject", reason: "Reason (sent to the member)",
      approved: "Profile {id} published as {org}.", rejected: "Profile {id} rejected.", needReason: "Write the reason.",
      from: "From {channel}, language {lang}, consent {when}",
      f: { name: "Name", kind: "Kind (company, cluster, institution)", country: "Country (ISO code)", city: "Region/city",
        sectors: "Sectors (the member's words)", offers: "Offers", seeks: "Seeks", website: "Website", contact: "Public contact" } },
  };
  const FIELDS = ["name", "kind", "country", "city", "sectors", "offers", "seeks", "website", "contact"];
  const el = window.cpcEl;
  const { ui, api, start } = window.cpcStaffPage({
    table: UI, app: "queue-app", onSwitch: () => render(), onStart: () => load(),
    errorOf: (body, status) => (typeof body.detail === "object" && body.detail ? Object.values(body.detail).join(" ") : (body.error || status)),
  });
  let rows = [];

  function say(text) { document.getElementById("status").textContent = text; }

  function card(p) {
    const inputs = {};
    const fields = FIELDS.map((name) => {
      const value = Array.isArray(p.data[name]) ? p.data[name].join(", ") : (p.data[name] || "");
      const id = `p${p.id}-${name}`;
      inputs[name] = el(name === "offers" || name === "seeks" ? "textarea" : "input", { id, name, value, rows: "2" });
      if (inputs[name].tagName === "TEXTAREA") inputs[name].value = value;
      return el("div", { class: "field" }, el("label", { for: id, text: (UI[ui.lang] || UI.en).f[name] }), inputs[name]);
    });
    const reason = el("input", { id: `p${p.id}-reason`, name: "reason", maxlength: "1000" });
    const approve = el("button", { type: "button", class: "primary", "data-action": "approve", text: ui.t("approve"), onclick: async () => {
      const data = {};
      for (const name of FIELDS) {
        const before = Array.isArray(p.data[name]) ? p.data[name].join(", ") : (p.data[name] || "");
        if (inputs[name].value !== before) data[name] = inputs[name].value;
      }
      try {
        const done = await api(`/api/v1/staff/profiles/${p.id}/approve`, { method: "POST", body: JSON.stringify({ data: Object.keys(data).length ? data : null }) });
        say(ui.t("approved", { id: p.id, org: done.organisation }));
        load();
      } catch (e) { say(String(e.message)); }
    } });
    const reject = el("button", { type: "button", "data-action": "reject", text: ui.t("reject"), onclick: async () => {
      if (!reason.value.trim()) { say(ui.t("needReason")); reason.focus(); return; }
      try {
        await api(`/api/v1/staff/profiles/${p.id}/reject`, { method: "POST", body: JSON.stringify({ reason: reason.value }) });
        say(ui.t("rejected", { id: p.id }));
        load();
      } catch (e) { say(String(e.message)); }
    } });
    const when = new Date(p.consent_at * 1000).toISOString().slice(0, 16).replace("T", " ");
    return el("li", { class: "profile-card", "data-profile": String(p.id) },
      el("h3", { text: `#${p.id} · ${p.name}` }),
      el("p", { class: "hint", text: ui.t("from", { channel: p.channel, lang: p.lang, when }) }),
      fields, el("div", { class: "field" }, el("label", { for: reason.id, text: ui.t("reason") }), reason),
      el("div", { class: "actions" }, approve, reject));
  }

  function render() {
    ui.apply();
    const list = document.getElementById("queue");
    list.replaceChildren(...rows.map(card));
    if (!rows.length) list.replaceChildren(el("li", { class: "hint", text: ui.t("empty") }));
  }

  async function load() {
    try {
      rows = (await api("/api/v1/staff/profiles?status=pending")).profiles;
      render();
    } catch (e) { if (e.message !== "auth") say(String(e.message)); }
  }

  start();
})();
