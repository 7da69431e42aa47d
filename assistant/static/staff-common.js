// The staff pages beside the console (map, posts, moderation) sign in alike: the console's staff key,
// kept for the tab (sessionStorage) and sent as a bearer token; a refused key brings the sign-in
// form back with the reason. One copy here so the pages cannot drift apart.
// cpcStaffPage({table, app, onSwitch, onStart, errorOf}): table holds the page's strings (see
// cpcI18n in dom.js); app is the id of what shows once signed in; onStart loads it; errorOf(body,
// status) words a failed call (default: the API's "error"). Returns {ui, api, start, signedIn}.
window.cpcStaffPage = function staffPage({ table, app, onSwitch, onStart, errorOf }) {
  const KEY = "cpc.staff.key";
  const ui = window.cpcI18n(table, "cpc.staff.lang", onSwitch);
  let key = sessionStorage.getItem(KEY);

  function showSignin(message) {
    document.getElementById("signin").hidden = false;
    document.getElementById(app).hidden = true;
    const error = document.getElementById("signin-error");
    error.hidden = !message;
    error.textContent = message || "";
  }

  async function api(path, options = {}) {
    const sent = key;
    const res = await fetch(path, { ...options, headers: { Accept: "application/json", "Content-Type": "application/json",
      Authorization: `Bearer ${sent}` } });
    if (res.status === 401 || res.status === 403) {
      // a refusal of a key typed over since (a late answer to the first try) says nothing of the new one
      if (sent === key) showSignin(ui.t("wrongKey"));
      throw new Error("auth");
    }
    const body = await res.json();
    if (!res.ok) throw new Error(errorOf ? errorOf(body, res.status) : (body.error || res.status));
    return body;
  }

  function start() {
    ui.apply();
    if (!key) { showSignin(""); return; }
    document.getElementById("signin").hidden = true;
    document.getElementById(app).hidden = false;
    onStart();
  }

  document.getElementById("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    key = document.getElementById("staff-key").value;
    sessionStorage.setItem(KEY, key);
    start();
  });

  return { ui, api, start, signedIn: () => Boolean(key) };
};
