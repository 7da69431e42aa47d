// Accounts and audit (admins): add, disable and enable accounts; read and export the audit log.
// Signed in with the console's session cookie; every change carries the session's CSRF token.
(() => {
  "use strict";

  const UI = {
    pt: { title: "Contas e auditoria · Localizador de parceiros CPC Alliance", heading: "Contas e auditoria",
      tagline: "Localizador de parceiros CPC Alliance", langLabel: "Idioma da interface", back: "Voltar à consola",
      accounts: "Contas", name: "Nome", role: "Função", state: "Estado", actions: "Ações", addTitle: "Acrescentar uma conta",
      password: "Palavra-passe (10 caracteres ou mais)", add: "Acrescentar", audit: "Registo de auditoria",
      exportCsv: "Exportar CSV", exportJson: "Exportar JSON", when: "Data e hora", who: "Quem", what: "O quê", target: "Sobre",
      detail: "Pormenor", active: "ativa", disabled: "desativada", disable: "Desativar", enable: "Reativar",
      role_viewer: "consulta", role_staff: "equipa", role_admin: "administração", added: "Conta {name} acrescentada.",
      changed: "Conta {name} atualizada.", failed: "Não foi possível: {detail}",
      signIn: "Inicie sessão na consola como administrador para ver esta página." },
    zh: { title: "账户与审计 · CPC联盟合作伙伴搜索", heading: "账户与审计", tagline: "CPC联盟合作伙伴搜索", langLabel: "界面语言",
      back: "返回控制台", accounts: "账户", name: "用户名", role: "角色", state: "状态", actions: "操作", addTitle: "添加账户",
      password: "密码（至少 10 个字符）", add: "添加", audit: "审计日志", exportCsv: "导出 CSV", exportJson: "导出 JSON",
      when: "时间", who: "操作人", what: "操作", target: "对象", detail: "详情", active: "启用", disabled: "已停用",
      disable: "停用", enable: "重新启用", role_viewer: "只读", role_staff: "工作人员", role_admin: "管理员",
      added: "已添加账户 {name}。", changed: "已更新账户 {name}。", failed: "操作失败：{detail}",
      signIn: "请先以管理员身份登录控制台。" },
    en: { title: "Accounts and audit · CPC Alliance partner finder", heading: "Accounts and audit",
      tagline: "CPC Alliance partner finder", langLabel: "Interface language", back: "Back to the console",
      accounts: "Accounts", name: "Name", role: "Role", state: "State", actions: "Actions", addTitle: "Add an account",
      password: "Password (10 characters or more)", add: "Add", audit: "Audit log", exportCsv: "Export CSV",
      exportJson: "Export JSON", when: "Time", who: "Who", what: "What", target: "On", detail: "Detail", active: "active",
      disabled: "disabled", disable: "Disable", enable: "Enable", role_viewer: "viewer", role_staff: "staff", role_admin: "admin",
      added: "Account {name} added.", changed: "Account {name} updated.", failed: "That did not work: {detail}",
      signIn: "Sign in to the console as an admin to see this page." },
  };
  const $ = (id) => document.getElementById(id);
  const el = window.cpcEl;
  const ui = window.cpcI18n(UI, "cpc.staff.lang", () => render());
  const t = ui.t;
  let me = null;
  let accounts = [];
  let entries = [];
  let status = null;

  async function call(path, options = {}) {
    const changing = options.method && options.method !== "GET";
    const headers = { Accept: "application/json", ...(options.headers || {}), ...(changing && me ? { "X-CSRF-Token": me.csrf } : {}) };
    const res = await fetch(path, { ...options, headers });
    const body = res.status === 204 ? null : await res.json().catch(() => null);
    if (!res.ok) throw new Error((body && body.error) || `HTTP ${res.status}`);
    return body;
  }

  function fail(e) {
    $("admin-error").hidden = false;
    $("admin-error").textContent = t("failed", { detail: e.message });
  }

  const when = (unix) => new Date(unix * 1000).toLocaleString(ui.lang === "zh" ? "zh-CN" : ui.lang, { dateStyle: "short", timeStyle: "medium" });

  function render() {
    ui.apply();
    if (status) $("accounts-status").textContent = t(...status);
    $("accounts").tBodies[0].replaceChildren(...accounts.map((a) => el("tr", { "data-account": a.name },
      el("td", { text: a.name }), el("td", { text: t(`role_${a.role}`) }), el("td", { text: t(a.disabled ? "disabled" : "active") }),
      el("td", {}, me && a.name === me.name ? null : el("button", { type: "button", class: "secondary",
        onclick: () => change(a.name, { disabled: !a.disabled }) }, t(a.disabled ? "enable" : "disable"))))));
    $("audit").tBodies[0].replaceChildren(...entries.map((e) => el("tr", { "data-action": e.action },
      el("td", { text: when(e.at) }), el("td", { text: e.via === "token" ? "token" : e.actor }), el("td", { text: e.action }),
      el("td", { text: e.target }), el("td", { text: Object.entries(e.detail).map(([k, v]) => `${k}=${v}`).join("; ") }))));
  }

  async function load() {
    [accounts, entries] = await Promise.all([call("/api/v1/admin/accounts"), call("/api/v1/admin/audit?limit=200")]);
    render();
  }

  async function change(name, body) {
    try {
      await call(`/api/v1/admin/accounts/${encodeURIComponent(name)}`, { method: "PATCH",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      status = ["changed", { name }];
      await load();
    } catch (e) {
      fail(e);
    }
  }

  $("add-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const name = $("new-name").value.trim();
    try {
      await call("/api/v1/admin/accounts", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name, role: $("new-role").value, password: $("new-password").value }) });
      $("new-name").value = $("new-password").value = "";
      $("admin-error").hidden = true;
      status = ["added", { name }];
      await load();
    } catch (err) {
      fail(err);
    }
  });

  render();
  call("/api/v1/staff/me").then((found) => {
    me = found;
    return load();
  }).catch(() => {
    $("admin-error").hidden = false;
    $("admin-error").textContent = t("signIn");
  });
})();
