// The moderation queue (/staff/moderation): directory profiles and opportunity posts that members
// sent, oldest first, in one list. Each item's fields can be corrected before Approve (only the
// changed ones are sent, as corrections); Reject needs a reason, which the member is told in a
// message in their language. Signs in with the console's staff key, like the map and posts pages.
(function () {
  "use strict";
  const TYPES = ["rd_partner", "tech_offer", "tech_request", "joint_venture", "distribution", "supplier"];
  const UI = {
    pt: { title: "Fila de moderação · CPC Alliance", heading: "Fila de moderação", tagline: "Localizador de parceiros CPC Alliance",
      langLabel: "Língua da interface", back: "Voltar à consola", postsPage: "Oportunidades", signIn: "Entrar", staffKey: "Chave da equipa",
      wrongKey: "Chave errada.", queueTitle: "À espera de revisão",
      queueHint: "Perfis do diretório e oportunidades que os membros enviaram, os que esperam há mais tempo primeiro. Aprovar publica (um perfil como uma importação: pesquisável de imediato, os alertas correm). Pode corrigir campos antes de aprovar. O motivo de uma recusa é enviado ao membro no seu canal, numa mensagem na língua dele.",
      counts: "{total} à espera — perfis: {profile}, oportunidades: {post}.", empty: "Nada à espera de revisão.",
      profile: "Perfil", post: "Oportunidade", approve: "Aprovar", reject: "Recusar", reason: "Motivo (enviado ao membro)",
      approved: "{kind} {id} publicado.", rejected: "{kind} {id} recusado; o membro foi avisado.", notTold: "Não foi possível avisar o membro agora.",
      needReason: "Escreva o motivo.", from: "Via {channel}, em {lang}, à espera desde {when}", own: "nas palavras do membro ({lang})",
      langs: { pt: "português", zh: "chinês", en: "inglês" },
      f: { name: "Nome", kind: "Tipo (company, cluster, institution)", country: "País (código ISO)", city: "Região/cidade",
        sectors: "Setores", offers: "Oferece", seeks: "Procura", website: "Sítio web", contact: "Contacto público",
        type: "Tipo de oportunidade", title: "Título", description: "Descrição", side_sought: "Lado procurado", closes: "Prazo" },
      rd_partner: "Procura de parceiro de I&D", tech_offer: "Oferta de tecnologia", tech_request: "Pedido de tecnologia",
      joint_venture: "Joint venture", distribution: "Distribuição ou agência", supplier: "Procura de fornecedor" },
    zh: { title: "审核队列 · CPC联盟", heading: "审核队列", tagline: "CPC联盟合作伙伴查找", langLabel: "界面语言", back: "返回控制台",
      postsPage: "合作机会", signIn: "登录", staffKey: "工作人员密钥", wrongKey: "密钥错误。", queueTitle: "待审核",
      queueHint: "会员提交的名录资料和合作机会，等待最久的排在前面。批准即发布（资料与导入相同：立即可搜索，并触发提醒）。批准前可修改字段。拒绝理由会通过会员的渠道、以其语言的消息告知会员。",
      counts: "共{total}项待审核：资料{profile}项，合作机会{post}项。", empty: "没有待审核的内容。",
      profile: "资料", post: "合作机会", approve: "批准", reject: "拒绝", reason: "理由（发送给会员）",
      approved: "{kind} {id} 已发布。", rejected: "{kind} {id} 已拒绝，已通知会员。", notTold: "暂时无法通知会员。",
      needReason: "请填写理由。", from: "来自{channel}，{lang}，等待自{when}", own: "会员原话（{lang}）",
      langs: { pt: "葡萄牙语", zh: "中文", en: "英语" },
      f: { name: "名称", kind: "类型（company、cluster、institution）", country: "国家（ISO代码）", city: "地区/城市",
        sectors: "行业", offers: "提供", seeks: "寻求", website: "网站", contact: "公开联系方式",
        type: "机会类型", title: "标题", description: "描述", side_sought: "寻找一方", closes: "截止日期" },
      rd_partner: "研发合作伙伴征集", tech_offer: "技术供给", tech_request: "技术需求", joint_venture: "合资合作",
      distribution: "分销或代理", supplier: "寻找供应商" },
    en: { title: "Moderation queue · CPC Alliance", heading: "Moderation queue", tagline: "CPC Alliance partner finder",
      langLabel: "Interface language", back: "Back to the console", postsPage: "Opportunity posts", signIn: "Sign in", staffKey: "Staff key",
      wrongKey: "Wrong key.", queueTitle: "Waiting for review",
      queueHint: "Directory profiles and opportunity posts that members sent, the longest waiting first. Approve publishes (a profile as an ingest: searchable at once, alerts run). Correct a field before approving if needed. A rejection's reason is sent to the member on their channel, inside a message in their language.",
      counts: "{total} waiting — profiles: {profile}, posts: {post}.", empty: "Nothing is waiting for review.",
      profile: "Profile", post: "Post", approve: "Approve", reject: "Reject", reason: "Reason (sent to the member)",
      approved: "{kind} {id} published.", rejected: "{kind} {id} rejected; the member was told.", notTold: "The member could not be told now.",
      needReason: "Write the reason.", from: "From {channel}, in {lang}, waiting since {when}", own: "the member's own words ({lang})",
      langs: { pt: "Portuguese", zh: "Chinese", en: "English" },
      f: { name: "Name", kind: "Kind (company, cluster, institution)", country: "Country (ISO code)", city: "Region/city",
        sectors: "Sectors", offers: "Offers", seeks: "Seeks", website: "Website", contact: "Public contact",
        type: "Post type", title: "Title", description: "Description", side_sought: "Side sought", closes: "Closes" },
      rd_partner: "R&D partner search", tech_offer: "Technology offer", tech_request: "Technology request",
      joint_venture: "Joint venture", distribution: "Distribution or agency", supplier: "Supplier search" },
  };
  const FIELDS = {
    profile: ["name", "kind", "country", "city", "sectors", "offers", "seeks", "website", "contact"],
    post: ["type", "title", "description", "sectors", "side_sought", "closes"],
  };
  const LONG = new Set(["offers", "seeks", "description"]);
  const OWN_WORDS = new Set(["name", "city", "sectors", "offers", "seeks", "title", "description"]);
  const el = window.cpcEl;
  const { ui, api, start } = window.cpcStaffPage({
    table: UI, app: "queue-app", onSwitch: () => render(), onStart: () => load(),
    errorOf: (body, status) => (typeof body.detail === "object" && body.detail ? Object.values(body.detail).join(" ") : (body.error || status)),
  });
  let data = { items: [], counts: { profile: 0, post: 0 }, total: 0 };
  const words = () => UI[ui.lang] || UI.en;

  function say(text) { document.getElementById("status").textContent = text; }
  const shown = (v) => (Array.isArray(v) ? v.join(", ") : (v || ""));

  function input(item, name) {
    const id = `${item.kind}-${item.id}-${name}`;
    const value = shown(item.fields[name]);
    let node;
    if (name === "type") {
      node = el("select", { id, name }, TYPES.map((t) => el("option", { value: t, text: ui.t(t), selected: t === value })));
    } else if (name === "side_sought") {
      node = el("select", { id, name }, ["PT", "CN"].map((s) => el("option", { value: s, text: s, selected: s === value })));
    } else {
      node = el(LONG.has(name) ? "textarea" : "input", { id, name, rows: "3", type: name === "closes" ? "date" : null,
        lang: OWN_WORDS.has(name) ? item.lang : null });
      node.value = value;
    }
    const label = words().f[name] + (OWN_WORDS.has(name) && item.lang !== ui.lang ? ` — ${ui.t("own", { lang: words().langs[item.lang] || item.lang })}` : "");
    return [node, el("div", { class: "field" }, el("label", { for: id, text: label }), node)];
  }

  function corrections(item, inputs) {
    const out = {};
    for (const [name, node] of Object.entries(inputs)) {
      if (node.value === shown(item.fields[name])) continue;
      out[name] = item.kind === "post" && name === "sectors" ? node.value.split(/[,，;；、]/).map((s) => s.trim()).filter(Boolean) : node.value;
    }
    return Object.keys(out).length ? out : null;
  }

  async function decide(item, verb, body) {
    const kind = ui.t(item.kind);
    try {
      const done = await api(`/api/v1/staff/moderation/${item.kind}/${encodeURIComponent(item.id)}/${verb}`, { method: "POST", body: JSON.stringify(body) });
      const told = done.told !== undefined ? done.told : done.author_told !== "failed";
      say(ui.t(verb === "approve" ? "approved" : "rejected", { kind, id: item.id }) + (told ? "" : " " + ui.t("notTold")));
      await load();
    } catch (e) { if (e.message !== "auth") say(String(e.message)); }
  }

  function card(item) {
    const inputs = {};
    const fields = FIELDS[item.kind].map((name) => { const [node, field] = input(item, name); inputs[name] = node; return field; });
    const reason = el("input", { id: `${item.kind}-${item.id}-reason`, name: "reason", maxlength: "1000" });
    const when = new Date(item.waiting_since * 1000).toISOString().slice(0, 16).replace("T", " ");
    const head = item.kind === "post" ? `${ui.t(item.fields.type)} · ${item.title}` : item.title;
    return el("li", { class: "profile-card", "data-kind": item.kind, "data-id": item.id },
      el("h3", {}, el("span", { class: "badge", text: ui.t(item.kind) }), " ", el("span", { lang: item.lang, text: head })),
      el("p", { class: "hint", text: ui.t("from", { channel: item.channel, lang: words().langs[item.lang] || item.lang, when }) }),
      fields, el("div", { class: "field" }, el("label", { for: reason.id, text: ui.t("reason") }), reason),
      el("div", { class: "actions" },
        el("button", { type: "button", class: "primary", "data-action": "approve", text: ui.t("approve"),
          onclick: () => decide(item, "approve", { data: corrections(item, inputs) }) }),
        el("button", { type: "button", "data-action": "reject", text: ui.t("reject"), onclick: () => {
          if (!reason.value.trim()) { say(ui.t("needReason")); reason.focus(); return; }
          decide(item, "reject", { reason: reason.value.trim() });
        } })));
  }

  function render() {
    ui.apply();
    document.getElementById("counts").textContent = ui.t("counts", { total: data.total, ...data.counts });
    const list = document.getElementById("queue");
    list.replaceChildren(...data.items.map(card));
    if (!data.items.length) list.replaceChildren(el("li", { class: "hint", text: ui.t("empty") }));
  }

  async function load() {
    try {
      data = await api("/api/v1/staff/moderation");
      render();
      document.body.dataset.loaded = "true";
    } catch (e) { if (e.message !== "auth") say(String(e.message)); }
  }

  start();
})();
