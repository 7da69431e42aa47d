// Opportunity posts for staff: publishing a post and the published ones (withdraw). Members' posts
// waiting for review are decided in the one moderation queue (/staff/moderation), with profiles;
// this page says how many wait there. Signs in with the console's staff key.
(() => {
  "use strict";

  const TYPES = ["rd_partner", "tech_offer", "tech_request", "joint_venture", "distribution", "supplier"];
  const UI = {
    pt: {
      title: "Oportunidades · CPC Alliance", heading: "Oportunidades", tagline: "Localizador de parceiros CPC Alliance",
      langLabel: "Idioma da interface", back: "Voltar à consola", signIn: "Iniciar sessão", staffKey: "Chave da equipa",
      wrongKey: "Chave errada.", queueTitle: "À espera de revisão", openQueue: "Abrir a fila de moderação", pending: "{n} oportunidades de membros à espera.", publishTitle: "Publicar uma oportunidade", liveTitle: "Publicadas",
      colType: "Tipo", colTitle: "Título", colSide: "Lado procurado", colCloses: "Prazo",
      description: "Descrição", sectors: "Setores (separados por vírgulas)", author: "Autor (id da organização, opcional)",
      publish: "Publicar", withdraw: "Retirar",
      done: "Feito.", empty: "Nada a mostrar.", loading: "A carregar…", failed: "Falhou: {error}",
      rd_partner: "Procura de parceiro de I&D", tech_offer: "Oferta de tecnologia", tech_request: "Pedido de tecnologia",
      joint_venture: "Joint venture", distribution: "Distribuição ou agência", supplier: "Procura de fornecedor",
    },
    zh: {
      title: "合作机会 · CPC联盟", heading: "合作机会", tagline: "CPC联盟合作伙伴查找", langLabel: "界面语言", back: "返回控制台",
      signIn: "登录", staffKey: "工作人员密钥", wrongKey: "密钥错误。", queueTitle: "待审核", openQueue: "打开审核队列", pending: "{n}条会员提交的合作机会待审核。", publishTitle: "发布合作机会",
      liveTitle: "已发布", colType: "类型", colTitle: "标题", colSide: "寻找一方", colCloses: "截止日期",
      description: "描述", sectors: "行业（逗号分隔）", author: "发布机构（机构编号，可选）", publish: "发布",
      withdraw: "撤回", done: "完成。", empty: "暂无内容。", loading: "加载中…",
      failed: "失败：{error}", rd_partner: "研发合作伙伴征集", tech_offer: "技术供给", tech_request: "技术需求",
      joint_venture: "合资合作", distribution: "分销或代理", supplier: "寻找供应商",
    },
    en: {
      title: "Opportunity posts · CPC Alliance", heading: "Opportunity posts", tagline: "CPC Alliance partner finder",
      langLabel: "Interface language", back: "Back to the console", signIn: "Sign in", staffKey: "Staff key", wrongKey: "Wrong key.",
      queueTitle: "Waiting for review", openQueue: "Open the moderation queue", pending: "{n} member posts waiting.", publishTitle: "Publish an opportunity", liveTitle: "Published", colType: "Type",
      colTitle: "Title", colSide: "Side sought", colCloses: "Closes", description: "Description",
      sectors: "Sectors (comma-separated)", author: "Author (organisation id, optional)", publish: "Publish",
      withdraw: "Withdraw", done: "Done.", empty: "Nothing to show.",
      loading: "Loading…", failed: "Failed: {error}", rd_partner: "R&D partner search", tech_offer: "Technology offer",
      tech_request: "Technology request", joint_venture: "Joint venture", distribution: "Distribution or agency",
      supplier: "Supplier search",
    },
  };
  const el = window.cpcEl;
  const { ui, api, start } = window.cpcStaffPage({ table: UI, app: "posts-app", onSwitch: () => render(),
                                                  onStart: () => { render(); load(); } });
  let data = { pending: [], published: [] };

  function cells(p) {
    return [el("td", { text: ui.t(p.type) }), el("td", { text: p.title, lang: p.lang }), el("td", { text: p.side_sought }),
            el("td", { text: p.closes })];
  }

  function render() {
    ui.apply();
    const types = document.getElementById("p-type");
    const chosen = types.value;
    types.replaceChildren(...TYPES.map((t) => el("option", { value: t, text: ui.t(t), selected: t === chosen })));
    document.getElementById("pending-note").textContent = ui.t("pending", { n: data.pending.length });
    const live = document.querySelector("#live-table tbody");
    live.replaceChildren(...data.published.map((p) => el("tr", { "data-id": p.id }, ...cells(p), el("td", {},
      el("button", { type: "button", class: "quiet", text: ui.t("withdraw"), onclick: () => act(`/api/v1/staff/posts/${p.id}/withdraw`, {}) })))));
    if (!data.published.length) live.append(el("tr", {}, el("td", { colspan: "5", text: ui.t("empty") })));
  }

  async function act(path, body) {
    const status = document.getElementById("status");
    try {
      await api(path, { method: "POST", body: JSON.stringify(body) });
      status.textContent = ui.t("done");
      await load();
    } catch (err) {
      if (err.message !== "auth") status.textContent = ui.t("failed", { error: err.message });
    }
  }

  async function load() {
    const status = document.getElementById("status");
    try {
      const [pending, published] = await Promise.all([api("/api/v1/staff/posts?status=pending"), api("/api/v1/staff/posts?status=published")]);
      data = { pending: pending.posts, published: published.posts };
      document.body.dataset.loaded = "true";
      render();
    } catch (err) {
      if (err.message !== "auth") status.textContent = ui.t("failed", { error: err.message });
    }
  }

  document.getElementById("publish-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const body = Object.fromEntries(form.entries());
    body.sectors = (body.sectors || "").split(/[,，;]/).map((s) => s.trim()).filter(Boolean);
    if (!body.author) delete body.author;
    const out = document.getElementById("publish-status");
    try {
      await api("/api/v1/staff/posts", { method: "POST", body: JSON.stringify(body) });
      out.textContent = ui.t("done");
      event.target.reset();
      await load();
    } catch (err) {
      if (err.message !== "auth") out.textContent = ui.t("failed", { error: err.message });
    }
  });

  start();
})();
