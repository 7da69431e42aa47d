// Signing in to the staff console with a named account (name and password), for staff.js.
// The session lives in an HttpOnly cookie the script never sees; what the script keeps is the
// session's CSRF token, sent in X-CSRF-Token with every change (a cookie alone is refused).
// window.cpcStaffSession: headers(method), resume(), logout(), ended(), me.
(() => {
  "use strict";

  const UI = {
    pt: { name: "Nome", password: "Palavra-passe", orKey: "Ou usar a chave partilhada da equipa",
      wrong: "Nome ou palavra-passe incorretos.", throttled: "Demasiadas tentativas falhadas. Tente de novo dentro de {s} s.",
      ended: "A sessão terminou. Inicie sessão de novo.", unreachable: "Não foi possível contactar o servidor. Tente de novo.",
      who: "{name} ({role})", roles: { viewer: "consulta", staff: "equipa", admin: "administração", token: "chave partilhada" },
      adminPage: "Contas e auditoria", needName: "Escreva o nome e a palavra-passe (ou a chave partilhada)." },
    zh: { name: "用户名", password: "密码", orKey: "或使用共享的工作人员密钥",
      wrong: "用户名或密码不正确。", throttled: "失败次数过多，请在 {s} 秒后重试。",
      ended: "登录已过期，请重新登录。", unreachable: "无法连接服务器，请重试。",
      who: "{name}（{role}）", roles: { viewer: "只读", staff: "工作人员", admin: "管理员", token: "共享密钥" },
      adminPage: "账户与审计", needName: "请输入用户名和密码（或共享密钥）。" },
    en: { name: "Name", password: "Password", orKey: "Or use the shared staff key",
      wrong: "Wrong name or password.", throttled: "Too many failed attempts. Try again in {s} s.",
      ended: "Your session has ended. Sign in again.", unreachable: "Could not reach the server. Try again.",
      who: "{name} ({role})", roles: { viewer: "viewer", staff: "staff", admin: "admin", token: "shared key" },
      adminPage: "Accounts and audit", needName: "Enter your name and password (or the shared staff key)." },
  };
  const $ = (id) => document.getElementById(id);
  const ui = window.cpcI18n(UI, "cpc.staff.lang", () => setTimeout(render));  // after staff.js has redrawn
  const session = { me: null, csrf: null };
  let shown = null;  // [key, values] of the sign-in message this script shows

  function render() {
    document.querySelectorAll("[data-acct]").forEach((n) => { n.textContent = ui.t(n.dataset.acct); });
    if (shown) $("signin-error").textContent = ui.t(...shown);
    const who = $("signed-in-as");
    if (session.me) {
      who.textContent = ui.t("who", { name: session.me.name, role: ui.t("roles")[session.me.role] || session.me.role });
    }
  }

  function show(key, values) {
    shown = key ? [key, values] : null;
    const box = $("signin-error");
    box.textContent = key ? ui.t(key, values) : "";
    box.hidden = !key;
  }

  function signedIn(me) {
    session.me = me;
    session.csrf = me.csrf;
    document.body.dataset.role = me.role;
    $("signed-in-as").hidden = false;
    $("admin-link").hidden = me.role !== "admin";
    show(null);
    render();
  }

  function signedOut() {
    session.me = session.csrf = null;
    delete document.body.dataset.role;
    $("signed-in-as").hidden = $("admin-link").hidden = true;
  }

  window.cpcStaffSession = {
    get me() { return session.me; },
    headers(method) {
      const changing = method && !["GET", "HEAD"].includes(method.toUpperCase());
      return changing && session.csrf ? { "X-CSRF-Token": session.csrf } : {};
    },
    async resume() {  // a cookie from an earlier visit still valid: straight into the console
      try {
        const res = await fetch("/api/v1/staff/me", { headers: { Accept: "application/json" } });
        if (!res.ok) return false;
        signedIn(await res.json());
        return true;
      } catch (_) {
        return false;
      }
    },
    logout() {
      if (session.me) fetch("/api/v1/staff/logout", { method: "POST" }).catch(() => {});
      signedOut();
    },
    ended() { signedOut(); show("ended"); },
  };

  // Before staff.js's own handler (this script runs first): name and password sign in here;
  // an empty name with the key section open goes on to staff.js, which tries the key.
  $("signin-form").addEventListener("submit", async (e) => {
    const name = $("staff-name").value.trim();
    const password = $("staff-password").value;
    if (!name && $("staff-key").value.trim()) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    if (!name || !password) {
      show("needName");
      return;
    }
    let res;
    try {
      res = await fetch("/api/v1/staff/login", { method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ name, password }) });
    } catch (_) {
      show("unreachable");
      return;
    }
    if (!res.ok) {
      show(res.status === 429 ? "throttled" : "wrong", { s: res.headers.get("Retry-After") || "60" });
      $("staff-password").select();
      return;
    }
    $("staff-password").value = "";
    signedIn(await res.json());
    document.dispatchEvent(new CustomEvent("cpc:signed-in"));
  });

  render();
})();
