// Orders: newest first, searched by status, customer, email, gateway and date on the server (the
// API's own filters), narrowed by order id on the page, with links to each order's page.
import { gql } from "../api.js";
import { field, h, money, table, when } from "../dom.js";

const STATUSES = ["", "PENDING", "REQUIRES_ACTION", "PROCESSING", "AUTHORIZED", "PAID", "PARTIALLY_REFUNDED", "REFUNDED", "DISPUTED", "CANCELED"];
const ORDERS = `query($first: Int!, $after: String, $status: OrderStatus, $customer: String, $email: String,
                     $gateway: String, $createdAfter: DateTime, $createdBefore: DateTime) {
  orders(first: $first, after: $after, status: $status, customer: $customer, email: $email, gateway: $gateway,
         createdAfter: $createdAfter, createdBefore: $createdBefore) {
    edges { node { id status total { decimal currency } createdAt payments { gateway } } }
    pageInfo { hasNextPage endCursor } } }`;

export async function render(main) {
  const status = h("select", { id: "status-filter" }, STATUSES.map((s) => h("option", { value: s }, s || "Any status")));
  const search = h("input", { id: "order-search", type: "search", placeholder: "order id or part of it" });
  const customer = h("input", { id: "customer-filter", type: "search", placeholder: "the customer's sub" });
  const email = h("input", { id: "email-filter", type: "email", placeholder: "shopper@example.com" });
  const gateway = h("input", { id: "gateway-filter", type: "search" });
  const from = h("input", { id: "from-filter", type: "date" });
  const to = h("input", { id: "to-filter", type: "date" });
  const find = h("button", { type: "submit" }, "Find");
  const results = h("div", { "aria-live": "polite" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "More orders");
  let after = null;
  let shown = [];

  async function load(reset) {
    if (reset) {
      after = null;
      shown = [];
    }
    const data = await gql(ORDERS, {
      first: 50,
      after,
      status: status.value || null,
      customer: customer.value.trim() || null,
      email: email.value.trim() || null,
      gateway: gateway.value.trim() || null,
      createdAfter: from.value ? `${from.value}T00:00:00Z` : null,
      // The day picked is included: orders before the start of the next day.
      createdBefore: to.value ? new Date(Date.parse(`${to.value}T00:00:00Z`) + 86_400_000).toISOString() : null,
    });
    shown = shown.concat(data.orders.edges.map((e) => e.node));
    after = data.orders.pageInfo.endCursor;
    more.hidden = !data.orders.pageInfo.hasNextPage;
    draw();
  }

  function draw() {
    const needle = search.value.trim().toLowerCase();
    const rows = shown
      .filter((o) => !needle || o.id.toLowerCase().includes(needle))
      .map((o) =>
        h("tr", {},
          h("td", {}, h("a", { href: `#/orders/${o.id}` }, o.id)),
          h("td", {}, h("span", { class: "badge" }, o.status)),
          h("td", { class: "num" }, money(o.total)),
          h("td", {}, [...new Set(o.payments.map((p) => p.gateway))].join(", ")),
          h("td", {}, when(o.createdAt)),
        ));
    results.replaceChildren(
      rows.length ? table(["Order", "Status", { label: "Total", num: true }, "Gateway", "Created"], rows, { id: "orders-table" }) : h("p", {}, "No orders match."),
    );
  }

  const form = h("form", { role: "search", "aria-label": "Find orders" },
    field("Status", status), field("Customer", customer), field("Email", email), field("Gateway", gateway),
    field("From (UTC)", from), field("To (UTC, inclusive)", to), find, field("Order id", search));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    load(true);
  });
  status.addEventListener("change", () => load(true));
  search.addEventListener("input", draw);
  more.addEventListener("click", () => load(false));
  main.replaceChildren(h("h1", {}, "Orders"), form, results, more);
  await load(true);
}
