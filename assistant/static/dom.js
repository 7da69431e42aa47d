// Shared by the chat and the staff console: build an element from a tag, attributes and children.
// "class" and "text" set className and textContent; "on…" attributes add listeners; text is
// never parsed as HTML, so record and user text cannot inject markup.
window.cpcEl = function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat()) if (child !== null && child !== undefined) node.append(child);
  return node;
};

// The interface language of a page (pt, zh or en): the choice stored under storageKey, else the
// first of the browser's languages the page speaks, else English. table[lang][key] holds the
// strings; t(key, {name: value}) fills "{name}" in one pass (values are never re-read as
// placeholders). apply() sets <html lang>, the title (key "title"), elements marked data-i18n
// (text), data-i18n-placeholder and data-i18n-aria, and aria-pressed on the .langs buttons; a
// click on one of those switches, remembers the choice and calls onSwitch to redraw the page.
window.cpcI18n = function i18n(table, storageKey, onSwitch) {
  const langs = Object.keys(table);
  const ui = {
    lang: "en",
    t(key, values) {
      const text = (table[ui.lang] || table.en)[key] ?? table.en[key];
      if (!values) return text;
      return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
    },
    apply() {
      document.documentElement.lang = ui.lang === "zh" ? "zh-CN" : ui.lang;
      document.title = ui.t("title");
      document.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = ui.t(n.dataset.i18n); });
      document.querySelectorAll("[data-i18n-placeholder]").forEach((n) => { n.placeholder = ui.t(n.dataset.i18nPlaceholder); });
      document.querySelectorAll("[data-i18n-aria]").forEach((n) => n.setAttribute("aria-label", ui.t(n.dataset.i18nAria)));
      document.querySelectorAll(".langs button").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.lang === ui.lang)));
    },
  };
  let chosen = null;
  try {
    chosen = JSON.parse(localStorage.getItem(storageKey));
  } catch (_) { /* unreadable: the browser decides */ }
  const browser = (navigator.languages || [navigator.language || "en"]).map((tag) => String(tag).toLowerCase().split("-")[0]);
  ui.lang = [chosen, ...browser].find((lang) => langs.includes(lang)) || "en";
  document.querySelectorAll(".langs button").forEach((b) => b.addEventListener("click", () => {
    ui.lang = b.dataset.lang;
    try {
      localStorage.setItem(storageKey, JSON.stringify(ui.lang));
    } catch (_) { /* private mode: the choice lasts until the page is left */ }
    onSwitch();
  }));
  return ui;
};

// A filter value's label from /api/v1/facets (kinds, countries, regions, sectors) in lang, else
// in English, else the value itself.
window.cpcFacetLabel = function facetLabel(facets, group, value, lang) {
  const item = facets && facets[group] && facets[group].find((f) => f.value === value);
  return (item && item.labels && (item.labels[lang] || item.labels.en)) || value;
};
