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
