// Webhooks: the latest deliveries to the merchant's endpoints by status, a failed or DEAD one with
// its error, and "send again".
import { gql } from "../api.js";
import { announce, errorText, field, h, table, when } from "../dom.js";

const DELIVERIES = `query($status: MerchantDeliveryStatus) { merchantDeliveries(status: $status, first: 100) {
  id endpointId eventId eventType status attempts lastStatusCode lastError nextAttemptAt deliveredAt createdAt } }`;
const RESEND = "mutation($id: ID!) { resendMerchantDelivery(id: $id) { delivery { id status } userErrors { code message } } }";

export async function render(main) {
  const status = h("select", { id: "delivery-status" }, ["", "PENDING", "FAILED", "DELIVERED", "DEAD"].map((s) => h("option", { value: s }, s || "Any status")));
  const list = h("div");
  const messages = h("div", { "aria-live": "polite" });

  async function resend(id) {
    const data = await gql(RESEND, { id });
    const errors = data.resendMerchantDelivery.userErrors;
    if (errors.length) messages.replaceChildren(errorText(new Error(errors.map((e) => e.message).join(" "))));
    else announce(`Delivery ${id} queued again.`);
    await load();
  }

  async function load() {
    const { merchantDeliveries } = await gql(DELIVERIES, { status: status.value || null });
    const rows = merchantDeliveries.map((d) =>
      h("tr", { "data-status": d.status },
        h("td", {}, when(d.createdAt)),
        h("td", {}, d.eventType),
        h("td", {}, h("span", { class: ["FAILED", "DEAD"].includes(d.status) ? "badge warn" : "badge" }, d.status)),
        h("td", { class: "num" }, d.attempts),
        h("td", {}, d.lastStatusCode ?? "", " ", d.lastError || ""),
        h("td", {}, d.status === "DELIVERED" ? when(d.deliveredAt) : when(d.nextAttemptAt)),
        h("td", {}, ["FAILED", "DEAD"].includes(d.status) ? h("button", { type: "button", class: "secondary", onclick: () => resend(d.id), "aria-label": `Send delivery ${d.id} again` }, "Send again") : "")));
    list.replaceChildren(rows.length ? table(["Created", "Event", "Status", { label: "Attempts", num: true }, "Last answer", "Delivered / next", ""], rows, { id: "deliveries" }) : h("p", {}, "No deliveries."));
  }
  status.addEventListener("change", load);
  const form = h("form", { "aria-label": "Filter deliveries" }, field("Status", status));
  form.addEventListener("submit", (event) => event.preventDefault());
  main.replaceChildren(h("h1", {}, "Webhook deliveries"), h("p", {}, "Deliveries of PayQL's events to the merchant's endpoints. Gateway webhooks PayQL receives are replayed with the CLI (`payql webhooks`)."), form, messages, list);
  await load();
}
