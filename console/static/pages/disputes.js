// The disputes queue: the soonest evidence due date first; "due soon" ones highlighted.
import { gql } from "../api.js";
import { field, h, money, table, when } from "../dom.js";

const DISPUTES = `query($status: DisputeStatus) { disputes(status: $status, first: 200) {
  id status reason gateway amount { decimal currency } evidenceDueBy dueSoon evidenceSubmittedAt order { id } } }`;
const DAY_MS = 24 * 3600 * 1000;

// PayQL's due-date job flags due-soon disputes; one due within three days counts too, between runs.
function dueSoon(d) {
  const due = d.evidenceDueBy ? new Date(d.evidenceDueBy).getTime() : Infinity;
  return !d.evidenceSubmittedAt && d.status === "NEEDS_RESPONSE" && (d.dueSoon || due - Date.now() < 3 * DAY_MS);
}

export async function render(main) {
  const status = h("select", { id: "dispute-status" }, ["", "NEEDS_RESPONSE", "UNDER_REVIEW", "WON", "LOST"].map((s) => h("option", { value: s }, s || "Any status")));
  const list = h("div");
  async function load() {
    const { disputes } = await gql(DISPUTES, { status: status.value || null });
    const rows = disputes.map((d) =>
      h("tr", { class: dueSoon(d) ? "due-soon" : null },
        h("td", {}, h("a", { href: `#/disputes/${d.id}` }, d.id)),
        h("td", {}, d.status),
        h("td", {}, d.reason),
        h("td", { class: "num" }, money(d.amount)),
        h("td", {}, when(d.evidenceDueBy), " ", dueSoon(d) ? h("span", { class: "badge warn" }, "due soon") : ""),
        h("td", {}, h("a", { href: `#/orders/${d.order.id}` }, "order"))));
    list.replaceChildren(rows.length ? table(["Dispute", "Status", "Reason", { label: "Amount", num: true }, "Evidence due", "Order"], rows, { id: "disputes-table" }) : h("p", {}, "No disputes."));
  }
  status.addEventListener("change", load);
  const form = h("form", { "aria-label": "Filter disputes" }, field("Status", status));
  form.addEventListener("submit", (event) => event.preventDefault());
  main.replaceChildren(h("h1", {}, "Disputes"), form, list);
  await load();
}
