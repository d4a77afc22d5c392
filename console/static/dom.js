// Small DOM helpers: elements built with textContent only (no innerHTML, so nothing from the API is
// ever parsed as markup), money and dates for people.
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function money(m) {
  return m ? `${m.decimal} ${m.currency}` : "";
}

export function when(iso) {
  return iso ? new Date(iso).toISOString().replace("T", " ").slice(0, 16) + " UTC" : "";
}

export function table(headers, rows, attributes = {}) {
  return h(
    "table",
    attributes,
    h("thead", {}, h("tr", {}, headers.map((header) => h("th", { scope: "col", class: header.num ? "num" : null }, header.label || header)))),
    h("tbody", {}, rows),
  );
}

export function field(label, control) {
  return h("label", {}, label, control);
}

export function announce(text) {
  document.getElementById("status").textContent = text;
}

export function errorText(error) {
  return h("p", { class: "error", role: "alert" }, error.message || String(error));
}
